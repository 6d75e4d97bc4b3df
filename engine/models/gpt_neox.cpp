// Tensor legend: B batch, T tokens, P prefix/prompt length, C hidden, H heads, D head dim,
// R rotary dims per head.
#include "models/gpt_neox.h"

#include "core/error.h"
#include "models/decoder.h"
#include "models/rope.h"

#include <torch/torch.h>

#include <cmath>
#include <set>

namespace dt {

const RoleTable& gpt_neox_roles() {
    static const RoleTable roles = RoleTable()
                                       .set(Role::AttnQKV, {"query_key_value"})
                                       .set(Role::AttnOut, {"attention.dense"})
                                       .set(Role::FfnUp, {"dense_h_to_4h"})
                                       .set(Role::FfnDown, {"dense_4h_to_h"})
                                       .set(Role::Norm, {"input_layernorm", "post_attention_layernorm", "final_layer_norm"})
                                       .set(Role::Embed, {"embed_in"})
                                       .set(Role::Head, {"embed_out"});
    return roles;
}

namespace {

struct NeoxConfig {
    std::int64_t vocab, hidden, layers, heads, inter, max_pos, rotary_dims;
    double eps, init_range, rotary_pct;
    bool parallel, tie;
    std::string act;
    RopeConfig rope;

    static NeoxConfig from(const ModelConfig& c) {
        NeoxConfig n{};
        n.vocab = c.get_positive("vocab_size");
        n.hidden = c.get_positive("hidden_size");
        n.layers = c.get_positive("num_hidden_layers");
        n.heads = c.get_positive("num_attention_heads");
        n.inter = c.get_positive("intermediate_size");
        n.max_pos = c.get_int_or("max_position_embeddings", 2048);
        n.eps = c.get_number_or("layer_norm_eps", 1e-5);
        n.init_range = c.get_number_or("initializer_range", 0.02);
        n.act = c.get_string_or("hidden_act", "gelu");
        n.parallel = c.raw.value("use_parallel_residual", true);
        n.tie = c.raw.value("tie_word_embeddings", false);
        n.rotary_pct = c.get_number_or("rotary_pct", 0.25);
        if (n.hidden % n.heads != 0) throw Error("hidden_size is not a multiple of num_attention_heads", c.source);
        if (!(n.rotary_pct > 0.0 && n.rotary_pct <= 1.0))
            throw Error("rotary_pct must be in (0, 1], got " + std::to_string(n.rotary_pct), c.source, "field rotary_pct");
        const auto D = n.hidden / n.heads;
        n.rotary_dims = static_cast<std::int64_t>(static_cast<double>(D) * n.rotary_pct);
        if (n.rotary_dims < 2 || n.rotary_dims % 2 != 0)
            throw Error("rotary_pct " + std::to_string(n.rotary_pct) + " gives " + std::to_string(n.rotary_dims) +
                            " rotary dims per head; they must be even and at least 2", c.source, "field rotary_pct");
        n.rope = RopeConfig::from(c, n.rotary_dims, c.get_number_or("rotary_emb_base", 10000.0), n.max_pos);
        activation(n.act, c.source);
        return n;
    }
};

class NeoxAttentionImpl : public torch::nn::Module {
public:
    explicit NeoxAttentionImpl(const NeoxConfig& c) : torch::nn::Module("GPTNeoXAttention"), H(c.heads), D(c.hidden / c.heads) {
        query_key_value = register_module("query_key_value", Linear(c.hidden, 3 * c.hidden, true));
        dense = register_module("dense", Linear(c.hidden, c.hidden, true));
    }
    // h (B, T, C); cos/sin (T, R); mask_add (B, 1, T, P + T); prefix k/v (B, H, P, D) used as stored.
    // cos/sin (B, 1, T, R).
    at::Tensor forward(const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask_add, const at::Tensor& pk,
                       const at::Tensor& pv, std::pair<at::Tensor, at::Tensor>* present) {
        const auto B = h.size(0), T = h.size(1);
        // Per head: [q_h, k_h, v_h] (not all q, all k, all v).
        const at::Tensor qkv = query_key_value->forward(h).view({B, T, H, 3 * D}).permute({0, 2, 1, 3});
        at::Tensor q = apply_rope(qkv.narrow(3, 0, D), cos, sin);
        at::Tensor k = apply_rope(qkv.narrow(3, D, D), cos, sin);
        at::Tensor v = qkv.narrow(3, 2 * D, D);
        if (present) *present = {k, v};
        if (pk.defined()) {
            k = torch::cat({pk.to(k.dtype()), k}, 2);
            v = torch::cat({pv.to(v.dtype()), v}, 2);
        }
        return dense->forward(attend(q, k, v, mask_add, 1.0 / std::sqrt(static_cast<double>(D))));
    }
    Linear query_key_value{nullptr}, dense{nullptr};
    PrefixProvider prefix;
    std::int64_t H, D;
};
TORCH_MODULE(NeoxAttention);

class NeoxMLPImpl : public torch::nn::Module {
public:
    explicit NeoxMLPImpl(const NeoxConfig& c) : torch::nn::Module("GPTNeoXMLP"), act(activation(c.act, "hidden_act")) {
        dense_h_to_4h = register_module("dense_h_to_4h", Linear(c.hidden, c.inter, true));
        dense_4h_to_h = register_module("dense_4h_to_h", Linear(c.inter, c.hidden, true));
    }
    at::Tensor forward(const at::Tensor& x) { return dense_4h_to_h->forward(act(dense_h_to_4h->forward(x))); }
    Linear dense_h_to_4h{nullptr}, dense_4h_to_h{nullptr};
    std::function<at::Tensor(const at::Tensor&)> act;
};
TORCH_MODULE(NeoxMLP);

class NeoxLayerImpl : public torch::nn::Module {
public:
    explicit NeoxLayerImpl(const NeoxConfig& c) : torch::nn::Module("GPTNeoXLayer"), parallel(c.parallel) {
        input_layernorm = register_module("input_layernorm", LayerNorm(c.hidden, c.eps));
        post_attention_layernorm = register_module("post_attention_layernorm", LayerNorm(c.hidden, c.eps));
        attention = register_module("attention", NeoxAttention(c));
        mlp = register_module("mlp", NeoxMLP(c));
    }
    at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask_add, const at::Tensor& pk,
                       const at::Tensor& pv, std::pair<at::Tensor, at::Tensor>* present) {
        const at::Tensor a_in = input_layernorm->forward(x);
        at::Tensor a = attention->forward(a_in, cos, sin, mask_add, pk, pv, present);
        if (!after_attention.empty()) a = after_attention.apply(a, a_in);
        // Parallel: x + attn(ln1(x)) + mlp(ln2(x)); sequential: h = x + attn(ln1(x)); h + mlp(ln2(h)).
        const at::Tensor h = parallel ? x : x + a;
        const at::Tensor f_in = post_attention_layernorm->forward(h);
        at::Tensor f = mlp->forward(f_in);
        if (!after_ffn.empty()) f = after_ffn.apply(f, f_in);
        return parallel ? x + a + f : h + f;
    }
    LayerNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
    NeoxAttention attention{nullptr};
    NeoxMLP mlp{nullptr};
    Site after_attention, after_ffn;
    bool parallel;
};
TORCH_MODULE(NeoxLayer);

class NeoxImpl : public TransformerModel {
public:
    NeoxImpl(const ModelConfig& cfg, const NeoxConfig& c, bool head)
        : TransformerModel(cfg.architecture.empty() ? (head ? "GPTNeoXForCausalLM" : "GPTNeoXModel") : cfg.architecture), c_(c), head_(head) {
        config_ = cfg;
        prefix_ = head ? "gpt_neox" : "";
        torch::nn::Module* host = &base_host(head, prefix_, "GPTNeoXModel");
        embed_in = host->register_module("embed_in", Embedding(c.vocab, c.hidden));
        auto list = host->register_module("layers", torch::nn::ModuleList());
        const std::string base = prefix_.empty() ? "" : prefix_ + ".";
        for (std::int64_t i = 0; i < c.layers; ++i) {
            auto l = NeoxLayer(c);
            list->push_back(l);
            layers.push_back(l);
            add_decoder_block(base + "layers." + std::to_string(i), static_cast<int>(i), "attention", "mlp", c.heads, c.hidden / c.heads,
                              &l->attention->prefix, &l->after_attention, &l->after_ffn);
        }
        final_layer_norm = host->register_module("final_layer_norm", LayerNorm(c.hidden, c.eps));
        if (head) {
            embed_out = c.tie ? register_module("embed_out", Linear(embed_in->weight, at::Tensor()))
                              : register_module("embed_out", Linear(c.hidden, c.vocab, false));
        }
        prompt_ = &prompt_fn_;
    }

