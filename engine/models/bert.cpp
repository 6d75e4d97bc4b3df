// BERT and RoBERTa in LibTorch. Names follow transformers' modeling_bert.py / modeling_roberta.py so
// a model.safetensors saved by transformers loads without renaming.
// Tensor legend: B batch, T tokens, P prefix/prompt length, S = P + T keys, C hidden, H heads, D head dim.
#include "models/bert.h"
#include "core/profiler.h"

#include "core/error.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <limits>

namespace dt {

// Block-relative names, as PEFT's default targets spell them ("query", "output.dense"). ffn_down's
// output.dense also matches attention.output.dense as a target-list entry (PEFT's IA3 default
// relies on that); role_of() gives that module to attn_out, the longer name.
const RoleTable& bert_family_roles() {
    static const RoleTable roles = RoleTable()
                                       .set(Role::AttnQ, {"query"})
                                       .set(Role::AttnK, {"key"})
                                       .set(Role::AttnV, {"value"})
                                       .set(Role::AttnOut, {"attention.output.dense"})
                                       .set(Role::FfnUp, {"intermediate.dense"})
                                       .set(Role::FfnDown, {"output.dense"})
                                       .set(Role::Norm, {"LayerNorm", "layer_norm"})
                                       .set(Role::Embed, {"embeddings.word_embeddings"})
                                       // MLM decoders (BERT, RoBERTa); classifiers (BERT's Linear, RoBERTa's two).
                                       .set(Role::Head, {"cls.predictions.decoder", "lm_head.decoder", "classifier",
                                                         "classifier.dense", "classifier.out_proj"});
    return roles;
}

namespace {

struct BertConfig {
    std::int64_t vocab, hidden, layers, heads, inter, max_pos, type_vocab, pad, num_labels;
    double eps, init_range, hidden_dropout, attn_dropout, classifier_dropout;
    std::string act;
    bool roberta;

