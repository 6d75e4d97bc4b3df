// LoRA (Hu et al. 2021): y = W x + b + s * B(A(dropout(x))), s = alpha / r (rsLoRA: alpha / sqrt(r)).
// A (r, d_in) Kaiming-uniform like PEFT (or gaussian N(0, 1/r)), B (d_out, r) zeros, so the model
// is unchanged at init. DoRA (Liu et al. 2024) adds a magnitude m (d_out): y = (m / ||W + sBA||_row)
// (W x + s B A x) + b, with the norm detached as PEFT does. Parameters: r (d_in + d_out) per target
// (+ d_out with DoRA). Merge folds the update into W (and m/||.|| for DoRA); unmerge restores it.
// Initialisations from the weights (the model is unchanged at init; detach restores W):
//   PiSSA (Meng et al. 2024): W = U S Vᵀ; A = sqrt(S_r/s) V_rᵀ, B = U_r sqrt(S_r/s); W keeps the
//   residual W − s·B A. pissa_niter K: a randomized SVD (K subspace iterations, seeded) instead.
//   OLoRA (Büyükakyüz 2024): W = Q R; A = R[:r], B = Q[:, :r]; W keeps W − s·B A.
// Such a delta is saved for PEFT as PEFT converts it, for the ORIGINAL base: rank 2r with
// A' = [A; A₀], B' = [B, −B₀] (A₀, B₀ the initial factors) and alpha doubled, so s·B'A' = s(BA − B₀A₀).
// LoRA+ (Hayou et al. 2024): B's learning rate is loraplus_lr_ratio times the run's (a training hook).
#include "core/fast_dropout.h"
#include "delta/methods.h"

#include "core/error.h"
#include "delta/hosted.h"
#include "delta/util.h"
#include "models/model.h"

#include <torch/torch.h>

#include <cmath>
#include <set>
#include <tuple>

namespace dt {
namespace {

struct LoraOptions {
    std::int64_t r = 8;
    double alpha = 8;
    double dropout = 0.0;
    bool rslora = false;
    bool dora = false;
    std::string init = "kaiming";  // PEFT's default (init_lora_weights = true)
    std::int64_t pissa_niter = 0;
    double loraplus = 1.0;
    std::string bias = "none";
    std::uint64_t seed = 0;
};

class LoraBranch : public LinearBranch {
public:
    LoraBranch(LinearImpl& host, Linear A, Linear B, double scale, double dropout, at::Tensor magnitude)
        : host_(host), A_(std::move(A)), B_(std::move(B)), scale_(scale), dropout_(dropout), m_(std::move(magnitude)) {}

    std::string kind() const override { return "lora"; }
    bool reads_base_weight() const override { return m_.defined(); }  // DoRA's weight norm

    at::Tensor transform_output(const at::Tensor& y, const at::Tensor& x) override {
        if (merged_) return y;
        at::Tensor xd = dropout_ > 0 ? fast_dropout(x, dropout_, host_.is_training()) : x;
        at::Tensor delta = B_->forward(A_->forward(xd)) * scale_;
        if (!m_.defined()) return y + delta;
        // y = W x + b already; rescale the W x + s B A x part by m / ||W + s B A||.
        at::Tensor factor = m_ / weight_norm();
        at::Tensor wx = host_.bias.defined() ? y - host_.bias : y;
        at::Tensor out = factor * (wx + delta);
        return host_.bias.defined() ? out + host_.bias : out;
    }

