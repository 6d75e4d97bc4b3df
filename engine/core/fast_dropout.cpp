#include "core/fast_dropout.h"

#include "core/error.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <mutex>
#include <type_traits>

namespace dt {
namespace {

inline std::uint64_t mix64(std::uint64_t z) {  // SplitMix64's finaliser
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// keep[i] = 1 where the i-th 32-bit draw of `seed` is >= threshold. Two passes per block: the
// integer hashing, then a branch-free multiply the compiler vectorises (a branch per element
// mispredicts on random masks and cost 3x).
void draw_keep(std::uint8_t* keep, std::int64_t b, std::int64_t e, std::uint64_t seed, std::uint32_t threshold, std::int64_t n) {
    for (std::int64_t j = b; j < e; ++j) {
        const std::uint64_t r = mix64(seed + static_cast<std::uint64_t>(j) * 0x9E3779B97F4A7C15ULL);
        keep[2 * j] = static_cast<std::uint32_t>(r) >= threshold;
        if (2 * j + 1 < n) keep[2 * j + 1] = static_cast<std::uint32_t>(r >> 32) >= threshold;
    }
}

template <typename T, typename S>
void scale_by_keep(const T* __restrict x, const std::uint8_t* __restrict keep, T* __restrict out, std::int64_t m, S scale) {
    for (std::int64_t i = 0; i < m; ++i) out[i] = static_cast<T>(static_cast<S>(x[i]) * (static_cast<S>(keep[i]) * scale));
}

// out = x * keep * scale with a fresh keep mask; S is the arithmetic type (double for double).
template <typename T, typename S>
void dropout_kernel(const T* x, T* out, std::uint8_t* keep, std::int64_t n, std::uint64_t seed, std::uint32_t threshold, S scale) {
    at::parallel_for(0, (n + 1) / 2, 2048, [&](std::int64_t b, std::int64_t e) {
        draw_keep(keep, b, e, seed, threshold, n);
        const std::int64_t lo = 2 * b, hi = std::min(n, 2 * e);
        scale_by_keep<T, S>(x + lo, keep + lo, out + lo, hi - lo, scale);
    });
}

std::uint64_t draw_seed() {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get<at::CPUGeneratorImpl>()->random64();
}

class FastDropoutFn : public torch::autograd::Function<FastDropoutFn> {
public:
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in, double p) {
        const at::Tensor x = x_in.contiguous();
        at::Tensor out = at::empty_like(x);
        at::Tensor keep = at::empty(x.sizes(), x.options().dtype(at::kByte));
        const auto threshold = static_cast<std::uint32_t>(std::min(4294967295.0, std::floor(p * 4294967296.0)));
        const double scale = 1.0 / (1.0 - p);
        const std::uint64_t seed = draw_seed();
        AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "fast_dropout", [&] {
            using S = std::conditional_t<std::is_same<scalar_t, double>::value, double, float>;
            dropout_kernel<scalar_t, S>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), keep.data_ptr<std::uint8_t>(), x.numel(), seed,
                                        threshold, static_cast<S>(scale));
        });
        ctx->save_for_backward({keep});
        ctx->saved_data["scale"] = scale;
        return out;
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
        const at::Tensor keep = ctx->get_saved_variables()[0];
        const double scale = ctx->saved_data["scale"].toDouble();
        const at::Tensor g = grads[0].contiguous();
        at::Tensor gx = at::empty_like(g);
        AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, g.scalar_type(), "fast_dropout_backward", [&] {
            using S = std::conditional_t<std::is_same<scalar_t, double>::value, double, float>;
            const scalar_t* gp = g.data_ptr<scalar_t>();
            const std::uint8_t* kp = keep.data_ptr<std::uint8_t>();
            scalar_t* op = gx.data_ptr<scalar_t>();
            at::parallel_for(0, g.numel(), 8192, [&](std::int64_t b, std::int64_t e) {
                scale_by_keep<scalar_t, S>(gp + b, kp + b, op + b, e - b, static_cast<S>(scale));
            });
        });
        return {gx, at::Tensor()};
    }
};

}  // namespace

at::Tensor fast_dropout(const at::Tensor& x, double p, bool training) {
    if (!training || p == 0.0) return x;
    if (!(p >= 0.0 && p < 1.0)) throw Error("dropout probability must lie in [0, 1), got " + std::to_string(p), "dropout");
    if (!x.device().is_cpu() || !at::isFloatingType(x.scalar_type())) return torch::dropout(x, p, true);
    return FastDropoutFn::apply(x, p);
}

}  // namespace dt