    static BertConfig from(const ModelConfig& c) {
        BertConfig b{};
        b.roberta = c.model_type == "roberta" || c.architecture.rfind("Roberta", 0) == 0;
        b.vocab = c.get_positive("vocab_size");
        b.hidden = c.get_positive("hidden_size");
        b.layers = c.get_positive("num_hidden_layers");
        b.heads = c.get_positive("num_attention_heads");
        b.inter = c.get_positive("intermediate_size");
        b.max_pos = c.get_positive("max_position_embeddings");
        b.type_vocab = c.get_int_or("type_vocab_size", 2);
        if (b.type_vocab <= 0) throw Error("field 'type_vocab_size' must be positive", c.source);
        b.pad = c.get_int_or("pad_token_id", b.roberta ? 1 : 0);
        if (b.pad < 0 || b.pad >= b.vocab)
            throw Error("field 'pad_token_id' (" + std::to_string(b.pad) + ") is outside the vocabulary", c.source);
        b.eps = c.get_number_or("layer_norm_eps", 1e-12);
        b.init_range = c.get_number_or("initializer_range", 0.02);
        b.hidden_dropout = c.get_number_or("hidden_dropout_prob", 0.1);
        b.attn_dropout = c.get_number_or("attention_probs_dropout_prob", 0.1);
        b.classifier_dropout = c.get_number_or("classifier_dropout", b.hidden_dropout);
        b.act = c.get_string_or("hidden_act", "gelu");
        b.num_labels = c.num_labels();
        if (b.hidden % b.heads != 0)
            throw Error("hidden_size (" + std::to_string(b.hidden) + ") is not a multiple of num_attention_heads (" +
                            std::to_string(b.heads) + ")", c.source);
        const auto pet = c.get_string_or("position_embedding_type", "absolute");
        if (pet != "absolute")
            throw Error("position_embedding_type '" + pet + "' is not supported", c.source, "only 'absolute' is");
        if (b.roberta && b.max_pos <= b.pad + 1)
            throw Error("max_position_embeddings is too small for RoBERTa's position offset", c.source);
        activation(b.act, c.source);  // validate early
        return b;
    }
};

class BertEmbeddingsImpl : public torch::nn::Module {
public:
    explicit BertEmbeddingsImpl(const BertConfig& c) : torch::nn::Module(c.roberta ? "RobertaEmbeddings" : "BertEmbeddings"), c_(c) {
        word_embeddings = register_module("word_embeddings", Embedding(c.vocab, c.hidden));
        position_embeddings = register_module("position_embeddings", Embedding(c.max_pos, c.hidden));
        token_type_embeddings = register_module("token_type_embeddings", Embedding(c.type_vocab, c.hidden));
        LayerNorm_ = register_module("LayerNorm", LayerNorm(c.hidden, c.eps));
        dropout = register_module("dropout", Dropout(c.hidden_dropout));
    }
    // ids (B, T); types (B, T); prompt (P, C) or undefined; past = prefix length P. Returns (B, P+T, C).
    at::Tensor forward(const at::Tensor& ids, const at::Tensor& types, const at::Tensor& prompt, std::int64_t past) {
        const auto B = ids.size(0), T = ids.size(1);
        at::Tensor x = word_embeddings->forward(ids);
        at::Tensor tt = types;
        std::int64_t P = 0;
        if (prompt.defined()) {
            P = prompt.size(0);
            x = torch::cat({prompt.unsqueeze(0).expand({B, P, c_.hidden}).to(x.dtype()), x}, 1);
            tt = torch::cat({torch::zeros({B, P}, types.options()), types}, 1);
        }
        // Prefixes and prompts take positions too: check before indexing the table.
        const std::int64_t last = (c_.roberta ? c_.pad + 1 : 0) + past + P + T - 1;
        if (last >= c_.max_pos)
            throw Error(std::to_string(T) + " tokens" + (P + past > 0 ? " plus " + std::to_string(P + past) + " virtual tokens" : "") +
                            " need position " + std::to_string(last) + " but max_position_embeddings is " + std::to_string(c_.max_pos),
                        "input_ids", "shorten the input or use fewer virtual tokens");
        at::Tensor pos;
        if (c_.roberta) {
            if (P > 0) {  // inputs_embeds path: sequential from padding_idx + 1
                pos = torch::arange(c_.pad + 1, c_.pad + 1 + P + T, ids.options()).unsqueeze(0).expand({B, P + T});
            } else {
                at::Tensor m = ids.ne(c_.pad).to(torch::kLong);
                pos = (torch::cumsum(m, 1) + past) * m + c_.pad;
            }
        } else {
            pos = torch::arange(past, past + P + T, ids.options()).unsqueeze(0).expand({B, P + T});
        }
        x = x + token_type_embeddings->forward(tt) + position_embeddings->forward(pos);
        return dropout->forward(LayerNorm_->forward(x));
    }
    Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
    LayerNorm LayerNorm_{nullptr};
    Dropout dropout{nullptr};
    BertConfig c_;
};
TORCH_MODULE(BertEmbeddings);

class BertSelfAttentionImpl : public torch::nn::Module {
public:
    explicit BertSelfAttentionImpl(const BertConfig& c)
        : torch::nn::Module(c.roberta ? "RobertaSelfAttention" : "BertSelfAttention"), H(c.heads), D(c.hidden / c.heads) {
        query = register_module("query", Linear(c.hidden, c.hidden));
        key = register_module("key", Linear(c.hidden, c.hidden));
        value = register_module("value", Linear(c.hidden, c.hidden));
        dropout = register_module("dropout", Dropout(c.attn_dropout));
    }
    // h (B, T, C); mask_add (B, 1, 1, S) additive; prefix k/v (B, H, P, D) or undefined.
    at::Tensor forward(const at::Tensor& h, const at::Tensor& mask_add, const at::Tensor& pk, const at::Tensor& pv) {
        const auto B = h.size(0), T = h.size(1);
        auto heads = [&](const at::Tensor& t) { return t.view({B, T, H, D}).transpose(1, 2); };
        at::Tensor q = heads(query->forward(h));
        at::Tensor k = heads(key->forward(h));
        at::Tensor v = heads(value->forward(h));
        if (pk.defined()) {
            k = torch::cat({pk.to(k.dtype()), k}, 2);
            v = torch::cat({pv.to(v.dtype()), v}, 2);
        }
        return attend(q, k, v, mask_add, 1.0 / std::sqrt(static_cast<double>(D)), is_training() ? dropout->p : 0.0);
    }
    Linear query{nullptr}, key{nullptr}, value{nullptr};
    Dropout dropout{nullptr};
    PrefixProvider prefix;
    std::int64_t H, D;
};
TORCH_MODULE(BertSelfAttention);

// dense -> dropout -> site -> LayerNorm(. + residual): BertSelfOutput and BertOutput.
class BertResidualOutputImpl : public torch::nn::Module {
public:
    BertResidualOutputImpl(const BertConfig& c, std::int64_t in, const std::string& type)
        : torch::nn::Module(type) {
        dense = register_module("dense", Linear(in, c.hidden));
        LayerNorm_ = register_module("LayerNorm", LayerNorm(c.hidden, c.eps));
        dropout = register_module("dropout", Dropout(c.hidden_dropout));
    }
    at::Tensor forward(const at::Tensor& x, const at::Tensor& residual) {
        at::Tensor h = dropout->forward(dense->forward(x));
        if (!site.empty()) h = site.apply(h, residual);
        return LayerNorm_->forward(h + residual);
    }
    Linear dense{nullptr};
    LayerNorm LayerNorm_{nullptr};
    Dropout dropout{nullptr};
    Site site;
};
TORCH_MODULE(BertResidualOutput);

class BertAttentionImpl : public torch::nn::Module {
public:
    explicit BertAttentionImpl(const BertConfig& c) : torch::nn::Module(c.roberta ? "RobertaAttention" : "BertAttention") {
        self = register_module("self", BertSelfAttention(c));
        output = register_module("output", BertResidualOutput(c, c.hidden, c.roberta ? "RobertaSelfOutput" : "BertSelfOutput"));
    }
    BertSelfAttention self{nullptr};
    BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

class BertIntermediateImpl : public torch::nn::Module {
public:
    explicit BertIntermediateImpl(const BertConfig& c)
        : torch::nn::Module(c.roberta ? "RobertaIntermediate" : "BertIntermediate"), act(activation(c.act, "hidden_act")) {
        dense = register_module("dense", Linear(c.hidden, c.inter));
    }
    at::Tensor forward(const at::Tensor& x) { return act(dense->forward(x)); }
    Linear dense{nullptr};
    std::function<at::Tensor(const at::Tensor&)> act;
};
TORCH_MODULE(BertIntermediate);

class BertLayerImpl : public torch::nn::Module {
public:
    explicit BertLayerImpl(const BertConfig& c) : torch::nn::Module(c.roberta ? "RobertaLayer" : "BertLayer") {
        attention = register_module("attention", BertAttention(c));
        intermediate = register_module("intermediate", BertIntermediate(c));
        output = register_module("output", BertResidualOutput(c, c.inter, c.roberta ? "RobertaOutput" : "BertOutput"));
    }
    at::Tensor forward(const at::Tensor& h, const at::Tensor& mask_add, const at::Tensor& pk, const at::Tensor& pv) {
        at::Tensor a = attention->output->forward(attention->self->forward(h, mask_add, pk, pv), h);
        return output->forward(intermediate->forward(a), a);
    }
    BertAttention attention{nullptr};
    BertIntermediate intermediate{nullptr};
    BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertLayer);

class BertEncoderImpl : public torch::nn::Module {
public:
    explicit BertEncoderImpl(const BertConfig& c) : torch::nn::Module(c.roberta ? "RobertaEncoder" : "BertEncoder") {
        layer = register_module("layer", torch::nn::ModuleList());
        for (std::int64_t i = 0; i < c.layers; ++i) {
            auto l = BertLayer(c);
            layer->push_back(l);
            layers.push_back(l);
        }
    }
    torch::nn::ModuleList layer{nullptr};
    std::vector<BertLayer> layers;
};
TORCH_MODULE(BertEncoder);

class BertPoolerImpl : public torch::nn::Module {
public:
    explicit BertPoolerImpl(const BertConfig& c) : torch::nn::Module(c.roberta ? "RobertaPooler" : "BertPooler") {
        dense = register_module("dense", Linear(c.hidden, c.hidden));
    }
    at::Tensor forward(const at::Tensor& h) { return torch::tanh(dense->forward(h.select(1, 0))); }
    Linear dense{nullptr};
};
TORCH_MODULE(BertPooler);

// The encoder stack shared by the base model and every head model.
class BertCore {
public:
    BertCore(torch::nn::Module& owner, const BertConfig& c, bool with_pooler) : c_(c) {
        embeddings = owner.register_module("embeddings", BertEmbeddings(c));
        encoder = owner.register_module("encoder", BertEncoder(c));
        if (with_pooler) pooler = owner.register_module("pooler", BertPooler(c));
    }

