// Tensor legend: B batch, T encoder tokens, U decoder tokens, P prefix/prompt length, S keys,
// C d_model, H heads, D d_kv.
#include "models/t5.h"
#include "core/profiler.h"

#include "core/error.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <set>

namespace dt {

// Block-relative names as PEFT's T5 defaults spell them (LoRA: q, v; IA3: k, v, wo with wo a
// feed-forward input). wi (v1.0) and wi_1 (gated) are the up projection, wi_0 the gate.
const RoleTable& t5_roles() {
    static const RoleTable roles = RoleTable()
                                       .set(Role::AttnQ, {"q"})
                                       .set(Role::AttnK, {"k"})
                                       .set(Role::AttnV, {"v"})
                                       .set(Role::AttnOut, {"o"})
                                       .set(Role::FfnUp, {"wi", "wi_1"})
                                       .set(Role::FfnGate, {"wi_0"})
                                       .set(Role::FfnDown, {"wo"})
                                       .set(Role::Norm, {"layer_norm", "final_layer_norm"})
                                       .set(Role::Embed, {"shared"})
                                       .set(Role::Head, {"lm_head"});
    return roles;
}

at::Tensor t5_relative_bucket(const at::Tensor& relative_position, bool bidirectional, std::int64_t num_buckets, std::int64_t max_distance) {
    at::Tensor rel = relative_position.to(torch::kLong);
    at::Tensor buckets = torch::zeros_like(rel);
    if (bidirectional) {
        num_buckets /= 2;
        buckets = buckets + (rel > 0).to(torch::kLong) * num_buckets;
        rel = rel.abs();
    } else {
        rel = -torch::min(rel, torch::zeros_like(rel));
    }
    const std::int64_t max_exact = num_buckets / 2;
    const at::Tensor is_small = rel < max_exact;
    at::Tensor large = max_exact + (torch::log(rel.to(torch::kFloat) / static_cast<double>(max_exact)) /
                                    std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                                    static_cast<double>(num_buckets - max_exact))
                                       .to(torch::kLong);
    large = torch::min(large, torch::full_like(large, num_buckets - 1));
    return buckets + torch::where(is_small, rel, large);
}

namespace {

struct T5Config {
    std::int64_t vocab, d_model, d_kv, d_ff, layers, decoder_layers, heads, buckets, max_distance, pad, decoder_start;
    double eps, factor;
    bool gated, tie;
    std::string act;

