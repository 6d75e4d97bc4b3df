// VeRA (Kopiczko et al. 2024), as PEFT: one pair of frozen random matrices shared by every target,
// A (r, max in) and B (max out, r), drawn from `projection_prng_key` (Kaiming-uniform, bound
// sqrt(6 / fan_in)), and per target two trainable vectors: d (r), initialised to d_initial, and
// b (out), zero, so the model is unchanged at init. y = W x + b₀ + b ⊙ (B[:out] (d ⊙ (A[:, :in] x))).
// A and B are saved with the delta (PEFT's save_projection: `vera_A` / `vera_B`), so it does not
// depend on a generator. Parameters: r + out trainable per target, r·(in + out) shared and frozen.
#include "core/fast_dropout.h"
#include "delta/methods.h"

#include "core/error.h"
#include "delta/hosted.h"
#include "delta/util.h"
#include "models/model.h"

#include <torch/torch.h>

#include <cmath>

namespace dt {
namespace {

class VeraBranch : public delta::DeltaWeightBranch {
public:
    VeraBranch(LinearImpl& host, at::Tensor A, at::Tensor B, at::Tensor d, at::Tensor b, double dropout)
        : DeltaWeightBranch(host, "vera"), A_(std::move(A)), B_(std::move(B)), d_(std::move(d)), b_(std::move(b)), dropout_(dropout) {}
    at::Tensor sliced_A() const { return A_.narrow(1, 0, host_.in_features()); }
    at::Tensor sliced_B() const { return B_.narrow(0, 0, host_.out_features()); }
    at::Tensor delta_weight() const override { return torch::matmul(b_.unsqueeze(1) * sliced_B(), d_.unsqueeze(1) * sliced_A()); }
    at::Tensor transform_output(const at::Tensor& y, const at::Tensor& x) override {
        if (merged_) return y;
        at::Tensor xd = dropout_ > 0 ? fast_dropout(x, dropout_, host_.is_training()) : x;
        return y + b_ * at::linear(d_ * at::linear(xd, sliced_A()), sliced_B());
    }

private:
    at::Tensor A_, B_, d_, b_;
    double dropout_;
};

class VeraMethod : public delta::HostedMethod {
public:
    VeraMethod(const nlohmann::json& spec, const std::string& where) : HostedMethod(spec) { o_ = resolve_options("vera", spec, where); }
    std::string name() const override { return "vera"; }

    void attach(AttachContext& ctx) override {
        if (ctx.model.named_children().contains("vera")) throw Error("the model already has VeRA projections", ctx.where, "use one VeRA method");
        const auto r = o_["r"].get<std::int64_t>();
        const auto paths = delta::select_targets(ctx, spec_, default_targets("vera", ctx.model.roles()), true);
        std::int64_t max_in = 0, max_out = 0;
        for (const auto& path : paths) {
            LinearImpl& lin = delta::linear_at(ctx.model, path, ctx.where);
            max_in = std::max(max_in, lin.in_features());
            max_out = std::max(max_out, lin.out_features());
        }
        auto gen = delta::make_generator(o_["projection_prng_key"].get<std::uint64_t>());
        at::Tensor A = torch::empty({r, max_in}), B = torch::empty({max_out, r});
        {
            torch::NoGradGuard ng;
            A.uniform_(-std::sqrt(6.0 / static_cast<double>(max_in)), std::sqrt(6.0 / static_cast<double>(max_in)), gen);
            B.uniform_(-std::sqrt(6.0 / static_cast<double>(r)), std::sqrt(6.0 / static_cast<double>(r)), gen);
        }
        LinearImpl& first = delta::linear_at(ctx.model, paths.front(), ctx.where);
        shared_ = std::make_shared<torch::nn::Module>("VeraProjections");
        A = shared_->register_parameter("vera_A", A.to(first.weight.device(), first.weight.scalar_type()), false);
        B = shared_->register_parameter("vera_B", B.to(first.weight.device(), first.weight.scalar_type()), false);
        ctx.model.register_module("vera", shared_);
        added_ = {"vera.vera_A", "vera.vera_B"};
        const double d0 = o_["d_initial"].get<double>();
        for (const auto& path : paths) {
            LinearImpl& lin = delta::linear_at(ctx.model, path, ctx.where);
            Host& h = new_host(path, lin);
            at::Tensor b = add_param(h, "vera_lambda_b", torch::zeros({lin.out_features()}));
            at::Tensor d = add_param(h, "vera_lambda_d", torch::full({r}, d0));
            set_branch(h, std::make_shared<VeraBranch>(lin, A, B, d, b, o_["vera_dropout"].get<double>()));
        }
    }
    void detach(TransformerModel& model) override {
        HostedMethod::detach(model);
        if (model.named_children().contains("vera")) model.unregister_module("vera");
        shared_.reset();
    }

private:
    nlohmann::json o_;
    std::shared_ptr<torch::nn::Module> shared_;
};

}  // namespace

std::unique_ptr<DeltaMethod> make_vera(const nlohmann::json& spec, const std::string& where) { return std::make_unique<VeraMethod>(spec, where); }

}  // namespace dt
