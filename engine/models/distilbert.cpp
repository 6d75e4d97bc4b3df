// Tensor legend: B batch, T tokens, P prefix/prompt length, S = P + T keys, C dim, H heads, D head dim.
#include "models/distilbert.h"

#include "core/error.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <set>

namespace dt {

const RoleTable& distilbert_roles() {
    static const RoleTable roles = RoleTable()
                                       .set(Role::AttnQ, {"q_lin"})
                                       .set(Role::AttnK, {"k_lin"})
                                       .set(Role::AttnV, {"v_lin"})
                                       .set(Role::AttnOut, {"out_lin"})
                                       .set(Role::FfnUp, {"lin1"})
                                       .set(Role::FfnDown, {"lin2"})
                                       .set(Role::Norm, {"LayerNorm", "sa_layer_norm", "output_layer_norm", "vocab_layer_norm"})
                                       .set(Role::Embed, {"embeddings.word_embeddings"})
                                       .set(Role::Head, {"vocab_transform", "vocab_projector", "pre_classifier", "classifier"});
    return roles;
}

namespace {

constexpr double kDistilEps = 1e-12;  // hard-coded in transformers, not in config.json

struct DistilConfig {
    std::int64_t vocab, dim, layers, heads, hidden_dim, max_pos, pad, num_labels;
    double init_range;
    bool sinusoidal;
    std::string act;