    static T5Config from(const ModelConfig& c) {
        T5Config t{};
        t.vocab = c.get_positive("vocab_size");
        t.d_model = c.get_positive("d_model");
        t.d_kv = c.get_positive("d_kv");
        t.d_ff = c.get_positive("d_ff");
        t.layers = c.get_positive("num_layers");
        t.decoder_layers = c.raw.contains("num_decoder_layers") && !c.raw["num_decoder_layers"].is_null() ? c.get_positive("num_decoder_layers")
                                                                                                          : t.layers;
        t.heads = c.get_positive("num_heads");
        t.buckets = c.get_positive("relative_attention_num_buckets");
        t.max_distance = c.get_int_or("relative_attention_max_distance", 128);
        if (t.buckets < 4)
            throw Error("relative_attention_num_buckets must be at least 4, got " + std::to_string(t.buckets), c.source,
                        "field relative_attention_num_buckets");
        if (t.max_distance <= t.buckets / 4)
            throw Error("relative_attention_max_distance (" + std::to_string(t.max_distance) + ") must exceed a quarter of the buckets",
                        c.source, "field relative_attention_max_distance");
        t.pad = c.get_int_or("pad_token_id", 0);
        t.decoder_start = c.get_int_or("decoder_start_token_id", t.pad);
        if (t.decoder_start < 0 || t.decoder_start >= t.vocab)
            throw Error("decoder_start_token_id is outside the vocabulary", c.source, "field decoder_start_token_id");
        t.eps = c.get_number_or("layer_norm_epsilon", 1e-6);
        t.factor = c.get_number_or("initializer_factor", 1.0);
        t.tie = c.raw.value("tie_word_embeddings", true);
        // "relu", "gelu", "gated-gelu" (= gelu_new, as transformers maps it), "gated-silu", ...
        const std::string proj = c.get_string_or("feed_forward_proj", "relu");
        const auto dash = proj.find('-');
        t.gated = dash != std::string::npos && proj.substr(0, dash) == "gated";
        if (dash != std::string::npos && !t.gated)
            throw Error("feed_forward_proj '" + proj + "' is not of the form 'gated-{ACT}' or '{ACT}'", c.source, "field feed_forward_proj");
        t.act = proj == "gated-gelu" ? "gelu_new" : (t.gated ? proj.substr(dash + 1) : proj);
        activation(t.act, c.source + ": feed_forward_proj");
        return t;
    }
};

class T5LayerNormImpl : public torch::nn::Module {
public:
    T5LayerNormImpl(std::int64_t dim, double eps) : torch::nn::Module("T5LayerNorm"), eps_(eps) {
        weight = register_parameter("weight", torch::ones({dim}));
    }
    // RMS norm without a mean or bias, computed in float32.
    at::Tensor forward(const at::Tensor& x) {
        const at::Tensor var = at_least_float(x).pow(2).mean(-1, true);
        return weight * (x * torch::rsqrt(var + eps_)).to(weight.scalar_type());
    }
    at::Tensor weight;

private:
    double eps_;
};
TORCH_MODULE(T5LayerNorm);

class T5AttentionImpl : public torch::nn::Module {
public:
    T5AttentionImpl(const T5Config& c, bool relative_bias) : torch::nn::Module("T5Attention"), H(c.heads), D(c.d_kv) {
        q = register_module("q", Linear(c.d_model, H * D, false));
        k = register_module("k", Linear(c.d_model, H * D, false));
        v = register_module("v", Linear(c.d_model, H * D, false));
        o = register_module("o", Linear(H * D, c.d_model, false));
        if (relative_bias) relative_attention_bias = register_module("relative_attention_bias", Embedding(c.buckets, H));
    }
    // x (B, U, C) queries; kv_in (B, S, C) keys/values source (x itself for self-attention);
    // bias (B or 1, H, U, P + S) position bias plus mask; prefix k/v (B, H, P, D) used as stored.
    at::Tensor forward(const at::Tensor& x, const at::Tensor& kv_in, const at::Tensor& bias, const at::Tensor& pk = {},
                       const at::Tensor& pv = {}, std::pair<at::Tensor, at::Tensor>* present = nullptr) {
        const auto B = x.size(0), U = x.size(1), S = kv_in.size(1);
        at::Tensor qh = q->forward(x).view({B, U, H, D}).transpose(1, 2);
        at::Tensor kh = k->forward(kv_in).view({B, S, H, D}).transpose(1, 2);
        at::Tensor vh = v->forward(kv_in).view({B, S, H, D}).transpose(1, 2);
        if (present) *present = {kh, vh};
        if (pk.defined()) {
            kh = torch::cat({pk.to(kh.dtype()), kh}, 2);
            vh = torch::cat({pv.to(vh.dtype()), vh}, 2);
        }
        return o->forward(attend(qh, kh, vh, bias, 1.0));  // no 1/sqrt(D) in T5
    }
    Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
    Embedding relative_attention_bias{nullptr};
    PrefixProvider prefix;
    std::int64_t H, D;
};
TORCH_MODULE(T5Attention);

// SelfAttention or EncDecAttention with its pre-norm and the residual; `site` sees the attention
// output before the residual.
class T5LayerAttentionImpl : public torch::nn::Module {
public:
    T5LayerAttentionImpl(const T5Config& c, bool cross, bool relative_bias)
        : torch::nn::Module(cross ? "T5LayerCrossAttention" : "T5LayerSelfAttention"), cross_(cross) {
        attention = register_module(cross ? "EncDecAttention" : "SelfAttention", T5Attention(c, relative_bias));
        layer_norm = register_module("layer_norm", T5LayerNorm(c.d_model, c.eps));
    }
    at::Tensor forward(const at::Tensor& x, const at::Tensor& kv_source, const at::Tensor& bias, const at::Tensor& pk, const at::Tensor& pv,
                       std::pair<at::Tensor, at::Tensor>* present = nullptr) {
        const at::Tensor n = layer_norm->forward(x);
        at::Tensor a = attention->forward(n, cross_ ? kv_source : n, bias, pk, pv, present);
        if (!site.empty()) a = site.apply(a, n);
        return x + a;
    }
    T5Attention attention{nullptr};
    T5LayerNorm layer_norm{nullptr};
    Site site;

private:
    bool cross_;
};
TORCH_MODULE(T5LayerAttention);

class T5DenseImpl : public torch::nn::Module {
public:
    explicit T5DenseImpl(const T5Config& c)
        : torch::nn::Module(c.gated ? "T5DenseGatedActDense" : "T5DenseActDense"), act(activation(c.act, "feed_forward_proj")) {
        if (c.gated) {
            wi_0 = register_module("wi_0", Linear(c.d_model, c.d_ff, false));
            wi_1 = register_module("wi_1", Linear(c.d_model, c.d_ff, false));
        } else {
            wi = register_module("wi", Linear(c.d_model, c.d_ff, false));
        }
        wo = register_module("wo", Linear(c.d_ff, c.d_model, false));
    }
    at::Tensor forward(const at::Tensor& x) {
        if (wi) return wo->forward(act(wi->forward(x)));
        return wo->forward(act(wi_0->forward(x)) * wi_1->forward(x));
    }
    Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
    std::function<at::Tensor(const at::Tensor&)> act;
};
TORCH_MODULE(T5Dense);

class T5LayerFFImpl : public torch::nn::Module {
public:
    explicit T5LayerFFImpl(const T5Config& c) : torch::nn::Module("T5LayerFF") {
        DenseReluDense = register_module("DenseReluDense", T5Dense(c));
        layer_norm = register_module("layer_norm", T5LayerNorm(c.d_model, c.eps));
    }
    at::Tensor forward(const at::Tensor& x) {
        const at::Tensor n = layer_norm->forward(x);
        at::Tensor f = DenseReluDense->forward(n);
        if (!site.empty()) f = site.apply(f, n);
        return x + f;
    }
    T5Dense DenseReluDense{nullptr};
    T5LayerNorm layer_norm{nullptr};
    Site site;
};
TORCH_MODULE(T5LayerFF);

class T5BlockImpl : public torch::nn::Module {
public:
    T5BlockImpl(const T5Config& c, bool decoder, bool relative_bias) : torch::nn::Module("T5Block") {
        auto list = register_module("layer", torch::nn::ModuleList());
        self_attn = T5LayerAttention(c, false, relative_bias);
        list->push_back(self_attn);
        if (decoder) {
            cross_attn = T5LayerAttention(c, true, false);
            list->push_back(cross_attn);
        }
        ff = T5LayerFF(c);
        list->push_back(ff);
    }
    T5LayerAttention self_attn{nullptr}, cross_attn{nullptr};
    T5LayerFF ff{nullptr};
};
TORCH_MODULE(T5Block);

class T5StackImpl : public torch::nn::Module {
public:
    T5StackImpl(const T5Config& c, const Embedding& shared, bool decoder) : torch::nn::Module("T5Stack"), c_(c), decoder_(decoder) {
        embed_tokens = register_module("embed_tokens", Embedding(shared->weight));
        auto list = register_module("block", torch::nn::ModuleList());
        const auto n = decoder ? c.decoder_layers : c.layers;
        for (std::int64_t i = 0; i < n; ++i) {
            auto b = T5Block(c, decoder, i == 0);
            list->push_back(b);
            blocks.push_back(b);
        }
        final_layer_norm = register_module("final_layer_norm", T5LayerNorm(c.d_model, c.eps));
    }