    bool can_merge() const override { return true; }
    void merge(LinearImpl& host) override {
        torch::NoGradGuard ng;
        if (m_.defined()) {
            at::Tensor w = host.weight + delta_weight();
            saved_weight_ = host.weight.clone();
            host.weight.copy_(w * (m_ / w.norm(2, {1})).unsqueeze(1));
        } else {
            host.weight.add_(delta_weight());
        }
        merged_ = true;
    }
    void unmerge(LinearImpl& host) override {
        torch::NoGradGuard ng;
        if (m_.defined()) host.weight.copy_(saved_weight_), saved_weight_ = at::Tensor();
        else host.weight.sub_(delta_weight());
        merged_ = false;
    }
    bool merged() const { return merged_; }
    at::Tensor delta_weight() const { return torch::matmul(B_->weight, A_->weight) * scale_; }

private:
    at::Tensor weight_norm() const {
        torch::NoGradGuard ng;  // PEFT detaches the norm (DoRA paper, section 4.3)
        return (host_.weight + delta_weight()).norm(2, {1});
    }
    LinearImpl& host_;
    Linear A_, B_;
    double scale_, dropout_;
    at::Tensor m_;
    at::Tensor saved_weight_;
    bool merged_ = false;
};

// PiSSA's / OLoRA's initial (A, B) for W (out, in): B A · scale is W's principal rank-r part
// (PiSSA) or its first r QR components (OLoRA).
std::pair<at::Tensor, at::Tensor> principal_factors_impl(const at::Tensor& W, std::int64_t r, double scale, bool olora,
                                                         std::int64_t niter, at::Generator& gen) {
    if (olora) {
        auto [Q, R] = torch::linalg_qr(W);
        return {R.narrow(0, 0, r).contiguous(), Q.narrow(1, 0, r).contiguous()};  // PEFT's OLoRA: no 1/scale on the factors
    }
    at::Tensor U, S, Vh;
    if (niter == 0) {
        std::tie(U, S, Vh) = torch::linalg_svd(W, false);
    } else {
        // Randomized SVD (Halko et al.): a basis of W's range from a Gaussian sketch, refined by
        // niter subspace iterations, then the SVD of the small projection.
        at::Tensor G = torch::empty({W.size(1), r}, W.options());
        G.normal_(0.0, 1.0, gen);
        at::Tensor Q = std::get<0>(torch::linalg_qr(torch::matmul(W, G)));
        for (std::int64_t i = 0; i < niter; ++i) {
            Q = std::get<0>(torch::linalg_qr(torch::matmul(W.t(), Q)));
            Q = std::get<0>(torch::linalg_qr(torch::matmul(W, Q)));
        }
        at::Tensor Ub;
        std::tie(Ub, S, Vh) = torch::linalg_svd(torch::matmul(Q.t(), W), false);
        U = torch::matmul(Q, Ub);
    }
    const at::Tensor s = (S.narrow(0, 0, r) / scale).sqrt();
    return {(s.unsqueeze(1) * Vh.narrow(0, 0, r)).contiguous(), (U.narrow(1, 0, r) * s.unsqueeze(0)).contiguous()};
}

class LoraMethod : public DeltaMethod {
public:
    LoraMethod(const nlohmann::json& spec, const std::string& where) : DeltaMethod(spec) {
        const nlohmann::json o = resolve_options("lora", spec, where);  // types, ranges and PEFT's defaults
        o_.r = o["r"].get<std::int64_t>();
        o_.alpha = o["lora_alpha"].get<double>();
        o_.dropout = o["lora_dropout"].get<double>();
        o_.rslora = o["use_rslora"].get<bool>();
        o_.dora = o["use_dora"].get<bool>();
        o_.init = o["init_lora_weights"].get<std::string>();
        o_.pissa_niter = o["pissa_niter"].get<std::int64_t>();
        o_.loraplus = o["loraplus_lr_ratio"].get<double>();
        if ((o_.init == "pissa" || o_.init == "olora") && o_.dora)
            throw Error("init_lora_weights '" + o_.init + "' cannot be combined with DoRA", where + ": init_lora_weights");
        o_.bias = o["bias"].get<std::string>();
        o_.seed = o["seed"].get<std::uint64_t>();
        for (const char* f : {"rank_pattern", "alpha_pattern"})
            if (spec.contains(f) && !spec[f].is_object() && !spec[f].is_null())
                throw Error(std::string("field '") + f + "' must be an object of pattern -> number", where);
    }

    std::string name() const override { return "lora"; }

    void attach(AttachContext& ctx) override {
        auto gen = delta::make_generator(o_.seed);
        const nlohmann::json rp = spec_.value("rank_pattern", nlohmann::json()), ap = spec_.value("alpha_pattern", nlohmann::json());
        for (const auto& path : delta::select_targets(ctx, spec_, default_targets("lora", ctx.model.roles()), true)) {
            LinearImpl& host = delta::linear_at(ctx.model, path, ctx.where);
            for (const char* n : {"lora_A", "lora_B"})
                if (host.named_children().contains(n))
                    throw Error("module '" + path + "' already has LoRA weights", ctx.where, "two LoRA methods target it");
            const auto r = static_cast<std::int64_t>(delta::pattern_number(rp, path, static_cast<double>(o_.r), ctx.where, "rank_pattern"));
            const double alpha = delta::pattern_number(ap, path, o_.alpha, ctx.where, "alpha_pattern");
            if (r <= 0) throw Error("rank for '" + path + "' must be positive", ctx.where + ": rank_pattern");
            const double scale = o_.rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
            Linear A(host.in_features(), r, false), B(r, host.out_features(), false);
            at::Tensor A0, B0;
            {
                torch::NoGradGuard ng;
                if (o_.init == "gaussian") A->weight.normal_(0.0, 1.0 / static_cast<double>(r), gen);
                else if (o_.init == "kaiming") {
                    const double bound = 1.0 / std::sqrt(static_cast<double>(host.in_features()));  // kaiming_uniform(a=sqrt(5))
                    A->weight.uniform_(-bound, bound, gen);
                }
                B->weight.zero_();
                if (o_.init == "pissa" || o_.init == "olora") {
                    if (r > std::min(host.in_features(), host.out_features()))
                        throw Error("rank " + std::to_string(r) + " exceeds the rank of '" + path + "' (" + std::to_string(host.in_features()) + " x " +
                                        std::to_string(host.out_features()) + ")",
                                    ctx.where + ": r", "PiSSA and OLoRA take r <= min(d_in, d_out)");
                    std::tie(A0, B0) = principal_factors_impl(host.weight.scalar_type() == torch::kDouble ? host.weight.detach() : host.weight.detach().to(torch::kFloat), r, scale, o_.init == "olora", o_.pissa_niter, gen);
                    A0 = A0.to(host.weight.scalar_type());
                    B0 = B0.to(host.weight.scalar_type());
                    A->weight.copy_(A0);
                    B->weight.copy_(B0);
                    host.weight.sub_((torch::matmul(B0, A0) * scale).to(host.weight.scalar_type()));  // the residual stays in the base
                }
            }
            A->to(host.weight.device(), host.weight.scalar_type());
            B->to(host.weight.device(), host.weight.scalar_type());
            host.register_module("lora_A", A);
            host.register_module("lora_B", B);
            added_.push_back(path + ".lora_A.weight");
            added_.push_back(path + ".lora_B.weight");
            at::Tensor m;
            if (o_.dora) {
                torch::NoGradGuard ng;
                m = host.register_parameter("lora_magnitude_vector", host.weight.detach().norm(2, {1}).clone());
                added_.push_back(path + ".lora_magnitude_vector");
            }
            auto branch = std::make_shared<LoraBranch>(host, A, B, scale, o_.dropout, m);
            host.add_branch(branch);
            hosts_.push_back({path, &host, branch, A0, B0, scale});
            targets_.push_back(path);
            if (o_.bias == "lora_only" && host.bias.defined()) delta::unfreeze_param(ctx, path + ".bias", "lora", unfrozen_);
        }
        if (o_.loraplus != 1.0) {
            std::set<std::string> b_names;
            for (const auto& h : hosts_) b_names.insert(h.path + ".lora_B.weight");
            hook_ = std::make_shared<LoraPlus>(b_names, o_.loraplus);
            ctx.model.training_hooks().push_back(hook_);
        }
        if (o_.bias == "all")
            for (const auto& p : ctx.model.named_parameters(true)) {
                const auto& k = p.key();
                if (k.size() > 5 && k.compare(k.size() - 5, 5, ".bias") == 0 && ctx.claims.is_base(k) &&
                    ctx.claims.canonical(k) == k)
                    delta::unfreeze_param(ctx, k, "lora", unfrozen_);
            }
    }