    ForwardOutputs run(const ForwardInputs& in, const PromptProvider* prompt, bool checkpoint = false) {
        const auto B = in.input_ids.size(0), T = in.input_ids.size(1);
        const auto long_opts = in.input_ids.options().dtype(torch::kLong);
        at::Tensor ids = in.input_ids.to(torch::kLong);
        at::Tensor mask = in.attention_mask.defined() ? in.attention_mask.to(torch::kLong) : torch::ones({B, T}, long_opts);
        at::Tensor types = in.token_type_ids.defined() ? in.token_type_ids.to(torch::kLong) : torch::zeros({B, T}, long_opts);

        // Prefix keys/values per layer (B, H, P, D); all layers share P.
        std::vector<std::pair<at::Tensor, at::Tensor>> pkv(encoder->layers.size());
        std::int64_t past = 0;
        for (std::size_t i = 0; i < encoder->layers.size(); ++i) {
            auto& sa = encoder->layers[i]->attention->self;
            if (sa->prefix) {
                pkv[i] = sa->prefix(B);
                if (i > 0 && pkv[i].first.size(2) != past)
                    throw Error("prefix lengths differ between layers");
                past = pkv[i].first.size(2);
            }
        }
        at::Tensor prompt_vecs = (prompt && *prompt) ? (*prompt)() : at::Tensor();
        at::Tensor h = embeddings->forward(ids, types, prompt_vecs, past);
        if (prompt_vecs.defined()) mask = torch::cat({torch::ones({B, prompt_vecs.size(0)}, long_opts), mask}, 1);
        if (past > 0) mask = torch::cat({torch::ones({B, past}, long_opts), mask}, 1);

        // transformers masks with the additive value finfo(float32).min, not -inf.
        const float neg = std::numeric_limits<float>::lowest();
        at::Tensor mask_add = (1.0 - mask.to(h.dtype())).mul(neg).view({B, 1, 1, mask.size(1)});
        at::Tensor mask_nopast = past > 0 ? mask_add.narrow(3, past, mask.size(1) - past) : mask_add;

        ForwardOutputs out;
        if (in.output_hidden_states) out.hidden_states.push_back(h);
        for (std::size_t i = 0; i < encoder->layers.size(); ++i) {
            const bool has = pkv[i].first.defined();
            if (checkpoint && !has && past == 0 && at::GradMode::is_enabled()) {
                BertLayer layer = encoder->layers[i];
                const at::Tensor m = mask_nopast;
                h = checkpointed([layer, m](const at::Tensor& x) mutable { return layer->forward(x, m, at::Tensor(), at::Tensor()); }, h);
            } else {
                h = encoder->layers[i]->forward(h, has ? mask_add : mask_nopast, pkv[i].first, pkv[i].second);
            }
            if (in.output_hidden_states) out.hidden_states.push_back(h);
        }
        out.last_hidden_state = h;
        if (pooler) out.pooler_output = pooler->forward(h);
        return out;
    }