    void validate_inputs(const ForwardInputs& in) const override { check_token_inputs(in, c_.vocab, c_.max_pos); }

    ForwardOutputs forward(const ForwardInputs& in) override {
        DecoderInputs d = prepare_decoder(in, embed_in->forward(in.input_ids.to(torch::kLong)), prompt_fn_, attentions_, c_.max_pos,
                                                "max_position_embeddings");
        at::Tensor h = d.h;
        const auto T = h.size(1);
        auto [cos_t, sin_t] = rope_cos_sin_at(c_.rope, d.positions, d.past + T);
        const at::Tensor cos = cos_t.to(h.dtype()).unsqueeze(1), sin = sin_t.to(h.dtype()).unsqueeze(1);
        ForwardOutputs out;
        if (in.output_hidden_states) out.hidden_states.push_back(h);
        d.checkpoint = checkpoint_ && is_training();
        h = d.run_blocks(in, layers.size(), h, in.output_hidden_states ? &out.hidden_states : nullptr,
                         [=](std::size_t i, const at::Tensor& x, const at::Tensor& mask, const at::Tensor& pk, const at::Tensor& pv, auto* present) {
                             return layers[i]->forward(x, cos, sin, mask, pk, pv, present);
                         });
        h = final_layer_norm->forward(h);
        if (in.output_hidden_states) out.hidden_states.push_back(h);
        out.last_hidden_state = h;
        if (head_ && in.labels.defined() && in.loss_only) {
            out.loss = head_lm_loss(*embed_out, h, in.labels, true);
            return out;
        }
        if (head_) out.logits = embed_out->forward(h);
        if (head_ && in.labels.defined()) out.loss = lm_loss(out.logits, in.labels, true);
        return out;
    }

