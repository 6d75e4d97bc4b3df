// Llama in LibTorch, following transformers 4.35's modeling_llama.py (eager attention).
// Tensor legend: B batch, T tokens, P prefix/prompt length, S keys, C hidden, H query heads,
// G key/value heads, D head dim.
#include "models/llama.h"
#include "core/profiler.h"

#include "core/error.h"
#include "models/decoder.h"
#include "models/rope.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

namespace dt {

const RoleTable& llama_roles() {
    static const RoleTable roles = RoleTable()
                                       .set(Role::AttnQ, {"q_proj"})
                                       .set(Role::AttnK, {"k_proj"})
                                       .set(Role::AttnV, {"v_proj"})
                                       .set(Role::AttnOut, {"o_proj"})
                                       .set(Role::FfnUp, {"up_proj"})
                                       .set(Role::FfnGate, {"gate_proj"})
                                       .set(Role::FfnDown, {"down_proj"})
                                       .set(Role::Norm, {"input_layernorm", "post_attention_layernorm", "norm"})
                                       .set(Role::Embed, {"embed_tokens"})
                                       .set(Role::Head, {"lm_head"});
    return roles;
}

namespace {

struct LlamaConfig {
    std::string family;  // "Llama", "Mistral", "Qwen2": HF class-name prefix
    std::int64_t vocab, hidden, layers, heads, kv_heads, head_dim, inter, max_pos, pad, sliding_window;
    double eps, theta, init_range;
    bool tie, qkv_bias, o_bias;
    std::string act;
    RopeConfig rope;