    void detach(TransformerModel& model) override {
        if (hook_) model.remove_training_hook(hook_.get());
        hook_.reset();
        for (auto& h : hosts_) {
            if (h.A0.defined()) {  // PiSSA / OLoRA: give the base its principal part back
                torch::NoGradGuard ng;
                h.host->weight.add_((torch::matmul(h.B0, h.A0) * h.scale).to(h.host->weight.scalar_type()));
            }
            h.host->remove_branch(h.branch.get());
            h.host->unregister_module("lora_A");
            h.host->unregister_module("lora_B");
            if (o_.dora) h.host->remove_parameter("lora_magnitude_vector");
        }
        hosts_.clear();
    }

    // PiSSA / OLoRA: PEFT's conversion to a plain LoRA of rank 2r for the original base.
    nlohmann::json status() const override {
        if (o_.init != "pissa" && o_.init != "olora") return nullptr;
        return {{"peft_conversion", {{"rank_factor", 2}, {"alpha_factor", o_.rslora ? std::sqrt(2.0) : 2.0}}}};
    }
    std::vector<std::pair<std::string, at::Tensor>> saved_tensors(TransformerModel& model) const override {
        auto v = DeltaMethod::saved_tensors(model);
        if (o_.init != "pissa" && o_.init != "olora") return v;
        for (auto& [name, t] : v)
            for (const auto& h : hosts_) {
                if (name == h.path + ".lora_A.weight") t = torch::cat({t, h.A0.to(t.scalar_type())}, 0);
                if (name == h.path + ".lora_B.weight") t = torch::cat({t, -h.B0.to(t.scalar_type())}, 1);
            }
        return v;
    }

    bool can_merge() const override { return true; }
    bool merged() const override { return !hosts_.empty() && hosts_.front().branch->merged(); }
    void merge() override {
        for (auto& h : hosts_) h.branch->merge(*h.host);
    }
    void unmerge() override {
        for (auto& h : hosts_) h.branch->unmerge(*h.host);
    }

private:
    struct Host {
        std::string path;
        LinearImpl* host;
        std::shared_ptr<LoraBranch> branch;
        at::Tensor A0, B0;  // PiSSA / OLoRA: the initial factors (their product left the base)
        double scale = 1;
    };
    // LoRA+: B's learning rate times the ratio.
    class LoraPlus : public TrainingHook {
    public:
        LoraPlus(std::set<std::string> b_names, double ratio) : b_(std::move(b_names)), ratio_(ratio) {}
        double lr_factor(const std::string& p) const override { return b_.count(p) ? ratio_ : 1.0; }

    private:
        std::set<std::string> b_;
        double ratio_;
    };
    std::shared_ptr<TrainingHook> hook_;
    LoraOptions o_;
    std::vector<Host> hosts_;
};

}  // namespace

std::unique_ptr<DeltaMethod> make_lora(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<LoraMethod>(spec, where);
}

}  // namespace dt