    static DistilConfig from(const ModelConfig& c) {
        DistilConfig d{};
        d.vocab = c.get_positive("vocab_size");
        d.dim = c.get_positive("dim");
        d.layers = c.get_positive("n_layers");
        d.heads = c.get_positive("n_heads");
        d.hidden_dim = c.get_positive("hidden_dim");
        d.max_pos = c.get_positive("max_position_embeddings");
        d.pad = c.get_int_or("pad_token_id", 0);
        d.init_range = c.get_number_or("initializer_range", 0.02);
        d.sinusoidal = c.raw.value("sinusoidal_pos_embds", false);
        d.act = c.get_string_or("activation", "gelu");
        d.num_labels = c.num_labels();
        if (d.dim % d.heads != 0)
            throw Error("dim (" + std::to_string(d.dim) + ") is not a multiple of n_heads (" + std::to_string(d.heads) + ")", c.source);
        if (d.pad < 0 || d.pad >= d.vocab) throw Error("field 'pad_token_id' is outside the vocabulary", c.source);
        activation(d.act, c.source);
        return d;
    }
};

// transformers' create_sinusoidal_embeddings: sin on even columns, cos on odd ones.
at::Tensor sinusoidal_table(std::int64_t n, std::int64_t dim) {
    at::Tensor pos = torch::arange(n, torch::kDouble).unsqueeze(1);
    at::Tensor j = torch::arange(dim, torch::kDouble);
    at::Tensor enc = pos / torch::pow(10000.0, 2.0 * torch::floor(j / 2.0) / static_cast<double>(dim)).unsqueeze(0);
    at::Tensor out = torch::empty({n, dim}, torch::kDouble);
    using torch::indexing::Slice;
    out.index_put_({Slice(), Slice(0, torch::indexing::None, 2)}, torch::sin(enc.index({Slice(), Slice(0, torch::indexing::None, 2)})));
    out.index_put_({Slice(), Slice(1, torch::indexing::None, 2)}, torch::cos(enc.index({Slice(), Slice(1, torch::indexing::None, 2)})));
    return out.to(torch::kFloat);
}

class DistilEmbeddingsImpl : public torch::nn::Module {
public:
    explicit DistilEmbeddingsImpl(const DistilConfig& c) : torch::nn::Module("Embeddings"), c_(c) {
        word_embeddings = register_module("word_embeddings", Embedding(c.vocab, c.dim));
        position_embeddings = register_module("position_embeddings", Embedding(c.max_pos, c.dim));
        LayerNorm_ = register_module("LayerNorm", LayerNorm(c.dim, kDistilEps));
    }
    at::Tensor forward(const at::Tensor& ids, const at::Tensor& prompt, std::int64_t past) {
        const auto B = ids.size(0), T = ids.size(1);
        at::Tensor x = word_embeddings->forward(ids);
        std::int64_t P = 0;
        if (prompt.defined()) {
            P = prompt.size(0);
            x = torch::cat({prompt.unsqueeze(0).expand({B, P, c_.dim}).to(x.dtype()), x}, 1);
        }
        if (past + P + T > c_.max_pos)
            throw Error(std::to_string(T) + " tokens" + (P + past > 0 ? " plus " + std::to_string(P + past) + " virtual tokens" : "") +
                            " exceed max_position_embeddings " + std::to_string(c_.max_pos),
                        "input_ids", "shorten the input or use fewer virtual tokens");
        const at::Tensor pos = torch::arange(past, past + P + T, ids.options()).unsqueeze(0).expand({B, P + T});
        return LayerNorm_->forward(x + position_embeddings->forward(pos));
    }
    Embedding word_embeddings{nullptr}, position_embeddings{nullptr};
    LayerNorm LayerNorm_{nullptr};
    DistilConfig c_;
};
TORCH_MODULE(DistilEmbeddings);

class DistilAttentionImpl : public torch::nn::Module {
public:
    explicit DistilAttentionImpl(const DistilConfig& c) : torch::nn::Module("MultiHeadSelfAttention"), H(c.heads), D(c.dim / c.heads) {
        q_lin = register_module("q_lin", Linear(c.dim, c.dim));
        k_lin = register_module("k_lin", Linear(c.dim, c.dim));
        v_lin = register_module("v_lin", Linear(c.dim, c.dim));
        out_lin = register_module("out_lin", Linear(c.dim, c.dim));
    }
    // h (B, T, C); mask_add (B, 1, 1, S) additive; prefix k/v (B, H, P, D) or undefined.
    at::Tensor forward(const at::Tensor& h, const at::Tensor& mask_add, const at::Tensor& pk, const at::Tensor& pv) {
        const auto B = h.size(0), T = h.size(1);
        auto heads = [&](const at::Tensor& t) { return t.view({B, T, H, D}).transpose(1, 2); };
        at::Tensor q = heads(q_lin->forward(h));
        at::Tensor k = heads(k_lin->forward(h));
        at::Tensor v = heads(v_lin->forward(h));
        if (pk.defined()) {
            k = torch::cat({pk.to(k.dtype()), k}, 2);
            v = torch::cat({pv.to(v.dtype()), v}, 2);
        }
        return out_lin->forward(attend(q, k, v, mask_add, 1.0 / std::sqrt(static_cast<double>(D))));
    }
    Linear q_lin{nullptr}, k_lin{nullptr}, v_lin{nullptr}, out_lin{nullptr};
    PrefixProvider prefix;
    std::int64_t H, D;
};
TORCH_MODULE(DistilAttention);

class DistilFFNImpl : public torch::nn::Module {
public:
    explicit DistilFFNImpl(const DistilConfig& c) : torch::nn::Module("FFN"), act(activation(c.act, "activation")) {
        lin1 = register_module("lin1", Linear(c.dim, c.hidden_dim));
        lin2 = register_module("lin2", Linear(c.hidden_dim, c.dim));
    }
    at::Tensor forward(const at::Tensor& x) { return lin2->forward(act(lin1->forward(x))); }
    Linear lin1{nullptr}, lin2{nullptr};
    std::function<at::Tensor(const at::Tensor&)> act;
};
TORCH_MODULE(DistilFFN);

class DistilBlockImpl : public torch::nn::Module {
public:
    explicit DistilBlockImpl(const DistilConfig& c) : torch::nn::Module("TransformerBlock") {
        attention = register_module("attention", DistilAttention(c));
        sa_layer_norm = register_module("sa_layer_norm", LayerNorm(c.dim, kDistilEps));
        ffn = register_module("ffn", DistilFFN(c));
        output_layer_norm = register_module("output_layer_norm", LayerNorm(c.dim, kDistilEps));
    }
    at::Tensor forward(const at::Tensor& x, const at::Tensor& mask_add, const at::Tensor& pk, const at::Tensor& pv) {
        at::Tensor a = attention->forward(x, mask_add, pk, pv);
        if (!after_attention.empty()) a = after_attention.apply(a, x);
        const at::Tensor h = sa_layer_norm->forward(a + x);
        at::Tensor f = ffn->forward(h);
        if (!after_ffn.empty()) f = after_ffn.apply(f, h);
        return output_layer_norm->forward(f + h);
    }
    DistilAttention attention{nullptr};
    LayerNorm sa_layer_norm{nullptr}, output_layer_norm{nullptr};
    DistilFFN ffn{nullptr};
    Site after_attention, after_ffn;
};
TORCH_MODULE(DistilBlock);

class DistilImpl : public TransformerModel {
public:
    DistilImpl(const ModelConfig& cfg, const DistilConfig& c, EncoderHead head)
        : TransformerModel(cfg.architecture.empty() ? (head == EncoderHead::None                ? "DistilBertModel"
                                                       : head == EncoderHead::MaskedLM          ? "DistilBertForMaskedLM"
                                                                                                : "DistilBertForSequenceClassification")
                                                    : cfg.architecture),
          c_(c),
          head_(head) {
        config_ = cfg;
        prefix_ = head == EncoderHead::None ? "" : "distilbert";
        torch::nn::Module* host = &base_host(head != EncoderHead::None, prefix_, "DistilBertModel");
        embeddings = host->register_module("embeddings", DistilEmbeddings(c));
        auto transformer = host->register_module("transformer", std::make_shared<torch::nn::Module>("Transformer"));
        auto list = transformer->register_module("layer", torch::nn::ModuleList());
        const std::string base = prefix_.empty() ? "" : prefix_ + ".";
        for (std::int64_t i = 0; i < c.layers; ++i) {
            auto b = DistilBlock(c);
            list->push_back(b);
            blocks.push_back(b);
            const std::string lp = base + "transformer.layer." + std::to_string(i);
            blocks_.push_back(lp);
            sites_.push_back({lp + ".attention", "after_attention", static_cast<int>(i), &b->after_attention});
            sites_.push_back({lp + ".ffn", "after_ffn", static_cast<int>(i), &b->after_ffn});
            attentions_.push_back({lp + ".attention", static_cast<int>(i), c.heads, c.dim / c.heads, &b->attention->prefix});
        }
        if (head == EncoderHead::MaskedLM) {
            act_ = activation(c.act, "activation");
            vocab_transform = register_module("vocab_transform", Linear(c.dim, c.dim));
            vocab_layer_norm = register_module("vocab_layer_norm", LayerNorm(c.dim, kDistilEps));
            mlm_bias_ = torch::zeros({c.vocab});
            vocab_projector = register_module("vocab_projector", Linear(embeddings->word_embeddings->weight, mlm_bias_));
        } else if (head == EncoderHead::SequenceClassification) {
            pre_classifier = register_module("pre_classifier", Linear(c.dim, c.dim));
            classifier = register_module("classifier", Linear(c.dim, c.num_labels));
        }
        prompt_ = &prompt_fn_;
    }

