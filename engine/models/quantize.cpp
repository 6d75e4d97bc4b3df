#include "models/quantize.h"

#include "core/autocast.h"
#include "core/error.h"
#include "models/layers.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace dt {

namespace {

// The NF4 data type's values (QLoRA, Appendix E).
constexpr float kNF4[16] = {-1.0f,
                            -0.6961928009986877f,
                            -0.5250730514526367f,
                            -0.39491748809814453f,
                            -0.28444138169288635f,
                            -0.18477343022823334f,
                            -0.09105003625154495f,
                            0.0f,
                            0.07958029955625534f,
                            0.16093020141124725f,
                            0.24611230194568634f,
                            0.33791524171829224f,
                            0.44070982933044434f,
                            0.5626170039176941f,
                            0.7229568362236023f,
                            1.0f};

std::uint8_t nearest_nf4(float v) {
    // Midpoints between neighbouring levels decide.
    std::uint8_t k = 0;
    while (k < 15 && v > 0.5f * (kNF4[k] + kNF4[k + 1])) ++k;
    return k;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Scales as fp32, undoing the double quantisation.
at::Tensor plain_scales(const QuantizedWeight& q) {
    if (!q.double_quant) return q.scales;
    const auto n = q.scales.numel();
    const at::Tensor s2 = q.scales2.repeat_interleave(QuantizedWeight::kBlock2).narrow(0, 0, n);
    return q.scales.to(at::kFloat) * (s2 / 127.0) + q.offset;
}

}  // namespace

const float* nf4_levels() { return kNF4; }

bool parse_quantize(const std::string& name, QuantKind* kind, const std::string& field) {
    if (name.empty() || name == "none") return false;
    if (name == "int8") *kind = QuantKind::Int8;
    else if (name == "nf4") *kind = QuantKind::NF4;
    else throw Error("field '" + field + "' is '" + name + "'", field, "none, int8 or nf4");
    return true;
}

QuantizedWeight QuantizedWeight::quantize(const at::Tensor& w_in, QuantKind kind, bool double_quant) {
    torch::NoGradGuard ng;
    if (w_in.dim() != 2) throw Error("only matrices are quantized", "quantize");
    QuantizedWeight q;
    q.kind = kind;
    q.out = w_in.size(0);
    q.in = w_in.size(1);
    const at::Tensor w = w_in.detach().to(at::kCPU, at::kFloat).contiguous();
    const float* wp = w.data_ptr<float>();
    const std::int64_t n = w.numel();
    if (kind == QuantKind::Int8) {
        q.scales = w.abs().amax(1).clamp_min(1e-12);  // (out)
        q.codes = torch::round(w / q.scales.unsqueeze(1) * 127.0).clamp(-127, 127).to(at::kChar);
    } else {
        const std::int64_t blocks = ceil_div(n, kBlock);
        q.scales = at::empty({blocks}, at::kFloat);
        q.codes = at::zeros({ceil_div(n, 2)}, at::kByte);
        float* sp = q.scales.data_ptr<float>();
        std::uint8_t* cp = q.codes.data_ptr<std::uint8_t>();
        at::parallel_for(0, blocks, 64, [&](std::int64_t b0, std::int64_t b1) {
            for (std::int64_t b = b0; b < b1; ++b) {
                const std::int64_t lo = b * kBlock, hi = std::min(n, lo + kBlock);
                float m = 0;
                for (std::int64_t i = lo; i < hi; ++i) m = std::max(m, std::abs(wp[i]));
                sp[b] = m > 0 ? m : 1e-12f;
                // Blocks hold an even number of weights, so a byte never spans two blocks.
                for (std::int64_t i = lo; i < hi; ++i) {
                    const std::uint8_t c = nearest_nf4(wp[i] / sp[b]);
                    cp[i / 2] |= static_cast<std::uint8_t>((i % 2 == 0) ? (c << 4) : c);
                }
            }
        });
    }
    if (double_quant) {
        q.double_quant = true;
        const at::Tensor s = q.scales;
        q.offset = s.mean().item<double>();
        const at::Tensor centred = s - q.offset;
        const std::int64_t m = s.numel(), nb = ceil_div(m, kBlock2);
        const at::Tensor padded = at::constant_pad_nd(centred, {0, nb * kBlock2 - m}).view({nb, kBlock2});
        q.scales2 = padded.abs().amax(1).clamp_min(1e-12);
        const at::Tensor s2 = q.scales2.repeat_interleave(kBlock2).narrow(0, 0, m);
        q.scales = torch::round(centred / s2 * 127.0).clamp(-127, 127).to(at::kChar);
    }
    return q;
}

at::Tensor QuantizedWeight::dequantize(at::ScalarType dtype) const {
    const at::Tensor s = plain_scales(*this);
    if (kind == QuantKind::Int8) return (codes.to(at::kFloat) * (s / 127.0).unsqueeze(1)).to(dtype);
    const std::int64_t n = out * in;
    at::Tensor w = at::empty({n}, at::kFloat);
    float* wp = w.data_ptr<float>();
    const std::uint8_t* cp = codes.data_ptr<std::uint8_t>();
    const at::Tensor sc = s.contiguous();
    const float* sp = sc.data_ptr<float>();
    at::parallel_for(0, ceil_div(n, kBlock), 256, [&](std::int64_t b0, std::int64_t b1) {
        for (std::int64_t b = b0; b < b1; ++b) {
            const std::int64_t lo = b * kBlock, hi = std::min(n, lo + kBlock);
            const float m = sp[b];
            for (std::int64_t i = lo; i < hi; i += 2) {
                const std::uint8_t c = cp[i / 2];
                wp[i] = kNF4[c >> 4] * m;
                if (i + 1 < hi) wp[i + 1] = kNF4[c & 15] * m;
            }
        }
    });
    return w.view({out, in}).to(dtype);
}

std::int64_t QuantizedWeight::bytes() const {
    auto b = [](const at::Tensor& t) { return t.defined() ? static_cast<std::int64_t>(t.numel() * t.element_size()) : 0; };
    return b(codes) + b(scales) + b(scales2);
}

std::int64_t quantized_bytes(QuantKind kind, bool double_quant, std::int64_t out, std::int64_t in) {
    const std::int64_t n = out * in;
    const std::int64_t nscales = kind == QuantKind::Int8 ? out : ceil_div(n, QuantizedWeight::kBlock);
    const std::int64_t codes = kind == QuantKind::Int8 ? n : ceil_div(n, 2);
    const std::int64_t scales = double_quant ? nscales + 4 * ceil_div(nscales, QuantizedWeight::kBlock2) : 4 * nscales;
    return codes + scales;
}

namespace {

// The computation type: autocast's where it is on, the activations' otherwise.
at::ScalarType compute_type(const at::Tensor& x) {
    if (autocast_enabled(x.device().type())) return autocast_dtype(x.device().type());
    return x.scalar_type();
}

class QuantLinearFn : public torch::autograd::Function<QuantLinearFn> {
public:
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& bias_or_empty,
                              const QuantizedWeight* q) {
        const at::ScalarType cdt = compute_type(x);
        const at::Tensor w = q->dequantize(cdt);
        const at::Tensor b = bias_or_empty.numel() > 0 ? bias_or_empty.to(cdt) : at::Tensor();
        const at::Tensor y = at::linear(x.to(cdt), w, b);  // all in one type: autocast leaves it
        ctx->saved_data["q"] = reinterpret_cast<std::int64_t>(q);
        ctx->saved_data["cdt"] = static_cast<std::int64_t>(cdt);
        ctx->saved_data["xdt"] = static_cast<std::int64_t>(x.scalar_type());
        ctx->saved_data["bias"] = bias_or_empty.numel() > 0;
        return y;
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
        const auto* q = reinterpret_cast<const QuantizedWeight*>(ctx->saved_data["q"].toInt());
        const auto cdt = static_cast<at::ScalarType>(ctx->saved_data["cdt"].toInt());
        const auto xdt = static_cast<at::ScalarType>(ctx->saved_data["xdt"].toInt());
        const at::Tensor& g = grads[0];
        at::Tensor gx, gb;
        if (ctx->needs_input_grad(0)) gx = at::matmul(g.to(cdt), q->dequantize(cdt)).to(xdt);
        if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(1)) gb = g.reshape({-1, g.size(-1)}).sum(0).to(at::kFloat);
        return {gx, gb, at::Tensor()};
    }
};

}  // namespace