    // h (B, L, C) embedded input (a prompt already in front); mask (B, L) 1 = real; for the
    // decoder, enc (B, T, C), enc_mask (B, T) and the self-attention cache (or null). Hidden states
    // as transformers collects them: each block's input, then the final norm's output.
    at::Tensor run(at::Tensor h, const at::Tensor& mask, const at::Tensor& enc, const at::Tensor& enc_mask, std::vector<at::Tensor>* hidden,
                   KVCache* cache = nullptr) {
        const auto B = h.size(0), L = h.size(1);
        const float neg = std::numeric_limits<float>::lowest();
        const std::int64_t cached = cache ? cache->length() : 0;
        if (cache && cache->layers.empty()) cache->layers.resize(blocks.size());
        std::vector<std::pair<at::Tensor, at::Tensor>> pkv(blocks.size());
        std::int64_t prefix = 0;
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            const auto& p = blocks[i]->self_attn->attention->prefix;
            if (p) {
                pkv[i] = p(B);
                prefix = pkv[i].first.size(2);
            }
        }
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            if (prefix > 0 && !pkv[i].first.defined())
                throw Error("a T5 prefix must cover every decoder block", "prefix", "apply the prefix to all decoder layers");
            if (cached > 0) {
                const auto& c = cache->layers[i];
                pkv[i] = prefix > 0 ? std::make_pair(torch::cat({pkv[i].first.to(c.first.dtype()), c.first}, 2),
                                                     torch::cat({pkv[i].second.to(c.second.dtype()), c.second}, 2))
                                    : c;
            }
        }
        // Position bias from block 0, queries at past..past+L-1 and keys at 0..past+L-1 (prefix,
        // cache, new), plus the mask.
        const auto past = prefix + cached, S = past + L;
        const at::Tensor qpos = torch::arange(past, S, torch::kLong).unsqueeze(1), kpos = torch::arange(0, S, torch::kLong).unsqueeze(0);
        const at::Tensor buckets = t5_relative_bucket(kpos - qpos, !decoder_, c_.buckets, c_.max_distance);  // (L, S)
        at::Tensor bias = blocks[0]->self_attn->attention->relative_attention_bias->forward(buckets).permute({2, 0, 1}).unsqueeze(0);
        at::Tensor keys_real = cached > 0 ? torch::cat({cache->mask.to(torch::kLong), mask}, 1) : mask;
        at::Tensor blocked = (keys_real == 0).view({B, 1, 1, cached + L});
        if (prefix > 0) blocked = torch::cat({torch::zeros({B, 1, 1, prefix}, blocked.options()), blocked}, 3);
        if (decoder_) blocked = blocked | (kpos > qpos).view({1, 1, L, S});
        bias = bias.to(h.dtype()) + torch::zeros({B, 1, blocked.size(2), S}, h.options()).masked_fill(blocked, neg);
        at::Tensor cross_bias;
        if (decoder_) {
            const auto T = enc.size(1);
            cross_bias = torch::zeros({B, c_.heads, L, T}, h.options()).masked_fill((enc_mask == 0).view({B, 1, 1, T}), neg);
        }
        std::pair<at::Tensor, at::Tensor> present;
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            if (hidden) hidden->push_back(h);
            auto& b = blocks[i];
            h = b->self_attn->forward(h, h, bias, pkv[i].first, pkv[i].second, cache ? &present : nullptr);
            if (cache) {
                auto& c = cache->layers[i];
                c = cached > 0 ? std::make_pair(torch::cat({c.first, present.first}, 2), torch::cat({c.second, present.second}, 2)) : present;
            }
            if (decoder_) h = b->cross_attn->forward(h, enc, cross_bias, at::Tensor(), at::Tensor());
            h = b->ff->forward(h);
        }
        if (cache) cache->mask = cached > 0 ? torch::cat({cache->mask, mask}, 1) : mask;
        h = final_layer_norm->forward(h);
        if (hidden) hidden->push_back(h);
        return h;
    }

    Embedding embed_tokens{nullptr};
    std::vector<T5Block> blocks;
    T5LayerNorm final_layer_norm{nullptr};

