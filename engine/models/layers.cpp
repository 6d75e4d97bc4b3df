#include "models/layers.h"
#include "models/model.h"

#include "core/autocast.h"
#include "core/error.h"
#include "core/fast_dropout.h"
#include "core/profiler.h"
#include "models/quantize.h"
#include "core/torch_compat.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/ivalue.h>
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

namespace {

// x W^T + b. A frozen base stored in 16 bits (store_frozen_weights_as) meets fp32 activations
// outside autocast: the product runs in the weight's type and returns in the activations' type.
// Under autocast, autocast casts both sides itself.
at::Tensor base_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
    if (!is_16bit_float(w) || x.scalar_type() == w.scalar_type() || !at::isFloatingType(x.scalar_type()) || autocast_enabled(x.device().type()))
        return torch::linear(x, w, b);
    return torch::linear(x.to(w.scalar_type()), w, b.defined() ? b.to(w.scalar_type()) : b).to(x.scalar_type());
}

}  // namespace

void LinearImpl::quantize(QuantKind kind, bool double_quant) {
    if (weight.requires_grad()) throw Error("a trained weight is not quantized", "quantize");
    quant_ = std::make_shared<QuantizedWeight>(QuantizedWeight::quantize(weight, kind, double_quant));
    torch::NoGradGuard ng;
    // The shape stays (parameter counts, exports' names); the storage goes.
    weight.set_data(at::zeros({1}, weight.options()).expand({weight.size(0), weight.size(1)}));
}

at::Tensor LinearImpl::dense_weight() const {
    const at::ScalarType t = is_16bit_float(weight) ? at::kFloat : weight.scalar_type();
    return quant_ ? quant_->dequantize(t) : weight.to(t);
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
    auto base = [this](const at::Tensor& in) { return quant_ ? quantized_linear(in, *quant_, bias) : base_linear(in, weight, bias); };
    if (branches_.empty()) return base(x);
    at::Tensor xin = x;
    {
        DT_PROFILE_REGION("delta");
        for (auto& b : branches_) xin = b->transform_input(xin);
    }
    at::Tensor y = base(xin);
    DT_PROFILE_REGION("delta");
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

at::Tensor DropoutImpl::forward(const at::Tensor& x) { return fast_dropout(x, p, is_training()); }

EmbeddingImpl::EmbeddingImpl(at::Tensor tied_weight) : torch::nn::Module("Embedding") { weight = register_parameter("weight", tied_weight); }

EmbeddingImpl::EmbeddingImpl(std::int64_t num, std::int64_t dim) : torch::nn::Module("Embedding") {
    weight = register_parameter("weight", torch::empty({num, dim}));
}

at::Tensor EmbeddingImpl::forward(const at::Tensor& ids) {
    DT_PROFILE_REGION("embeddings");
    at::Tensor e = torch::embedding(weight, ids);
    // A table stored in 16 bits gives fp32 vectors outside autocast (see base_linear).
    if (is_16bit_float(weight) && !autocast_enabled(ids.device().type())) e = e.to(at::kFloat);
    return e;
}

std::int64_t store_frozen_weights_as(torch::nn::Module& root, c10::ScalarType dtype) {
    if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf)
        throw Error("a frozen base is stored as fp32, bf16 or fp16", "base_dtype");
    torch::NoGradGuard ng;
    std::int64_t saved = 0;
    std::set<const void*> seen;  // tied tensors are converted once (they share one TensorImpl)
    for (const auto& mod : root.modules(/*include_self=*/true)) {
        // The base's own matrices only: a method's frozen tensors (VeRA's shared projections) stay.
        at::Tensor t;
        if (auto* lin = dynamic_cast<LinearImpl*>(mod.get())) t = lin->weight;
        else if (auto* emb = dynamic_cast<EmbeddingImpl*>(mod.get())) t = emb->weight;
        if (!t.defined() || t.requires_grad() || t.dim() < 2 || !at::isFloatingType(t.scalar_type()) || t.scalar_type() == dtype) continue;
        if (!seen.insert(t.unsafeGetTensorImpl()).second) continue;
        const auto before = static_cast<std::int64_t>(t.numel() * t.element_size());
        t.set_data(t.to(dtype));
        saved += before - static_cast<std::int64_t>(t.numel() * t.element_size());
    }
    return saved;
}

at::Tensor Site::apply(const at::Tensor& h, const at::Tensor& block_input) const {
    if (hooks_.empty()) return h;
    DT_PROFILE_REGION("delta");
    at::Tensor out = h;
    for (const auto& hook : hooks_) out = hook.second(out, block_input);
    return out;
}

void Site::remove_hook(int id) {
    hooks_.erase(std::remove_if(hooks_.begin(), hooks_.end(), [id](const auto& h) { return h.first == id; }), hooks_.end());
}

