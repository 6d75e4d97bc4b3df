#include "models/layers.h"

#include "core/error.h"

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

}  // namespace dt