private:
    T5Config c_;
    bool decoder_;
};
TORCH_MODULE(T5Stack);

void check_ids(const at::Tensor& ids, const char* name, std::int64_t vocab, bool allow_ignore) {
    if (ids.dim() != 2) throw Error(std::string("'") + name + "' must have shape (batch, tokens), got " + std::to_string(ids.dim()) + " dims");
    if (at::isFloatingType(ids.scalar_type()) || ids.scalar_type() == at::kBool) throw Error(std::string("'") + name + "' must be an integer tensor");
    if (ids.size(1) == 0) throw Error(std::string("'") + name + "' has no tokens");
    at::Tensor v = ids.to(torch::kLong);
    if (allow_ignore) v = v.masked_fill(v == -100, 0);
    const auto lo = v.min().item<std::int64_t>(), hi = v.max().item<std::int64_t>();
    if (lo < 0 || hi >= vocab)
        throw Error(std::string("'") + name + "' holds id " + std::to_string(lo < 0 ? lo : hi) + ", outside the vocabulary of " +
                        std::to_string(vocab),
                    "", "was the input made with another tokenizer?");
}

class T5Impl : public TransformerModel {
public:
    T5Impl(const ModelConfig& cfg, const T5Config& c, T5Kind kind)
        : TransformerModel(cfg.architecture.empty() ? (kind == T5Kind::Base                    ? "T5Model"
                                                       : kind == T5Kind::ConditionalGeneration ? "T5ForConditionalGeneration"
                                                                                               : "T5EncoderModel")
                                                    : cfg.architecture),
          c_(c),
          kind_(kind) {
        config_ = cfg;
        shared = register_module("shared", Embedding(c.vocab, c.d_model));
        encoder = register_module("encoder", T5Stack(c, shared, false));
        for (std::size_t i = 0; i < encoder->blocks.size(); ++i) {
            const std::string p = "encoder.block." + std::to_string(i);
            blocks_.push_back(p);
            sites_.push_back({p + ".layer.0", "after_attention", static_cast<int>(i), &encoder->blocks[i]->self_attn->site});
            sites_.push_back({p + ".layer.1", "after_ffn", static_cast<int>(i), &encoder->blocks[i]->ff->site});
        }
        if (kind != T5Kind::EncoderOnly) {
            decoder = register_module("decoder", T5Stack(c, shared, true));
            for (std::size_t i = 0; i < decoder->blocks.size(); ++i) {
                const std::string p = "decoder.block." + std::to_string(i);
                blocks_.push_back(p);
                auto& b = decoder->blocks[i];
                sites_.push_back({p + ".layer.0", "after_attention", static_cast<int>(i), &b->self_attn->site});
                sites_.push_back({p + ".layer.2", "after_ffn", static_cast<int>(i), &b->ff->site});
                // Prefixes go to the decoder's self-attention, read from PEFT's table: decoder layer i
                // uses key/value slots (4i, 4i + 1) mod 2 * num_layers (PEFT duplicates the slot list
                // and regroups it by fours as self k, self v, cross k, cross v; T5 recomputes the
                // cross keys/values from the encoder output whenever P != the encoder length).
                attentions_.push_back({p + ".layer.0.SelfAttention", static_cast<int>((2 * i) % static_cast<std::size_t>(c.layers)), c.heads,
                                       c.d_kv, &b->self_attn->attention->prefix});
            }
        }
        if (kind == T5Kind::ConditionalGeneration)
            lm_head = c.tie ? register_module("lm_head", Linear(shared->weight, at::Tensor())) : register_module("lm_head", Linear(c.d_model, c.vocab, false));
        prompt_ = &prompt_fn_;
    }

