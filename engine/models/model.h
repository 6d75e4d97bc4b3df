// TransformerModel: what every architecture offers the rest of the engine: one forward over named
// inputs, HF-identical parameter names, tied-parameter aliases, and its injection points.
#pragma once

#include "models/config.h"
#include "models/layers.h"
#include "models/roles.h"

#include <torch/nn/module.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace dt {

// Tensor legend: B batch, T tokens, C hidden size, V vocabulary, L labels.

// Keys and values of the tokens seen so far, for incremental decoding (engine/generate): a forward
// given a cache attends to the cached positions too and appends its new tokens' keys/values.
struct KVCache {
    // Per attention point (attentions()): keys (after any rotary embedding) and values, (B, G, S, D).
    std::vector<std::pair<at::Tensor, at::Tensor>> layers;
    at::Tensor mask;            // (B, S): 1 = a real token, for every cached position
    at::Tensor encoder_output;  // encoder-decoders: the encoder's output, computed at the first step
    at::Tensor encoder_mask;    // and its mask (a soft prompt included)
    std::int64_t length() const { return mask.defined() ? mask.size(1) : 0; }
};

struct ForwardInputs {
    at::Tensor input_ids;          // (B, T) int64
    at::Tensor attention_mask;     // (B, T), 1 = real token; all ones if undefined
    at::Tensor token_type_ids;     // (B, T); zeros if undefined
    at::Tensor decoder_input_ids;  // (B, T_dec), encoder-decoders only
    at::Tensor labels;             // LM heads: (B, T) targets, -100 = ignored; sets ForwardOutputs::loss
    at::Tensor position_ids;       // decoders: (B, T) positions of the new tokens; default past..past+T-1
    // Decoders, packed rows (several examples one after another in a row): (B, T) int64, the example
    // each position belongs to. A query attends to keys of its own segment only; with position_ids
    // restarting at each segment, every example computes what it would alone. No cache or prefix.
    at::Tensor segment_ids;
    KVCache* cache = nullptr;      // decoders: read and extended (T5: the decoder's self-attention)
    // Masked-LM heads: when defined, (B) int64 positions in input_ids (a soft prompt's shift is added
    // by the head); the head runs at those positions only and logits are (B, 1, V). Label-word tasks
    // score one mask per example, so the B x T x V projection is never computed.
    at::Tensor score_positions;
    // LM heads with labels: return the loss alone (logits undefined). The vocabulary projection then
    // runs on the scored positions only (labels != -100), a chunk of rows at a time, and backward
    // recomputes each chunk, so B x T x V logits are never held (head_lm_loss).
    bool loss_only = false;
    bool output_hidden_states = false;
};

struct ForwardOutputs {
    at::Tensor logits;             // (B, T, V) for LM heads, (B, L) for classification; undefined for base models
    at::Tensor last_hidden_state;  // (B, T, C)
    at::Tensor pooler_output;      // (B, C) where the model has a pooler
    std::vector<at::Tensor> hidden_states;  // embedding output, then each block's output (decoder's for T5)
    at::Tensor encoder_last_hidden_state;   // encoder-decoders: the encoder output
    std::vector<at::Tensor> encoder_hidden_states;
    at::Tensor loss;               // () mean cross-entropy over labels != -100, when labels are given
};

// transformers' LM loss: the mean cross-entropy of logits (B, T', V) against labels (B, T) over
// targets != -100, using the last T logit positions (a soft prompt adds positions in front). With
// `shift` (causal LMs) logits at t predict labels at t + 1. Throws dt::Error naming 'labels' on a
// shape mismatch.
at::Tensor lm_loss(const at::Tensor& logits, const at::Tensor& labels, bool shift);
// The same loss from the hidden states h (B, T', C) and the head, without the full logits: the rows
// with a label are gathered, and a plain head (no delta branches) runs as a fused chunked
// cross-entropy whose backward recomputes each chunk's logits (gradients for h, and for the
// head's weight and bias when they train). A head with branches runs on the gathered rows.
at::Tensor head_lm_loss(LinearImpl& head, const at::Tensor& h, const at::Tensor& labels, bool shift, std::int64_t chunk_rows = 1024);

struct SiteRef {
    std::string path;  // the host module, e.g. bert.encoder.layer.0.attention.output
    std::string role;  // "after_attention" or "after_ffn"
    int layer = -1;
    Site* site = nullptr;
};

struct AttentionRef {
    std::string path;  // e.g. bert.encoder.layer.0.attention.self
    int layer = -1;    // which key/value slot pair of the prefix table this attention reads

    std::int64_t num_heads = 0, head_dim = 0;
    PrefixProvider* prefix = nullptr;
};

// Checks what every architecture needs of its inputs: input_ids an integer (B, T) tensor with T in
// 1..max_tokens and every id in [0, vocab); attention_mask (if given) of the same shape, integer.
// Throws dt::Error naming the input.
void check_token_inputs(const ForwardInputs& in, std::int64_t vocab, std::int64_t max_tokens);

