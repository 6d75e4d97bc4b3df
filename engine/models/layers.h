// Engine layer types shared by every architecture. They carry the injection points that delta
// methods attach to (DESIGN.md): Linear hosts branches, Site hooks sit at named points of a block,
// Attention (in attention.h) takes prefix keys/values, Embeddings take soft prompts.
// Architectures never know about methods; methods only touch these points.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace dt {

class LinearImpl;
struct QuantizedWeight;
enum class QuantKind;

// Something attached to a Linear: it may rewrite the input seen by the base projection
// (IA3 on a feed-forward input) and add to or rescale the output (LoRA, IA3).
// Its parameters live in torch modules registered under the Linear (e.g. `query.lora_A`).
class LinearBranch {
public:
    virtual ~LinearBranch() = default;
    virtual std::string kind() const = 0;
    virtual at::Tensor transform_input(const at::Tensor& x) { return x; }
    // y: the base output W x' + b; x: the original input.
    virtual at::Tensor transform_output(const at::Tensor& y, const at::Tensor& x) = 0;
    virtual bool can_merge() const { return false; }
    // True where the forward reads the host's frozen weight (OFT's rotation of W, DoRA's norm of
    // W + sBA): such a branch cannot sit on a quantized host.
    virtual bool reads_base_weight() const { return false; }
    virtual void merge(LinearImpl&) {}
    virtual void unmerge(LinearImpl&) {}
};

// y = x W^T + b, with HF names `weight` (out, in) and `bias` (out). Without branches it costs a
// plain linear. A tied Linear shares its weight (and bias) tensors with another module.
class LinearImpl : public torch::nn::Module {
public:
    LinearImpl(std::int64_t in, std::int64_t out, bool bias = true);
    LinearImpl(at::Tensor tied_weight, at::Tensor tied_bias);
    at::Tensor forward(const at::Tensor& x);

    void add_branch(std::shared_ptr<LinearBranch> b) { branches_.push_back(std::move(b)); }
    void remove_branch(const LinearBranch* b);
    void clear_branches() { branches_.clear(); }
    const std::vector<std::shared_ptr<LinearBranch>>& branches() const { return branches_; }

    // Removes a parameter a delta method registered on this Linear (e.g. `ia3_l`).
    void remove_parameter(const std::string& name);

    std::int64_t in_features() const { return weight.size(1); }
    std::int64_t out_features() const { return weight.size(0); }
    at::Tensor weight;
    at::Tensor bias;

    // A quantized frozen weight (models/quantize.h): `weight` then keeps its shape with no storage
    // of its own, and the matmul dequantizes. Null when not quantized.
    const QuantizedWeight* quantized() const { return quant_.get(); }
    // The weight as the products use it: dequantized where quantized, in the activations' type (a
    // 16-bit stored base computes with fp32 activations, see store_frozen_weights_as).
    at::Tensor dense_weight() const;
    void quantize(QuantKind kind, bool double_quant);

private:
    std::vector<std::shared_ptr<LinearBranch>> branches_;
    std::shared_ptr<QuantizedWeight> quant_;
};
TORCH_MODULE(Linear);

class LayerNormImpl : public torch::nn::Module {
public:
    LayerNormImpl(std::int64_t dim, double eps);
    at::Tensor forward(const at::Tensor& x);
    at::Tensor weight;
    at::Tensor bias;
    double eps;
};
TORCH_MODULE(LayerNorm);

class EmbeddingImpl : public torch::nn::Module {
public:
    EmbeddingImpl(std::int64_t num, std::int64_t dim);
    // Shares another module's table (T5's encoder/decoder embed_tokens and `shared`).
    explicit EmbeddingImpl(at::Tensor tied_weight);
    at::Tensor forward(const at::Tensor& ids);
    at::Tensor weight;
};
TORCH_MODULE(Embedding);

// Dropout (HF's nn.Dropout) drawing its masks with dt::fast_dropout: active in training mode only.
class DropoutImpl : public torch::nn::Module {
public:
    explicit DropoutImpl(double p_) : torch::nn::Module("Dropout"), p(p_) {}
    at::Tensor forward(const at::Tensor& x);
    double p;
};
TORCH_MODULE(Dropout);