    void validate_inputs(const ForwardInputs& in) const override {
        check_token_inputs(in, c_.vocab, std::numeric_limits<std::int64_t>::max());
        const auto B = in.input_ids.size(0);
        if (kind_ == T5Kind::EncoderOnly) return;
        if (in.decoder_input_ids.defined()) {
            check_ids(in.decoder_input_ids, "decoder_input_ids", c_.vocab, false);
            if (in.decoder_input_ids.size(0) != B) throw Error("'decoder_input_ids' has another batch size than input_ids");
        }
        if (in.labels.defined()) {
            check_ids(in.labels, "labels", c_.vocab, true);
            if (in.labels.size(0) != B) throw Error("'labels' has another batch size than input_ids");
        }
        if (!in.decoder_input_ids.defined() && !in.labels.defined())
            throw Error("T5 needs 'decoder_input_ids' or 'labels' for its decoder", "decoder_input_ids",
                        "give decoder_input_ids (starting with decoder_start_token_id " + std::to_string(c_.decoder_start) + ") or labels");
    }

    // transformers' _shift_right: decoder_start_token_id first, labels moved right, -100 -> pad.
    at::Tensor shift_right(const at::Tensor& labels) const {
        at::Tensor l = labels.to(torch::kLong);
        at::Tensor out = torch::full_like(l, c_.decoder_start);
        if (l.size(1) > 1) out.narrow(1, 1, l.size(1) - 1).copy_(l.narrow(1, 0, l.size(1) - 1));
        return out.masked_fill(out == -100, c_.pad);
    }

