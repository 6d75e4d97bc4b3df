// Tensor legend: B batch, T tokens, P prefix/prompt length, C hidden, H heads, D head dim.
#include "models/gpt2.h"
#include "core/profiler.h"

#include "core/error.h"
#include "models/decoder.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

namespace dt {

const RoleTable& gpt2_roles() {
    static const RoleTable roles = RoleTable()
                                       .set(Role::AttnQKV, {"c_attn"})
                                       .set(Role::AttnOut, {"attn.c_proj"})
                                       .set(Role::FfnUp, {"mlp.c_fc"})
                                       .set(Role::FfnDown, {"mlp.c_proj"})
                                       .set(Role::Norm, {"ln_1", "ln_2", "ln_f"})
                                       .set(Role::Embed, {"wte"})
                                       .set(Role::Head, {"lm_head"});
    return roles;
}

namespace {

struct Gpt2Config {
    std::int64_t vocab, hidden, layers, heads, inner, max_pos;
    double eps, init_range;
    std::string act;
    bool scale;

    static Gpt2Config from(const ModelConfig& c) {
        Gpt2Config g{};
        g.vocab = c.get_positive("vocab_size");
        g.hidden = c.get_positive("n_embd");
        g.layers = c.get_positive("n_layer");
        g.heads = c.get_positive("n_head");
        g.inner = c.raw.contains("n_inner") && c.raw["n_inner"].is_number_integer() ? c.raw["n_inner"].get<std::int64_t>() : 4 * g.hidden;
        g.max_pos = c.get_int_or("n_positions", 1024);
        g.eps = c.get_number_or("layer_norm_epsilon", 1e-5);
        g.init_range = c.get_number_or("initializer_range", 0.02);
        g.act = c.get_string_or("activation_function", "gelu_new");
        g.scale = c.raw.value("scale_attn_weights", true);
        if (g.hidden % g.heads != 0) throw Error("n_embd is not a multiple of n_head", c.source);
        if (c.raw.value("scale_attn_by_inverse_layer_idx", false) || c.raw.value("reorder_and_upcast_attn", false))
            throw Error("scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported", c.source,
                        "only the standard GPT-2 attention is");
        activation(g.act, c.source);
        return g;
    }
};

class Gpt2AttentionImpl : public torch::nn::Module {
public:
    explicit Gpt2AttentionImpl(const Gpt2Config& c) : torch::nn::Module("GPT2Attention"), H(c.heads), D(c.hidden / c.heads), scale(c.scale) {
        c_attn = register_module("c_attn", Linear(c.hidden, 3 * c.hidden, true));
        c_proj = register_module("c_proj", Linear(c.hidden, c.hidden, true));
    }
    // h (B, T, C); mask_add (B, 1, T, P + T); prefix k/v (B, H, P, D).
    at::Tensor forward(const at::Tensor& h, const at::Tensor& mask_add, const at::Tensor& pk, const at::Tensor& pv,
                       std::pair<at::Tensor, at::Tensor>* present) {
        const auto B = h.size(0), T = h.size(1), C = H * D;
        const auto qkv = c_attn->forward(h).split(C, 2);
        at::Tensor q = qkv[0].view({B, T, H, D}).transpose(1, 2);
        at::Tensor k = qkv[1].view({B, T, H, D}).transpose(1, 2);
        at::Tensor v = qkv[2].view({B, T, H, D}).transpose(1, 2);
        if (present) *present = {k, v};
        if (pk.defined()) {
            k = torch::cat({pk.to(k.dtype()), k}, 2);
            v = torch::cat({pv.to(v.dtype()), v}, 2);
        }
        return c_proj->forward(attend(q, k, v, mask_add, scale ? 1.0 / std::sqrt(static_cast<double>(D)) : 1.0));
    }
    Linear c_attn{nullptr}, c_proj{nullptr};
    PrefixProvider prefix;
    std::int64_t H, D;
    bool scale;
};
TORCH_MODULE(Gpt2Attention);

class Gpt2MLPImpl : public torch::nn::Module {
public:
    explicit Gpt2MLPImpl(const Gpt2Config& c) : torch::nn::Module("GPT2MLP"), act(activation(c.act, "activation_function")) {
        c_fc = register_module("c_fc", Linear(c.hidden, c.inner, true));
        c_proj = register_module("c_proj", Linear(c.inner, c.hidden, true));
    }
    at::Tensor forward(const at::Tensor& x) { return c_proj->forward(act(c_fc->forward(x))); }
    Linear c_fc{nullptr}, c_proj{nullptr};
    std::function<at::Tensor(const at::Tensor&)> act;
};
TORCH_MODULE(Gpt2MLP);

class Gpt2BlockImpl : public torch::nn::Module {
public:
    explicit Gpt2BlockImpl(const Gpt2Config& c) : torch::nn::Module("GPT2Block") {
        ln_1 = register_module("ln_1", LayerNorm(c.hidden, c.eps));
        attn = register_module("attn", Gpt2Attention(c));
        ln_2 = register_module("ln_2", LayerNorm(c.hidden, c.eps));
        mlp = register_module("mlp", Gpt2MLP(c));
    }
    at::Tensor forward(const at::Tensor& x, const at::Tensor& mask_add, const at::Tensor& pk, const at::Tensor& pv,
                       std::pair<at::Tensor, at::Tensor>* present) {
        const at::Tensor a_in = ln_1->forward(x);
        at::Tensor a = attn->forward(a_in, mask_add, pk, pv, present);
        if (!after_attention.empty()) a = after_attention.apply(a, a_in);
        const at::Tensor h = x + a;
        const at::Tensor f_in = ln_2->forward(h);
        at::Tensor f = mlp->forward(f_in);
        if (!after_ffn.empty()) f = after_ffn.apply(f, f_in);
        return h + f;
    }
    LayerNorm ln_1{nullptr}, ln_2{nullptr};
    Gpt2Attention attn{nullptr};
    Gpt2MLP mlp{nullptr};
    Site after_attention, after_ffn;
};
TORCH_MODULE(Gpt2Block);

class Gpt2Impl : public TransformerModel {
public:
    Gpt2Impl(const ModelConfig& cfg, const Gpt2Config& c, bool head)
        : TransformerModel(cfg.architecture.empty() ? (head ? "GPT2LMHeadModel" : "GPT2Model") : cfg.architecture), c_(c), head_(head) {
        config_ = cfg;
        prefix_ = head ? "transformer" : "";
        torch::nn::Module* host = &base_host(head, prefix_, "GPT2Model");
        wte = host->register_module("wte", Embedding(c.vocab, c.hidden));
        wpe = host->register_module("wpe", Embedding(c.max_pos, c.hidden));
        auto list = host->register_module("h", torch::nn::ModuleList());
        const std::string base = prefix_.empty() ? "" : prefix_ + ".";
        for (std::int64_t i = 0; i < c.layers; ++i) {
            auto b = Gpt2Block(c);
            list->push_back(b);
            blocks.push_back(b);
            add_decoder_block(base + "h." + std::to_string(i), static_cast<int>(i), "attn", "mlp", c.heads, c.hidden / c.heads, &b->attn->prefix,
                              &b->after_attention, &b->after_ffn);
        }
        ln_f = host->register_module("ln_f", LayerNorm(c.hidden, c.eps));
        if (head) lm_head = register_module("lm_head", Linear(wte->weight, at::Tensor()));  // GPT-2 always ties
        prompt_ = &prompt_fn_;
    }