    void validate(const ForwardInputs& in) const {
        check_token_inputs(in, c_.vocab, c_.max_pos - (c_.roberta ? c_.pad + 1 : 0));
        const auto& ids = in.input_ids;
        auto same_shape = [&](const at::Tensor& t, const char* name) {
            if (!t.defined()) return;
            if (t.sizes() != ids.sizes())
                throw Error(std::string("'") + name + "' has shape " + c10::str(t.sizes()) + " but input_ids has " +
                            c10::str(ids.sizes()));
            if (at::isFloatingType(t.scalar_type())) throw Error(std::string("'") + name + "' must be an integer tensor");
        };
        same_shape(in.token_type_ids, "token_type_ids");
        if (in.token_type_ids.defined() && in.token_type_ids.numel() > 0) {
            const auto lo = in.token_type_ids.min().item<std::int64_t>(), hi = in.token_type_ids.max().item<std::int64_t>();
            if (lo < 0 || hi >= c_.type_vocab)
                throw Error("'token_type_ids' holds " + std::to_string(lo < 0 ? lo : hi) + " but type_vocab_size is " +
                            std::to_string(c_.type_vocab));
        }
    }

    void register_points(std::vector<std::string>& blocks, std::vector<SiteRef>& sites, std::vector<AttentionRef>& atts,
                         const std::string& prefix) {
        const std::string base = prefix.empty() ? "" : prefix + ".";
        for (std::size_t i = 0; i < encoder->layers.size(); ++i) {
            const std::string lp = base + "encoder.layer." + std::to_string(i);
            blocks.push_back(lp);
            auto& L = encoder->layers[i];
            sites.push_back({lp + ".attention.output", "after_attention", static_cast<int>(i), &L->attention->output->site});
            sites.push_back({lp + ".output", "after_ffn", static_cast<int>(i), &L->output->site});
            atts.push_back({lp + ".attention.self", static_cast<int>(i), L->attention->self->H, L->attention->self->D,
                            &L->attention->self->prefix});
        }
    }