    ForwardOutputs forward(const ForwardInputs& in) override {
        const auto B = in.input_ids.size(0), T = in.input_ids.size(1);
        const auto lopts = in.input_ids.options().dtype(torch::kLong);
        ForwardOutputs out;
        KVCache* cache = kind_ == T5Kind::EncoderOnly ? nullptr : in.cache;
        at::Tensor enc, mask;
        if (cache && cache->encoder_output.defined()) {  // later decoding steps: the encoder ran at the first
            enc = cache->encoder_output;
            mask = cache->encoder_mask;
        } else {
            mask = in.attention_mask.defined() ? in.attention_mask.to(torch::kLong) : torch::ones({B, T}, lopts);
            at::Tensor h = shared->forward(in.input_ids.to(torch::kLong));
            if (prompt_fn_) {  // a soft prompt goes in front of the encoder input (and so of the cross-attention keys)
                const at::Tensor p = prompt_fn_();
                h = torch::cat({p.unsqueeze(0).expand({B, p.size(0), c_.d_model}).to(h.dtype()), h}, 1);
                mask = torch::cat({torch::ones({B, p.size(0)}, lopts), mask}, 1);
            }
            std::vector<at::Tensor>* enc_hidden = in.output_hidden_states ? &out.encoder_hidden_states : nullptr;
            enc = encoder->run(h, mask, at::Tensor(), at::Tensor(), enc_hidden);
            if (cache) {
                cache->encoder_output = enc;
                cache->encoder_mask = mask;
            }
        }
        if (kind_ == T5Kind::EncoderOnly) {
            out.last_hidden_state = enc;
            if (in.output_hidden_states) out.hidden_states = out.encoder_hidden_states;
            return out;
        }
        out.encoder_last_hidden_state = enc;
        if (!in.decoder_input_ids.defined() && !in.labels.defined())
            throw Error("T5 needs 'decoder_input_ids' or 'labels' for its decoder", "decoder_input_ids");
        const at::Tensor dec_ids = in.decoder_input_ids.defined() ? in.decoder_input_ids.to(torch::kLong) : shift_right(in.labels);
        const at::Tensor dec_mask = torch::ones({B, dec_ids.size(1)}, lopts);
        at::Tensor d = decoder->run(shared->forward(dec_ids), dec_mask, enc, mask, in.output_hidden_states ? &out.hidden_states : nullptr, cache);
        out.last_hidden_state = d;
        if (kind_ == T5Kind::ConditionalGeneration) {
            DT_PROFILE_REGION("head");
            // A head tied to the embeddings sees the output rescaled by d_model^-0.5.
            const at::Tensor x = c_.tie ? d * std::pow(static_cast<double>(c_.d_model), -0.5) : d;
            if (in.labels.defined() && in.loss_only) {
                out.loss = head_lm_loss(*lm_head, x, in.labels, false);
                return out;
            }
            out.logits = lm_head->forward(x);
            if (in.labels.defined()) out.loss = lm_loss(out.logits, in.labels, false);
        }
        return out;
    }