    void validate_inputs(const ForwardInputs& in) const override {
        check_token_inputs(in, c_.vocab, c_.max_pos);
        if (in.token_type_ids.defined()) throw Error("DistilBERT takes no 'token_type_ids'", "token_type_ids", "leave them out");
    }

    ForwardOutputs forward(const ForwardInputs& in) override {
        const auto B = in.input_ids.size(0), T = in.input_ids.size(1);
        const auto lopts = in.input_ids.options().dtype(torch::kLong);
        at::Tensor mask = in.attention_mask.defined() ? in.attention_mask.to(torch::kLong) : torch::ones({B, T}, lopts);
        std::vector<std::pair<at::Tensor, at::Tensor>> pkv(blocks.size());
        std::int64_t past = 0;
        for (std::size_t i = 0; i < blocks.size(); ++i)
            if (blocks[i]->attention->prefix) {
                pkv[i] = blocks[i]->attention->prefix(B);
                past = pkv[i].first.size(2);
            }
        const at::Tensor prompt = prompt_fn_ ? prompt_fn_() : at::Tensor();
        at::Tensor h = embeddings->forward(in.input_ids.to(torch::kLong), prompt, past);
        if (prompt.defined()) mask = torch::cat({torch::ones({B, prompt.size(0)}, lopts), mask}, 1);
        if (past > 0) mask = torch::cat({torch::ones({B, past}, lopts), mask}, 1);
        // transformers replaces masked scores by finfo.min; adding finfo.min gives the same softmax
        // (a score plus finfo.min rounds to finfo.min).
        const at::Tensor blocked = torch::zeros({B, 1, 1, mask.size(1)}, h.options().dtype(torch::kFloat))
                                       .masked_fill((mask == 0).view({B, 1, 1, mask.size(1)}), std::numeric_limits<float>::lowest());
        const at::Tensor blocked_real = past > 0 ? blocked.narrow(3, past, mask.size(1) - past) : blocked;
        ForwardOutputs out;
        if (in.output_hidden_states) out.hidden_states.push_back(h);
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            const bool has = pkv[i].first.defined();
            h = blocks[i]->forward(h, has ? blocked : blocked_real, pkv[i].first, pkv[i].second);
            if (in.output_hidden_states) out.hidden_states.push_back(h);
        }
        out.last_hidden_state = h;
        if (head_ == EncoderHead::MaskedLM) {
            out.logits = vocab_projector->forward(vocab_layer_norm->forward(act_(vocab_transform->forward(scored_rows(h, in.score_positions, in.input_ids.size(1))))));
            if (in.labels.defined()) out.loss = lm_loss(out.logits, in.labels, false);
        } else if (head_ == EncoderHead::SequenceClassification) {
            out.logits = classifier->forward(torch::relu(pre_classifier->forward(h.select(1, 0))));
        }
        return out;
    }