    BertEmbeddings embeddings{nullptr};
    BertEncoder encoder{nullptr};
    BertPooler pooler{nullptr};
    BertConfig c_;
};

class BertModelImpl : public TransformerModel {
public:
    BertModelImpl(const ModelConfig& cfg, const BertConfig& c, EncoderHead head)
        : TransformerModel(cfg.architecture.empty() ? (c.roberta ? "RobertaModel" : "BertModel") : cfg.architecture),
          c_(c),
          head_(head) {
        config_ = cfg;
        const bool base = head == EncoderHead::None;
        prefix_ = base ? "" : (c.roberta ? "roberta" : "bert");
        // RoBERTa's head models drop the pooler; BERT's MLM does too.
        const bool pooler = base || (!c.roberta && head == EncoderHead::SequenceClassification);
        core_ = std::make_unique<BertCore>(base_host(!base, prefix_, c.roberta ? "RobertaModel" : "BertModel"), c, pooler);
        core_->register_points(blocks_, sites_, attentions_, prefix_);
        prompt_ = &prompt_fn_;
        build_head();
    }

    ForwardOutputs forward(const ForwardInputs& in) override {
        ForwardOutputs out = core_->run(in, prompt_, checkpoint_ && is_training());
        const at::Tensor& h = out.last_hidden_state;
        DT_PROFILE_REGION("head");
        if (head_ == EncoderHead::MaskedLM) {
            at::Tensor t = mlm_ln_->forward(act_(mlm_dense_->forward(scored_rows(h, in.score_positions, in.input_ids.size(1)))));
            out.logits = decoder_->forward(t);
        } else if (head_ == EncoderHead::SequenceClassification) {
            if (c_.roberta) {
                at::Tensor x = cls_dropout_->forward(h.select(1, 0));
                x = torch::tanh(cls_dense_->forward(x));
                out.logits = cls_out_->forward(cls_dropout_->forward(x));
            } else {
                out.logits = cls_out_->forward(cls_dropout_->forward(out.pooler_output));
            }
        }
        return out;
    }

    void validate_inputs(const ForwardInputs& in) const override { core_->validate(in); }
    std::string base_model_prefix() const override { return c_.roberta ? "roberta" : "bert"; }
    bool is_base_model() const override { return head_ == EncoderHead::None; }
    bool supports_gradient_checkpointing() const override { return true; }
    std::int64_t num_layers() const override { return c_.layers; }
    std::int64_t hidden_size() const override { return c_.hidden; }
    const RoleTable& roles() const override { return bert_family_roles(); }

