#include "models/layers.h"
#include "models/model.h"

#include "core/error.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>

namespace dt {

LinearImpl::LinearImpl(std::int64_t in, std::int64_t out, bool with_bias) : torch::nn::Module("Linear") {
    weight = register_parameter("weight", torch::empty({out, in}));
    if (with_bias) bias = register_parameter("bias", torch::empty({out}));
}

LinearImpl::LinearImpl(at::Tensor tied_weight, at::Tensor tied_bias) : torch::nn::Module("Linear") {
    weight = register_parameter("weight", tied_weight);
    if (tied_bias.defined()) bias = register_parameter("bias", tied_bias);
}

void LinearImpl::remove_parameter(const std::string& name) {
    if (name == "weight" || name == "bias") throw Error("cannot remove the base parameter '" + name + "'");
    parameters_.erase(name);
}

void LinearImpl::remove_branch(const LinearBranch* b) {
    branches_.erase(std::remove_if(branches_.begin(), branches_.end(), [b](const auto& p) { return p.get() == b; }),
                    branches_.end());
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
    if (branches_.empty()) return torch::linear(x, weight, bias);
    at::Tensor xin = x;
    for (auto& b : branches_) xin = b->transform_input(xin);
    at::Tensor y = torch::linear(xin, weight, bias);
    for (auto& b : branches_) y = b->transform_output(y, x);
    return y;
}

LayerNormImpl::LayerNormImpl(std::int64_t dim, double eps_) : torch::nn::Module("LayerNorm"), eps(eps_) {
    weight = register_parameter("weight", torch::ones({dim}));
    bias = register_parameter("bias", torch::zeros({dim}));
}

at::Tensor LayerNormImpl::forward(const at::Tensor& x) {
    // Under bf16 autocast the input may be bf16 while the gains stay fp32: normalise in fp32, as
    // autocast does for layer_norm on GPUs (LibTorch 1.13's CPU autocast leaves it out).
    if (x.scalar_type() != weight.scalar_type())
        return torch::layer_norm(x.to(weight.scalar_type()), {weight.size(0)}, weight, bias, eps);
    return torch::layer_norm(x, {weight.size(0)}, weight, bias, eps);
}

EmbeddingImpl::EmbeddingImpl(at::Tensor tied_weight) : torch::nn::Module("Embedding") { weight = register_parameter("weight", tied_weight); }

EmbeddingImpl::EmbeddingImpl(std::int64_t num, std::int64_t dim) : torch::nn::Module("Embedding") {
    weight = register_parameter("weight", torch::empty({num, dim}));
}

at::Tensor EmbeddingImpl::forward(const at::Tensor& ids) { return torch::embedding(weight, ids); }

at::Tensor Site::apply(const at::Tensor& h, const at::Tensor& block_input) const {
    at::Tensor out = h;
    for (const auto& hook : hooks_) out = hook.second(out, block_input);
    return out;
}

void Site::remove_hook(int id) {
    hooks_.erase(std::remove_if(hooks_.begin(), hooks_.end(), [id](const auto& h) { return h.first == id; }), hooks_.end());
}

std::function<at::Tensor(const at::Tensor&)> activation(const std::string& name, const std::string& where) {
    if (name == "gelu") return [](const at::Tensor& x) { return torch::gelu(x); };
    if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast")
        return [](const at::Tensor& x) { return torch::gelu(x, "tanh"); };
    if (name == "relu") return [](const at::Tensor& x) { return torch::relu(x); };
    if (name == "silu" || name == "swish") return [](const at::Tensor& x) { return torch::silu(x); };
    if (name == "tanh") return [](const at::Tensor& x) { return torch::tanh(x); };
    throw Error("unsupported activation '" + name + "'", where,
                "supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish, tanh");
}

void check_token_inputs(const ForwardInputs& in, std::int64_t vocab, std::int64_t max_tokens) {
    const auto& ids = in.input_ids;
    if (!ids.defined()) throw Error("missing tensor 'input_ids'");
    if (ids.dim() != 2) throw Error("'input_ids' must have shape (batch, tokens), got " + std::to_string(ids.dim()) + " dims");
    if (at::isFloatingType(ids.scalar_type()) || ids.scalar_type() == at::kBool) throw Error("'input_ids' must be an integer tensor");
    if (ids.size(1) == 0) throw Error("'input_ids' has no tokens");
    if (ids.size(1) > max_tokens)
        throw Error("'input_ids' has " + std::to_string(ids.size(1)) + " tokens but the model takes at most " + std::to_string(max_tokens),
                    "", "truncate the input (max_position_embeddings)");
    if (ids.numel() > 0) {
        const auto lo = ids.min().item<std::int64_t>(), hi = ids.max().item<std::int64_t>();
        if (lo < 0 || hi >= vocab)
            throw Error("'input_ids' holds id " + std::to_string(lo < 0 ? lo : hi) + ", outside the vocabulary of " + std::to_string(vocab),
                        "", "was the input made with another tokenizer?");
    }
    const auto& m = in.attention_mask;
    if (m.defined()) {
        if (m.sizes() != ids.sizes())
            throw Error("'attention_mask' has shape " + c10::str(m.sizes()) + " but input_ids has " + c10::str(ids.sizes()));
        if (at::isFloatingType(m.scalar_type())) throw Error("'attention_mask' must be an integer tensor");
    }
}

void init_normal_weights(torch::nn::Module& root, double std, std::uint64_t seed, const std::set<std::string>* only) {
    torch::NoGradGuard ng;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    for (const auto& m : root.named_modules("", /*include_self=*/true)) {
        const bool norm = m.value()->name() == "LayerNorm";
        for (auto& p : m.value()->named_parameters(/*recurse=*/false)) {
            const std::string full = m.key().empty() ? p.key() : m.key() + "." + p.key();
            if (only && !only->count(full)) continue;
            if (norm) p.value().fill_(p.key() == "weight" ? 1.0 : 0.0);
            else if (p.key() == "weight") p.value().normal_(0.0, std, gen);
            else p.value().zero_();
        }
    }
}

at::Tensor lm_loss(const at::Tensor& logits, const at::Tensor& labels, bool shift) {
    if (labels.dim() != 2 || labels.size(0) != logits.size(0) || labels.size(1) > logits.size(1) || labels.size(1) < (shift ? 2 : 1))
        throw Error("'labels' has shape " + c10::str(labels.sizes()) + " but the logits have " + c10::str(logits.sizes()), "labels",
                    "give one label per input token");
    if (at::isFloatingType(labels.scalar_type())) throw Error("'labels' must be an integer tensor", "labels");
    const auto T = labels.size(1), V = logits.size(2);
    at::Tensor lg = logits.narrow(1, logits.size(1) - T, T);
    at::Tensor lb = labels.to(torch::kLong);
    if (shift) {
        lg = lg.narrow(1, 0, T - 1);
        lb = lb.narrow(1, 1, T - 1);
    }
    return torch::nll_loss(torch::log_softmax(at_least_float(lg.reshape({-1, V})), -1), lb.reshape({-1}), {}, at::Reduction::Mean, -100);
}

}  // namespace dt