    std::string base_model_prefix() const override { return "transformer"; }
    bool is_base_model() const override { return kind_ != T5Kind::ConditionalGeneration; }
    bool is_encoder_decoder() const override { return kind_ != T5Kind::EncoderOnly; }
    std::int64_t num_layers() const override { return c_.layers; }
    std::int64_t prefix_layers() const override { return c_.layers; }  // PEFT: config.num_layers, the encoder depth
    std::int64_t hidden_size() const override { return c_.d_model; }
    std::string word_embeddings_path() const override { return "shared"; }
    const RoleTable& roles() const override { return t5_roles(); }
    std::map<std::string, std::string> tied_parameters() const override {
        std::map<std::string, std::string> t = {{"encoder.embed_tokens.weight", "shared.weight"}};
        if (decoder) t["decoder.embed_tokens.weight"] = "shared.weight";
        if (kind_ == T5Kind::ConditionalGeneration && c_.tie) t["lm_head.weight"] = "shared.weight";
        return t;
    }

    // transformers' T5PreTrainedModel._init_weights, with factor = initializer_factor.
    void init_weights(std::uint64_t seed, const std::set<std::string>* only) override {
        torch::NoGradGuard ng;
        auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
        const double f = c_.factor, dm = static_cast<double>(c_.d_model), dkv = static_cast<double>(c_.d_kv);
        const auto ends = [](const std::string& s, const std::string& suf) {
            return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
        };
        const auto tied = tied_parameters();
        for (auto& p : named_parameters(true)) {
            const std::string& n = p.key();
            if (tied.count(n) || (only && !only->count(n))) continue;
            double sd = -1;
            if (ends(n, "layer_norm.weight")) {
                p.value().fill_(f);
                continue;
            }
            if (n == "shared.weight" || n == "lm_head.weight") sd = f;
            else if (ends(n, ".q.weight")) sd = f * std::pow(dm * dkv, -0.5);
            else if (ends(n, ".k.weight") || ends(n, ".v.weight") || ends(n, "relative_attention_bias.weight")) sd = f * std::pow(dm, -0.5);
            else if (ends(n, ".o.weight")) sd = f * std::pow(static_cast<double>(c_.heads) * dkv, -0.5);
            else if (ends(n, ".wi.weight") || ends(n, ".wi_0.weight") || ends(n, ".wi_1.weight")) sd = f * std::pow(dm, -0.5);
            else if (ends(n, ".wo.weight")) sd = f * std::pow(static_cast<double>(c_.d_ff), -0.5);
            if (sd > 0) p.value().normal_(0.0, sd, gen);
            else p.value().zero_();
        }
    }

    Embedding shared{nullptr};
    T5Stack encoder{nullptr}, decoder{nullptr};
    Linear lm_head{nullptr};

private:
    T5Config c_;
    T5Kind kind_;
    PromptProvider prompt_fn_;
};

}  // namespace

std::shared_ptr<TransformerModel> make_t5(const ModelConfig& cfg, T5Kind kind) {
    return std::make_shared<T5Impl>(cfg, T5Config::from(cfg), kind);
}

}  // namespace dt