    static LlamaConfig from(const ModelConfig& c, const std::string& family) {
        LlamaConfig l{};
        l.family = family;
        l.vocab = c.get_positive("vocab_size");
        l.hidden = c.get_positive("hidden_size");
        l.layers = c.get_positive("num_hidden_layers");
        l.heads = c.get_positive("num_attention_heads");
        l.kv_heads = c.get_int_or("num_key_value_heads", l.heads);
        l.inter = c.get_positive("intermediate_size");
        l.max_pos = c.get_int_or("max_position_embeddings", 2048);
        l.pad = c.get_int_or("pad_token_id", 0);
        l.eps = c.get_number_or("rms_norm_eps", 1e-6);
        l.theta = c.get_number_or("rope_theta", 10000.0);
        l.init_range = c.get_number_or("initializer_range", 0.02);
        l.act = c.get_string_or("hidden_act", "silu");
        l.tie = c.raw.value("tie_word_embeddings", false);
        // Llama's attention_bias covers q, k, v and o; Qwen2 has biases on q, k, v only.
        l.qkv_bias = family == "Qwen2" || c.raw.value("attention_bias", false);
        l.o_bias = family != "Qwen2" && c.raw.value("attention_bias", false);
        const bool has_head_dim = c.raw.contains("head_dim") && !c.raw["head_dim"].is_null();
        if (!has_head_dim && l.hidden % l.heads != 0)
            throw Error("hidden_size is not a multiple of num_attention_heads", c.source, "set head_dim or fix the sizes");
        l.head_dim = has_head_dim ? c.get_positive("head_dim") : l.hidden / l.heads;
        if (l.kv_heads <= 0 || l.heads % l.kv_heads != 0)
            throw Error("num_key_value_heads (" + std::to_string(l.kv_heads) + ") does not divide num_attention_heads (" +
                            std::to_string(l.heads) + ")", c.source, "field num_key_value_heads");
        // Mistral's window (null = none); Qwen2 uses it only with use_sliding_window.
        l.sliding_window = 0;
        const bool window_used = family == "Mistral" || (family == "Qwen2" && c.raw.value("use_sliding_window", false));
        if (window_used && c.raw.contains("sliding_window") && !c.raw["sliding_window"].is_null()) {
            l.sliding_window = c.get_int("sliding_window");
            if (l.sliding_window <= 0)
                throw Error("sliding_window must be positive (or null for none), got " + std::to_string(l.sliding_window), c.source,
                            "field sliding_window");
        }
        if (l.head_dim % 2 != 0) throw Error("the head size must be even for rotary embeddings", c.source);
        l.rope = RopeConfig::from(c, l.head_dim, l.theta, l.max_pos);
        activation(l.act, c.source);
        return l;
    }
};

class RMSNormImpl : public torch::nn::Module {
public:
    RMSNormImpl(const std::string& family, std::int64_t dim, double eps) : torch::nn::Module(family + "RMSNorm"), eps_(eps) {
        weight = register_parameter("weight", torch::ones({dim}));
    }
    at::Tensor forward(const at::Tensor& x) {
        at::Tensor h = at_least_float(x);
        h = h * torch::rsqrt(h.pow(2).mean(-1, true) + eps_);
        return weight * h.to(x.scalar_type());
    }
    at::Tensor weight;

private:
    double eps_;
};
TORCH_MODULE(RMSNorm);

class LlamaAttentionImpl : public torch::nn::Module {
public:
    explicit LlamaAttentionImpl(const LlamaConfig& c)
        : torch::nn::Module(c.family + "Attention"), H(c.heads), G(c.kv_heads), D(c.head_dim) {
        q_proj = register_module("q_proj", Linear(c.hidden, H * D, c.qkv_bias));
        k_proj = register_module("k_proj", Linear(c.hidden, G * D, c.qkv_bias));
        v_proj = register_module("v_proj", Linear(c.hidden, G * D, c.qkv_bias));
        o_proj = register_module("o_proj", Linear(H * D, c.hidden, c.o_bias));
    }
    // h (B, T, C); cos/sin (B, T, D); mask_add (B, 1, T, S); prefix k/v (B, G, P, D) used as stored.
    at::Tensor forward(const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask_add,
                       const at::Tensor& pk, const at::Tensor& pv, std::pair<at::Tensor, at::Tensor>* present) {
        const auto B = h.size(0), T = h.size(1);
        at::Tensor q = q_proj->forward(h).view({B, T, H, D}).transpose(1, 2);
        at::Tensor k = k_proj->forward(h).view({B, T, G, D}).transpose(1, 2);
        at::Tensor v = v_proj->forward(h).view({B, T, G, D}).transpose(1, 2);
        const at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);
        q = apply_rope(q, c, s);
        k = apply_rope(k, c, s);
        if (present) *present = {k, v};
        if (pk.defined()) {
            k = torch::cat({pk.to(k.dtype()), k}, 2);
            v = torch::cat({pv.to(v.dtype()), v}, 2);
        }
        if (G != H) {  // query head h uses key/value head h / (H / G)
            k = k.repeat_interleave(H / G, 1);
            v = v.repeat_interleave(H / G, 1);
        }
        return o_proj->forward(attend(q, k, v, mask_add, 1.0 / std::sqrt(static_cast<double>(D))));
    }
    Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
    PrefixProvider prefix;
    std::int64_t H, G, D;
};
TORCH_MODULE(LlamaAttention);

class LlamaMLPImpl : public torch::nn::Module {
public:
    explicit LlamaMLPImpl(const LlamaConfig& c) : torch::nn::Module(c.family + "MLP"), act(activation(c.act, "hidden_act")) {
        gate_proj = register_module("gate_proj", Linear(c.hidden, c.inter, false));
        up_proj = register_module("up_proj", Linear(c.hidden, c.inter, false));
        down_proj = register_module("down_proj", Linear(c.inter, c.hidden, false));
    }
    at::Tensor forward(const at::Tensor& x) { return down_proj->forward(act(gate_proj->forward(x)) * up_proj->forward(x)); }
    Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
    std::function<at::Tensor(const at::Tensor&)> act;
};
TORCH_MODULE(LlamaMLP);

class LlamaDecoderLayerImpl : public torch::nn::Module {
public:
    explicit LlamaDecoderLayerImpl(const LlamaConfig& c) : torch::nn::Module(c.family + "DecoderLayer") {
        self_attn = register_module("self_attn", LlamaAttention(c));
        mlp = register_module("mlp", LlamaMLP(c));
        input_layernorm = register_module("input_layernorm", RMSNorm(c.family, c.hidden, c.eps));
        post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.family, c.hidden, c.eps));
    }
    at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask_add,
                       const at::Tensor& pk, const at::Tensor& pv, std::pair<at::Tensor, at::Tensor>* present) {
        const at::Tensor a_in = input_layernorm->forward(x);
        at::Tensor a = self_attn->forward(a_in, cos, sin, mask_add, pk, pv, present);
        if (!after_attention.empty()) a = after_attention.apply(a, a_in);
        const at::Tensor h = x + a;
        const at::Tensor f_in = post_attention_layernorm->forward(h);
        at::Tensor f = mlp->forward(f_in);
        if (!after_ffn.empty()) f = after_ffn.apply(f, f_in);
        return h + f;
    }
    LlamaAttention self_attn{nullptr};
    LlamaMLP mlp{nullptr};
    RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
    Site after_attention, after_ffn;
};
TORCH_MODULE(LlamaDecoderLayer);