    std::map<std::string, std::string> tied_parameters() const override {
        if (head_ != EncoderHead::MaskedLM) return {};
        const std::string word = prefix_ + ".embeddings.word_embeddings.weight";
        if (c_.roberta) return {{"lm_head.decoder.weight", word}, {"lm_head.decoder.bias", "lm_head.bias"}};
        return {{"cls.predictions.decoder.weight", word}, {"cls.predictions.decoder.bias", "cls.predictions.bias"}};
    }

    void init_weights(std::uint64_t seed, const std::set<std::string>* only) override {
        init_normal_weights(*this, c_.init_range, seed, only);
        torch::NoGradGuard ng;
        if (!only || only->count(prefix_.empty() ? "embeddings.word_embeddings.weight" : prefix_ + ".embeddings.word_embeddings.weight"))
            core_->embeddings->word_embeddings->weight[c_.pad].zero_();
        if (mlm_bias_.defined() && (!only || only->count(c_.roberta ? "lm_head.bias" : "cls.predictions.bias"))) mlm_bias_.zero_();
    }

private:
    void build_head() {
        if (head_ == EncoderHead::MaskedLM) {
            act_ = activation(c_.act, "hidden_act");
            std::shared_ptr<torch::nn::Module> host;
            if (c_.roberta) {
                host = register_module("lm_head", std::make_shared<torch::nn::Module>("RobertaLMHead"));
                mlm_dense_ = host->register_module("dense", Linear(c_.hidden, c_.hidden));
                mlm_ln_ = host->register_module("layer_norm", LayerNorm(c_.hidden, c_.eps));
                act_ = activation("gelu", "lm_head");  // RobertaLMHead always uses erf gelu
            } else {
                auto cls = register_module("cls", std::make_shared<torch::nn::Module>("BertOnlyMLMHead"));
                host = cls->register_module("predictions", std::make_shared<torch::nn::Module>("BertLMPredictionHead"));
                auto transform = host->register_module("transform", std::make_shared<torch::nn::Module>("BertPredictionHeadTransform"));
                mlm_dense_ = transform->register_module("dense", Linear(c_.hidden, c_.hidden));
                mlm_ln_ = transform->register_module("LayerNorm", LayerNorm(c_.hidden, c_.eps));
            }
            mlm_bias_ = host->register_parameter("bias", torch::zeros({c_.vocab}));
            decoder_ = host->register_module("decoder", Linear(core_->embeddings->word_embeddings->weight, mlm_bias_));
        } else if (head_ == EncoderHead::SequenceClassification) {
            if (c_.roberta) {
                auto cls = register_module("classifier", std::make_shared<torch::nn::Module>("RobertaClassificationHead"));
                cls_dense_ = cls->register_module("dense", Linear(c_.hidden, c_.hidden));
                cls_dropout_ = cls->register_module("dropout", Dropout(c_.classifier_dropout));
                cls_out_ = cls->register_module("out_proj", Linear(c_.hidden, c_.num_labels));
            } else {
                cls_dropout_ = register_module("dropout", Dropout(c_.classifier_dropout));
                cls_out_ = register_module("classifier", Linear(c_.hidden, c_.num_labels));
            }
        }
    }

    BertConfig c_;
    EncoderHead head_;
    std::string prefix_;
    std::unique_ptr<BertCore> core_;
    PromptProvider prompt_fn_;
    Linear mlm_dense_{nullptr}, decoder_{nullptr}, cls_dense_{nullptr}, cls_out_{nullptr};
    LayerNorm mlm_ln_{nullptr};
    at::Tensor mlm_bias_;
    Dropout cls_dropout_{nullptr};
    std::function<at::Tensor(const at::Tensor&)> act_;
};

}  // namespace

std::shared_ptr<TransformerModel> make_bert_family(const ModelConfig& cfg, EncoderHead head) {
    return std::make_shared<BertModelImpl>(cfg, BertConfig::from(cfg), head);
}

}  // namespace dt