// A delta method's part in training beyond its parameters (AdaLoRA: an orthogonality penalty added
// to the loss, and a rank allocation after every optimizer step; LoRA+: a larger learning rate for
// B). Methods register hooks on the model at attach and remove them at detach; the trainer calls
// every hook the model holds.
class TrainingHook {
public:
    virtual ~TrainingHook() = default;
    // Added to every micro-batch's loss (scaled like it by 1/grad_accum); undefined: nothing.
    virtual at::Tensor regularizer() { return {}; }
    // After the optimizer step `step` (0-based) of `total_steps`, gradients still in place.
    virtual void after_step(std::int64_t /*step*/, std::int64_t /*total_steps*/) {}
    // Learning-rate factor for a trainable parameter (1: the run's rate).
    virtual double lr_factor(const std::string& /*param*/) const { return 1.0; }
    // State that a checkpoint must hold for an exact resume, by name (unique across hooks).
    virtual std::vector<std::pair<std::string, at::Tensor>> state() const { return {}; }
    virtual void load_state(const std::map<std::string, at::Tensor>& /*by_name*/) {}
};

class TransformerModel : public torch::nn::Module {
public:
    explicit TransformerModel(std::string type_name) : torch::nn::Module(std::move(type_name)) {}
    virtual ForwardOutputs forward(const ForwardInputs& in) = 0;
    // Checks shapes, dtypes and id ranges; throws dt::Error naming the input.
    virtual void validate_inputs(const ForwardInputs& in) const = 0;

    const ModelConfig& config() const { return config_; }
    // HF's base_model_prefix ("bert", "roberta"): head models hold the base model under it; a bare
    // base model's names lack it. Checkpoints of either kind load into both.
    virtual std::string base_model_prefix() const = 0;
    virtual bool is_base_model() const = 0;
    // T5-style models: an encoder and a decoder that reads decoder_input_ids (or shifted labels).
    virtual bool is_encoder_decoder() const { return false; }
    virtual std::int64_t num_layers() const = 0;
    // Layers in the prefix table (PEFT's num_layers): attentions()[i].layer indexes into it.
    virtual std::int64_t prefix_layers() const { return static_cast<std::int64_t>(attentions_.size()); }
    // Alias parameter name -> canonical name (not saved; e.g. the MLM decoder tied to the embeddings).
    virtual std::map<std::string, std::string> tied_parameters() const { return {}; }
    // The architecture's role table (models/roles.h): the one place that names its modules for
    // delta methods. Without one a model has no default targets, head or embed role.
    virtual const RoleTable& roles() const {
        static const RoleTable none;
        return none;
    }
    // The Linear modules of the output layer (excluded by `all-linear`): those with the head role.
    std::vector<std::string> output_head_paths() const { return roles().find(*this, Role::Head, true); }
    // Parameters a checkpoint stores transposed (GPT-2's Conv1D keeps weights as (in, out)); the
    // loader and the writer transpose them.
    virtual bool stored_transposed(const std::string&) const { return false; }
    // Fresh random init (HF's scheme: N(0, initializer_range), zero biases, unit norms); with `only`,
    // just those parameters (the ones a checkpoint lacked).
    virtual void init_weights(std::uint64_t seed, const std::set<std::string>* only = nullptr) = 0;

    // The repeated blocks in order (e.g. bert.encoder.layer.0 ... .11) and the word embedding module.
    const std::vector<std::string>& block_paths() const { return blocks_; }
    // By default the first module with the embed role; throws dt::Error if there is none.
    virtual std::string word_embeddings_path() const;
    virtual std::int64_t hidden_size() const = 0;

    // Activation checkpointing per block in training (layers.h `checkpointed`): activations are
    // recomputed in backward instead of kept. Blocks reading prefix keys/values or a KV cache run
    // plainly. Architectures without it throw dt::Error naming the field.
    virtual bool supports_gradient_checkpointing() const { return false; }
    void set_gradient_checkpointing(bool on);
    bool gradient_checkpointing() const { return checkpoint_; }

    const std::vector<SiteRef>& sites() const { return sites_; }
    const std::vector<AttentionRef>& attentions() const { return attentions_; }
    PromptProvider* prompt() { return prompt_; }
    std::vector<std::shared_ptr<TrainingHook>>& training_hooks() { return hooks_; }
    const std::vector<std::shared_ptr<TrainingHook>>& training_hooks() const { return hooks_; }
    void remove_training_hook(const TrainingHook* h) {
        hooks_.erase(std::remove_if(hooks_.begin(), hooks_.end(), [h](const auto& p) { return p.get() == h; }), hooks_.end());
    }

protected:
    // Where the base model's parts go: this model itself, or for a head model a submodule under
    // `prefix` typed like HF's base class ("BertModel", "LlamaModel"), as HF names parameters.
    torch::nn::Module& base_host(bool head, const std::string& prefix, const std::string& type) {
        if (!head) return *this;
        return *register_module(prefix, std::make_shared<torch::nn::Module>(type));
    }
    // Records a decoder block and its injection points: the attention's prefix slot and the Sites
    // after the attention and after the feed-forward part.
    void add_decoder_block(const std::string& path, int layer, const std::string& attention, const std::string& ffn,
                           std::int64_t prefix_heads, std::int64_t head_dim, PrefixProvider* prefix, Site* after_attention,
                           Site* after_ffn) {
        blocks_.push_back(path);
        sites_.push_back({path + "." + attention, "after_attention", layer, after_attention});
        sites_.push_back({path + "." + ffn, "after_ffn", layer, after_ffn});
        attentions_.push_back({path + "." + attention, layer, prefix_heads, head_dim, prefix});
    }

    ModelConfig config_;
    std::vector<std::string> blocks_;
    std::vector<SiteRef> sites_;
    std::vector<AttentionRef> attentions_;
    PromptProvider* prompt_ = nullptr;
    std::vector<std::shared_ptr<TrainingHook>> hooks_;
    bool checkpoint_ = false;
};

}  // namespace dt