bool fused_attention_available() { return DT_HAS_FUSED_SDPA != 0; }

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask_add, double scale,
                  double dropout_p, bool plain) {
    DT_PROFILE_REGION("attention");
    const auto B = q.size(0), H = q.size(1), T = q.size(2), D = v.size(3);
#if DT_HAS_FUSED_SDPA
    if (!plain && dropout_p == 0.0) {
        c10::optional<at::Tensor> m;
        if (mask_add.defined()) m = mask_add.to(q.scalar_type());
        return at::scaled_dot_product_attention(q, k, v, m, 0.0, false, scale).transpose(1, 2).reshape({B, T, H * D});
    }
#else
    (void)plain;
#endif
    at::Tensor w = torch::matmul(q, k.transpose(2, 3));
    if (scale != 1.0) w = w * scale;
    if (mask_add.defined()) w = w + mask_add;
    w = torch::softmax(at_least_float(w), -1).to(q.scalar_type());
    if (dropout_p > 0.0) w = fast_dropout(w, dropout_p, /*training=*/true);
    return torch::matmul(w, v).transpose(1, 2).reshape({B, T, H * D});
}

namespace {

struct CheckpointedBlock : torch::CustomClassHolder {
    std::function<at::Tensor(const at::Tensor&)> fn;
    at::Tensor rng_state;  // the default CPU generator's state before the first run
    bool autocast = false;
    at::ScalarType autocast_type = at::kBFloat16;
};

at::Tensor cpu_rng_state() {
    auto g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    return g.get_state();
}

void set_cpu_rng_state(const at::Tensor& s) {
    auto g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(s);
}

class CheckpointFn : public torch::autograd::Function<CheckpointFn> {
public:
    // `anchor` requires grad so that the output does even when h does not (the first block's input
    // from frozen embeddings): otherwise backward would never reach the block's own parameters.
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h, const at::Tensor& anchor,
                              c10::intrusive_ptr<CheckpointedBlock> block) {
        (void)anchor;
        block->rng_state = cpu_rng_state();
        block->autocast = autocast_enabled(h.device().type());
        if (block->autocast) block->autocast_type = autocast_dtype(h.device().type());
        at::Tensor out = block->fn(h);
        ctx->save_for_backward({h});
        ctx->saved_data["block"] = c10::IValue::make_capsule(block);
        return out;
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
        const at::Tensor h = ctx->get_saved_variables()[0];
        auto block = c10::static_intrusive_pointer_cast<CheckpointedBlock>(ctx->saved_data["block"].toCapsule());
        const at::Tensor x = h.detach().requires_grad_(h.requires_grad());
        const at::Tensor now = cpu_rng_state();
        set_cpu_rng_state(block->rng_state);
        at::Tensor out;
        {
            torch::AutoGradMode on(true);
            const char* precision = !block->autocast ? "fp32" : block->autocast_type == at::kHalf ? "fp16" : "bf16";
            AutocastScope ac(precision, h.device().type());
            out = block->fn(x);
        }
        set_cpu_rng_state(now);
        torch::autograd::backward({out}, {grads[0]});
        return {x.requires_grad() ? x.grad() : at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

}  // namespace

at::Tensor checkpointed(std::function<at::Tensor(const at::Tensor&)> block, const at::Tensor& h) {
    auto holder = c10::make_intrusive<CheckpointedBlock>();
    holder->fn = std::move(block);
    static const at::Tensor anchor = torch::empty({0}, torch::requires_grad());
    return CheckpointFn::apply(h, anchor, holder);
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

void TransformerModel::set_gradient_checkpointing(bool on) {
    if (on && !supports_gradient_checkpointing())
        throw Error(name() + " has no activation checkpointing yet", "gradient_checkpointing",
                    "BERT, RoBERTa, GPT-2, GPT-NeoX, Llama and Mistral have it; set gradient_checkpointing to false");
    checkpoint_ = on;
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

namespace {

void check_lm_labels(const at::Tensor& labels, const at::Tensor& scores, bool shift) {
    if (labels.dim() != 2 || labels.size(0) != scores.size(0) || labels.size(1) > scores.size(1) || labels.size(1) < (shift ? 2 : 1))
        throw Error("'labels' has shape " + c10::str(labels.sizes()) + " but the logits have " + c10::str(scores.sizes()), "labels",
                    "give one label per input token");
    if (at::isFloatingType(labels.scalar_type())) throw Error("'labels' must be an integer tensor", "labels");
}

// Mean cross-entropy of rows h (N, C) through the head (W (V, C), b (V)) against targets (N), a chunk
// of rows at a time. Forward keeps only each row's log-sum-exp; backward recomputes the chunk's
// logits: dlogits = softmax - onehot, dh = dlogits W, dW = dlogits^T h, db = sum dlogits. Under
// autocast the logits' type is kept for the recomputation.
class ChunkedHeadLoss : public torch::autograd::Function<ChunkedHeadLoss> {
public:
    // `b_or_empty`: the bias, or an empty tensor for none (an undefined input is not accepted).
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w, const at::Tensor& b_or_empty,
                              const at::Tensor& targets, std::int64_t chunk) {
        const at::Tensor b = b_or_empty.numel() > 0 ? b_or_empty : at::Tensor();
        const auto N = h.size(0);
        at::Tensor lse = at::empty({N}, h.options().dtype(at::kFloat));
        at::Tensor total = at::zeros({}, h.options().dtype(at::kFloat));
        at::ScalarType cdt = h.scalar_type();
        for (std::int64_t s = 0; s < N; s += chunk) {
            const auto n = std::min(chunk, N - s);
            at::Tensor lg = at::linear(h.narrow(0, s, n), w, b);
            cdt = lg.scalar_type();
            lg = lg.to(at::kFloat);
            const at::Tensor l = at::logsumexp(lg, 1);
            lse.narrow(0, s, n).copy_(l);
            total += (l - lg.gather(1, targets.narrow(0, s, n).unsqueeze(1)).squeeze(1)).sum();
        }
        ctx->save_for_backward({h, w, b_or_empty, targets, lse});
        ctx->saved_data["chunk"] = chunk;
        ctx->saved_data["cdt"] = static_cast<std::int64_t>(cdt);
        return (total / static_cast<double>(N)).to(h.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &h = saved[0], &w = saved[1], &targets = saved[3], &lse = saved[4];
        const at::Tensor b = saved[2].numel() > 0 ? saved[2] : at::Tensor();
        const auto chunk = ctx->saved_data["chunk"].toInt();
        const auto cdt = static_cast<at::ScalarType>(ctx->saved_data["cdt"].toInt());
        const auto N = h.size(0);
        const bool want_h = ctx->needs_input_grad(0), want_w = ctx->needs_input_grad(1), want_b = b.defined() && ctx->needs_input_grad(2);
        const at::Tensor g = grads[0].to(at::kFloat) / static_cast<double>(N);
        const at::Tensor wc = w.to(cdt), bc = b.defined() ? b.to(cdt) : b;
        at::Tensor gh = want_h ? at::empty_like(h) : at::Tensor();
        at::Tensor gw = want_w ? at::zeros(w.sizes(), w.options().dtype(at::kFloat)) : at::Tensor();
        at::Tensor gb = want_b ? at::zeros(b.sizes(), b.options().dtype(at::kFloat)) : at::Tensor();
        for (std::int64_t s = 0; s < N; s += chunk) {
            const auto n = std::min(chunk, N - s);
            const at::Tensor hc = h.narrow(0, s, n).to(cdt);
            at::Tensor p = (at::linear(hc, wc, bc).to(at::kFloat) - lse.narrow(0, s, n).unsqueeze(1)).exp_();
            p.scatter_add_(1, targets.narrow(0, s, n).unsqueeze(1), at::full({n, 1}, -1.0, p.options()));
            p.mul_(g);
            if (want_h) gh.narrow(0, s, n).copy_(at::mm(p.to(cdt), wc));
            if (want_w) gw.add_(at::mm(p.t(), hc.to(at::kFloat)));
            if (want_b) gb.add_(p.sum(0));
        }
        return {gh, want_w ? gw.to(w.scalar_type()) : gw, want_b ? gb.to(b.scalar_type()) : gb, at::Tensor(), at::Tensor()};
    }
};

}  // namespace

at::Tensor head_lm_loss(LinearImpl& head, const at::Tensor& h, const at::Tensor& labels, bool shift, std::int64_t chunk_rows) {
    DT_PROFILE_REGION("loss");
    check_lm_labels(labels, h, shift);
    const auto T = labels.size(1), C = h.size(2);
    at::Tensor hs = h.narrow(1, h.size(1) - T, T);  // a soft prompt adds positions in front
    at::Tensor lb = labels.to(torch::kLong);
    if (shift) {
        hs = hs.narrow(1, 0, T - 1);
        lb = lb.narrow(1, 1, T - 1);
    }
    lb = lb.reshape({-1});
    const at::Tensor rows = lb.ne(-100).nonzero().squeeze(1);
    const at::Tensor x = hs.reshape({-1, C}).index_select(0, rows);
    const at::Tensor y = lb.index_select(0, rows);
    if (rows.numel() == 0) return (x.sum() * 0.0 / 0.0).to(at::kFloat);  // as lm_loss: the mean of nothing
    if ((y.lt(0) | y.ge(head.out_features())).any().item<bool>())
        throw Error("a label is outside the vocabulary of " + std::to_string(head.out_features()), "labels", "use -100 for unscored positions");
    if (!head.branches().empty()) return torch::nll_loss(torch::log_softmax(at_least_float(head.forward(x)), -1), y);
    const at::Tensor bias = head.bias.defined() ? head.bias : at::empty({0}, head.weight.options());
    return ChunkedHeadLoss::apply(x, head.weight, bias, y, std::max<std::int64_t>(1, chunk_rows));
}

at::Tensor lm_loss(const at::Tensor& logits, const at::Tensor& labels, bool shift) {
    check_lm_labels(labels, logits, shift);
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