// An identity at a named point of a block. Hooks run in order: h <- hook(h, block_input), where
// block_input is what the sub-block (attention or FFN) received, for parallel adapters.
class Site {
public:
    using Hook = std::function<at::Tensor(const at::Tensor& h, const at::Tensor& block_input)>;
    at::Tensor apply(const at::Tensor& h, const at::Tensor& block_input) const;
    // Returns an id for remove_hook().
    int add_hook(Hook h) {
        hooks_.push_back({next_id_, std::move(h)});
        return next_id_++;
    }
    void remove_hook(int id);
    void clear() { hooks_.clear(); }
    bool empty() const { return hooks_.empty(); }

private:
    std::vector<std::pair<int, Hook>> hooks_;
    int next_id_ = 1;
};

// Stores the frozen matrices (the weights of Linear and Embedding modules that get no gradient) as `dtype` (bf16 or fp16; fp32 turns them back) and returns the bytes saved. Norms,
// biases and every trainable tensor stay as they are, so deltas and the optimizer remain fp32.
// Linear and Embedding then compute in the weight's type; tied weights convert once.
std::int64_t store_frozen_weights_as(torch::nn::Module& root, c10::ScalarType dtype);

// transformers' usual _init_weights (BERT, DistilBERT, GPT-NeoX): N(0, std) for every `weight` but
// LayerNorms', zero biases, unit LayerNorm gains; with `only`, just those parameters.
void init_normal_weights(torch::nn::Module& root, double std, std::uint64_t seed, const std::set<std::string>* only);

// x in float32 if it is a 16-bit float (norms and softmax run at least in float32, as transformers
// does); float32 and float64 tensors pass unchanged, so double-precision checks stay exact.
inline bool is_16bit_float(const at::Tensor& x) { return x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16; }
inline at::Tensor at_least_float(const at::Tensor& x) { return is_16bit_float(x) ? x.to(at::kFloat) : x; }

// Prefix keys and values for one attention layer: returns (B, H, P, D) tensors for batch size B.
using PrefixProvider = std::function<std::pair<at::Tensor, at::Tensor>(std::int64_t batch)>;
// Soft prompt: returns (P, C) vectors placed before the token embeddings.
using PromptProvider = std::function<at::Tensor()>;

// The rows of h (B, T', C) an LM head must score: all of h, or with `positions` (B) defined, h at
// positions + (T' - T) (a soft prompt adds T' - T positions in front), as (B, 1, C).
inline at::Tensor scored_rows(const at::Tensor& h, const at::Tensor& positions, std::int64_t input_length) {
    if (!positions.defined()) return h;
    const at::Tensor at = (positions.to(h.device()) + (h.size(1) - input_length)).view({-1, 1, 1}).expand({-1, 1, h.size(2)});
    return h.gather(1, at);
}

// Scaled dot-product attention over heads, the one attention core of every architecture.
// q (B, H, T, D); k, v (B, H, S, D); mask_add additive, broadcastable to (B, H, T, S), or undefined;
// `scale` multiplies q.k (1/sqrt(D), or 1 for T5); dropout_p applies to the probabilities (pass 0
// outside training). The softmax runs at least in float32. Returns (B, T, H * D).
// Where the LibTorch has a fused kernel (DT_HAS_FUSED_SDPA) and no dropout is asked for, it is used
// unless `plain` is set; the plain path (matmul, softmax, matmul) is the reference it is tested against.
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask_add, double scale,
                  double dropout_p = 0.0, bool plain = false);
// True when attend() would use a fused kernel (for the doctor and the profiler's legend).
bool fused_attention_available();

// Activation checkpointing of one block: returns block(h) without keeping the block's activations.
// Forward runs the block without autograd; backward runs it again, with the default generator's
// state (so the dropout masks) and the autocast state of the first run, and back-propagates through
// it: gradients equal the plain run's. `block` is called again during backward, so it must own what
// it uses (capture by value). Blocks fed by tensors that need gradients other than h and the
// module's own parameters (prefix keys/values) are not to be checkpointed.
at::Tensor checkpointed(std::function<at::Tensor(const at::Tensor&)> block, const at::Tensor& h);

// Activation by HF name: gelu (erf), gelu_new / gelu_pytorch_tanh / gelu_fast (tanh form), relu,
// silu / swish, tanh. Throws dt::Error naming `where` for anything else.
std::function<at::Tensor(const at::Tensor&)> activation(const std::string& name, const std::string& where);

}  // namespace dt