at::Tensor quantized_linear(const at::Tensor& x, const QuantizedWeight& q, const at::Tensor& bias) {
    const at::Tensor b = bias.defined() ? bias : at::empty({0}, x.options().dtype(at::kFloat));
    return QuantLinearFn::apply(x, b, &q);
}

namespace {

// How many Linear and Embedding modules use each weight tensor, and which of them are Linears':
// a weight used once, by a Linear, is one quantize_frozen_linears may quantize.
struct MatrixUses {
    std::map<const void*, int> uses;
    std::set<const void*> linear;
    explicit MatrixUses(const torch::nn::Module& root) {
        for (const auto& m : root.modules(/*include_self=*/true)) {
            if (auto* e = dynamic_cast<const EmbeddingImpl*>(m.get())) uses[e->weight.unsafeGetTensorImpl()] += 1;
            if (auto* l = dynamic_cast<const LinearImpl*>(m.get())) {
                uses[l->weight.unsafeGetTensorImpl()] += 1;
                linear.insert(l->weight.unsafeGetTensorImpl());
            }
        }
    }
    bool is_matrix(const at::Tensor& t) const { return uses.count(t.unsafeGetTensorImpl()) > 0; }
    bool quantizable(const at::Tensor& t) const {
        const auto it = uses.find(t.unsafeGetTensorImpl());
        return it != uses.end() && it->second == 1 && linear.count(t.unsafeGetTensorImpl());
    }
};

}  // namespace