    void validate_inputs(const ForwardInputs& in) const override { check_token_inputs(in, c_.vocab, c_.max_pos); }

    ForwardOutputs forward(const ForwardInputs& in) override {
        DecoderInputs d = prepare_decoder(in, wte->forward(in.input_ids.to(torch::kLong)), prompt_fn_, attentions_, c_.max_pos, "n_positions");
        // Learned positions: position_ids, else past..past+T-1 whatever the padding (as transformers
        // does without position_ids).
        at::Tensor h = d.h + wpe->forward(d.positions);
        ForwardOutputs out;
        if (in.output_hidden_states) out.hidden_states.push_back(h);
        d.checkpoint = checkpoint_ && is_training();
        h = d.run_blocks(in, blocks.size(), h, in.output_hidden_states ? &out.hidden_states : nullptr,
                         [=](std::size_t i, const at::Tensor& x, const at::Tensor& mask, const at::Tensor& pk, const at::Tensor& pv, auto* present) {
                             return blocks[i]->forward(x, mask, pk, pv, present);
                         });
        h = ln_f->forward(h);
        if (in.output_hidden_states) out.hidden_states.push_back(h);
        out.last_hidden_state = h;
        DT_PROFILE_REGION("head");
        if (head_ && in.labels.defined() && in.loss_only) {
            out.loss = head_lm_loss(*lm_head, h, in.labels, true);
            return out;
        }
        if (head_) out.logits = lm_head->forward(h);
        if (head_ && in.labels.defined()) out.loss = lm_loss(out.logits, in.labels, true);
        return out;
    }

    std::string base_model_prefix() const override { return "transformer"; }
    bool is_base_model() const override { return !head_; }
    bool supports_gradient_checkpointing() const override { return true; }
    std::int64_t num_layers() const override { return c_.layers; }
    std::int64_t hidden_size() const override { return c_.hidden; }
    const RoleTable& roles() const override { return gpt2_roles(); }
    std::map<std::string, std::string> tied_parameters() const override {
        if (head_) return {{"lm_head.weight", "transformer.wte.weight"}};
        return {};
    }
    bool stored_transposed(const std::string& name) const override {
        for (const char* s : {".c_attn.weight", ".c_proj.weight", ".c_fc.weight"}) {
            const std::string suf = s;
            if (name.size() > suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0) return true;
        }
        return false;
    }

    void init_weights(std::uint64_t seed, const std::set<std::string>* only) override {
        torch::NoGradGuard ng;
        auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
        const double proj_std = c_.init_range / std::sqrt(2.0 * static_cast<double>(c_.layers));
        for (const auto& m : named_modules("", true)) {
            const bool norm = m.value()->name() == "LayerNorm" || m.key().find("ln_") != std::string::npos;
            for (auto& p : m.value()->named_parameters(false)) {
                const std::string full = m.key().empty() ? p.key() : m.key() + "." + p.key();
                if (only && !only->count(full)) continue;
                if (norm) p.value().fill_(p.key() == "weight" ? 1.0 : 0.0);
                else if (p.key() == "weight") {
                    // transformers: c_proj weights get std / sqrt(2 n_layer).
                    const bool proj = full.size() > 14 && full.compare(full.size() - 14, 14, ".c_proj.weight") == 0;
                    p.value().normal_(0.0, proj ? proj_std : c_.init_range, gen);
                } else {
                    p.value().zero_();
                }
            }
        }
    }

    Embedding wte{nullptr}, wpe{nullptr};
    std::vector<Gpt2Block> blocks;
    LayerNorm ln_f{nullptr};
    Linear lm_head{nullptr};

private:
    Gpt2Config c_;
    bool head_;
    std::string prefix_;
    PromptProvider prompt_fn_;
};

}  // namespace

std::shared_ptr<TransformerModel> make_gpt2(const ModelConfig& cfg, bool with_lm_head) {
    return std::make_shared<Gpt2Impl>(cfg, Gpt2Config::from(cfg), with_lm_head);
}

}  // namespace dt