class LlamaImpl : public TransformerModel {
public:
    LlamaImpl(const ModelConfig& cfg, const LlamaConfig& c, bool head)
        : TransformerModel(cfg.architecture.empty() ? c.family + (head ? "ForCausalLM" : "Model") : cfg.architecture), c_(c), head_(head) {
        config_ = cfg;
        prefix_ = head ? "model" : "";
        torch::nn::Module* host = &base_host(head, prefix_, c.family + "Model");
        embed_tokens = host->register_module("embed_tokens", Embedding(c.vocab, c.hidden));
        auto list = host->register_module("layers", torch::nn::ModuleList());
        const std::string base = prefix_.empty() ? "" : prefix_ + ".";
        for (std::int64_t i = 0; i < c.layers; ++i) {
            auto l = LlamaDecoderLayer(c);
            list->push_back(l);
            layers.push_back(l);
            add_decoder_block(base + "layers." + std::to_string(i), static_cast<int>(i), "self_attn", "mlp", c.kv_heads, c.head_dim,
                              &l->self_attn->prefix, &l->after_attention, &l->after_ffn);
        }
        norm = host->register_module("norm", RMSNorm(c.family, c.hidden, c.eps));
        if (head) {
            lm_head = c.tie ? register_module("lm_head", Linear(embed_tokens->weight, at::Tensor()))
                            : register_module("lm_head", Linear(c.hidden, c.vocab, false));
        }
        prompt_ = &prompt_fn_;
    }

    void validate_inputs(const ForwardInputs& in) const override { check_token_inputs(in, c_.vocab, c_.max_pos); }

    ForwardOutputs forward(const ForwardInputs& in) override {
        DecoderInputs d = prepare_decoder(in, embed_tokens->forward(in.input_ids.to(torch::kLong)), prompt_fn_, attentions_, c_.max_pos,
                                                "max_position_embeddings", c_.sliding_window);
        at::Tensor h = d.h;
        const auto T = h.size(1), past = d.past;
        // Rotary tables for each row's positions.
        auto [cos_t, sin_t] = rope_cos_sin_at(c_.rope, d.positions, past + T);
        const at::Tensor cos = cos_t.to(h.dtype()), sin = sin_t.to(h.dtype());
        ForwardOutputs out;
        if (in.output_hidden_states) out.hidden_states.push_back(h);
        d.checkpoint = checkpoint_ && is_training();
        h = d.run_blocks(in, layers.size(), h, in.output_hidden_states ? &out.hidden_states : nullptr,
                         [=](std::size_t i, const at::Tensor& x, const at::Tensor& mask, const at::Tensor& pk, const at::Tensor& pv, auto* present) {
                             return layers[i]->forward(x, cos, sin, mask, pk, pv, present);
                         });
        h = norm->forward(h);
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

    std::string base_model_prefix() const override { return "model"; }
    bool is_base_model() const override { return !head_; }
    bool supports_gradient_checkpointing() const override { return true; }
    std::int64_t num_layers() const override { return c_.layers; }
    std::int64_t hidden_size() const override { return c_.hidden; }
    const RoleTable& roles() const override { return llama_roles(); }
    std::map<std::string, std::string> tied_parameters() const override {
        if (head_ && c_.tie) return {{"lm_head.weight", "model.embed_tokens.weight"}};
        return {};
    }

    void init_weights(std::uint64_t seed, const std::set<std::string>* only) override {
        torch::NoGradGuard ng;
        auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
        for (const auto& m : named_modules("", true)) {
            const bool norm_module = m.value()->name().find("Norm") != std::string::npos;
            for (auto& p : m.value()->named_parameters(false)) {
                const std::string full = m.key().empty() ? p.key() : m.key() + "." + p.key();
                if (only && !only->count(full)) continue;
                if (norm_module) p.value().fill_(1.0);
                else if (p.key() == "weight") p.value().normal_(0.0, c_.init_range, gen);
                else p.value().zero_();
            }
        }
        if (!only || only->count(word_embeddings_path() + ".weight")) {
            if (c_.pad >= 0 && c_.pad < c_.vocab) embed_tokens->weight[c_.pad].zero_();
        }
    }

    Embedding embed_tokens{nullptr};
    std::vector<LlamaDecoderLayer> layers;
    RMSNorm norm{nullptr};
    Linear lm_head{nullptr};

private:
    LlamaConfig c_;
    bool head_;
    std::string prefix_;
    PromptProvider prompt_fn_;
};

}  // namespace

std::shared_ptr<TransformerModel> make_llama(const ModelConfig& cfg, bool with_lm_head, const std::string& family) {
    return std::make_shared<LlamaImpl>(cfg, LlamaConfig::from(cfg, family), with_lm_head);
}

}  // namespace dt