StorageBytes base_storage_bytes(const torch::nn::Module& root) {
    StorageBytes s;
    const MatrixUses mu(root);
    std::set<const void*> seen;
    for (const auto& p : root.parameters(/*recurse=*/true)) {
        if (!seen.insert(p.unsafeGetTensorImpl()).second) continue;
        const std::int64_t n = p.numel(), full = n * 4;
        const bool frozen_matrix = !p.requires_grad() && mu.is_matrix(p) && p.dim() == 2;
        const bool quantizable = frozen_matrix && mu.quantizable(p);
        s.fp32 += full;
        s.bf16 += frozen_matrix ? n * 2 : full;
        s.int8 += quantizable ? quantized_bytes(QuantKind::Int8, false, p.size(0), p.size(1)) : full;
        s.nf4 += quantizable ? quantized_bytes(QuantKind::NF4, true, p.size(0), p.size(1)) : full;
    }
    return s;
}

QuantizeReport quantize_frozen_linears(torch::nn::Module& root, QuantKind kind, bool double_quant) {
    QuantizeReport r;
    // A weight shared with an embedding table (tied LM heads) or with another Linear stays as it is.
    const MatrixUses mu(root);
    for (const auto& item : root.named_modules("", /*include_self=*/true)) {
        auto* lin = dynamic_cast<LinearImpl*>(item.value().get());
        if (!lin || lin->quantized() || lin->weight.requires_grad() || !at::isFloatingType(lin->weight.scalar_type())) continue;
        if (!mu.quantizable(lin->weight)) continue;
        for (const auto& b : lin->branches())
            if (b->reads_base_weight())
                throw Error("the " + b->kind() + " delta on '" + item.key() + "' reads the frozen weight in every forward, which a quantized base does not keep",
                            "quantize", "use lora (without DoRA), ia3, adapters, prefix or prompt tuning on a quantized base, or set quantize to none");
        r.bytes_before += static_cast<std::int64_t>(lin->weight.numel() * lin->weight.element_size());
        lin->quantize(kind, double_quant);
        r.bytes_after += lin->quantized()->bytes();
        ++r.linears;
    }
    return r;
}

}  // namespace dt