    std::string base_model_prefix() const override { return "distilbert"; }
    bool is_base_model() const override { return head_ == EncoderHead::None; }
    std::int64_t num_layers() const override { return c_.layers; }
    std::int64_t hidden_size() const override { return c_.dim; }
    const RoleTable& roles() const override { return distilbert_roles(); }
    std::map<std::string, std::string> tied_parameters() const override {
        if (head_ == EncoderHead::MaskedLM) return {{"vocab_projector.weight", "distilbert.embeddings.word_embeddings.weight"}};
        return {};
    }

    // transformers' _init_weights: N(0, initializer_range) for linears and embeddings, zero biases
    // and padding row, unit LayerNorms, the sinusoidal table where the config asks for it.
    void init_weights(std::uint64_t seed, const std::set<std::string>* only) override {
        init_normal_weights(*this, c_.init_range, seed, only);
        torch::NoGradGuard ng;
        const std::string base = prefix_.empty() ? "" : prefix_ + ".";
        if (!only || only->count(base + "embeddings.word_embeddings.weight")) embeddings->word_embeddings->weight[c_.pad].zero_();
        if (c_.sinusoidal && (!only || only->count(base + "embeddings.position_embeddings.weight")))
            embeddings->position_embeddings->weight.copy_(sinusoidal_table(c_.max_pos, c_.dim));
    }

    DistilEmbeddings embeddings{nullptr};
    std::vector<DistilBlock> blocks;
    Linear vocab_transform{nullptr}, vocab_projector{nullptr}, pre_classifier{nullptr}, classifier{nullptr};
    LayerNorm vocab_layer_norm{nullptr};

private:
    DistilConfig c_;
    EncoderHead head_;
    std::string prefix_;
    PromptProvider prompt_fn_;
    std::function<at::Tensor(const at::Tensor&)> act_;
    at::Tensor mlm_bias_;
};

}  // namespace

std::shared_ptr<TransformerModel> make_distilbert(const ModelConfig& cfg, EncoderHead head) {
    return std::make_shared<DistilImpl>(cfg, DistilConfig::from(cfg), head);
}

}  // namespace dt