    std::string base_model_prefix() const override { return "gpt_neox"; }
    bool is_base_model() const override { return !head_; }
    bool supports_gradient_checkpointing() const override { return true; }
    std::int64_t num_layers() const override { return c_.layers; }
    std::int64_t hidden_size() const override { return c_.hidden; }
    const RoleTable& roles() const override { return gpt_neox_roles(); }
    std::map<std::string, std::string> tied_parameters() const override {
        if (head_ && c_.tie) return {{"embed_out.weight", "gpt_neox.embed_in.weight"}};
        return {};
    }

    // transformers' _init_weights: N(0, initializer_range) for linear weights and embeddings, zero
    // biases, unit LayerNorms.
    void init_weights(std::uint64_t seed, const std::set<std::string>* only) override {
        init_normal_weights(*this, c_.init_range, seed, only);
    }

    Embedding embed_in{nullptr};
    std::vector<NeoxLayer> layers;
    LayerNorm final_layer_norm{nullptr};
    Linear embed_out{nullptr};

private:
    NeoxConfig c_;
    bool head_;
    std::string prefix_;
    PromptProvider prompt_fn_;
};

}  // namespace

std::shared_ptr<TransformerModel> make_gpt_neox(const ModelConfig& cfg, bool with_lm_head) {
    return std::make_shared<NeoxImpl>(cfg, NeoxConfig::from(cfg), with_lm_head);
}

}  // namespace dt
