// OFT (Qiu et al. 2023), as PEFT 0.7.1: a block-diagonal orthogonal rotation of the layer's output
// features. oft_r holds r blocks R_i of size b = ceil(out / r) ((1, b, b) with block_share). Each
// becomes Q_i = (I − S_i)(I + S_i)⁻¹ with S_i = (R_i − R_iᵀ)/2 (Cayley), and R_full = block_diag(Q_i)
// cut to (out, out) when r does not divide out. y = (x Wᵀ) R_full + b; merged: W' = R_fullᵀ W.
// R = 0 at init gives Q = I, so the model is unchanged. COFT (coft: true) keeps each R_i within
// eps' = eps·b²/sqrt(r) of 0, projected in place before each use (PEFT's _project_batch).
// module_dropout skips the rotation while training. Parameters: r·b² per target (b² shared).
#include "delta/methods.h"

#include "core/error.h"
#include "delta/hosted.h"
#include "delta/util.h"
#include "models/model.h"

#include <torch/torch.h>

#include <cmath>

namespace dt {
namespace {

class OftBranch : public delta::DeltaWeightBranch {
public:
    OftBranch(LinearImpl& host, at::Tensor R, std::int64_t blocks, bool coft, double eps, double module_dropout)
        : DeltaWeightBranch(host, "oft", module_dropout), R_(std::move(R)), blocks_(blocks), coft_(coft), eps_(eps) {}
    bool reads_base_weight() const override { return true; }

    // The rotation R_full (out, out).
    at::Tensor rotation() const {
        if (coft_) {
            torch::NoGradGuard ng;
            // PEFT compares R with a zero matrix (its "I" is zeros): ||R|| <= eps' keeps R, else R is
            // scaled back to norm eps'.
            const double e = eps_ / std::sqrt(static_cast<double>(R_.size(0)));
            const at::Tensor norm = R_.flatten(1).norm(2, {1}).view({-1, 1, 1});
            R_.copy_(torch::where(norm <= e, R_, R_ * (e / norm)));
        }
        const std::int64_t b = R_.size(1);
        const at::Tensor S = 0.5 * (R_ - R_.transpose(1, 2));
        const at::Tensor I = torch::eye(b, R_.options()).unsqueeze(0).expand_as(S);
        // I + S is invertible for every skew-symmetric S in exact arithmetic, but with entries so large
        // that the 1s are lost (a corrupt adapter) an odd-sized block is singular: one clear error.
        at::Tensor inv;
        try {
            inv = torch::inverse(I + S);
        } catch (const c10::Error&) {
            throw Error("an OFT block cannot be inverted: its values are too large for the Cayley transform", "oft",
                        "the adapter is corrupt; train or export it again");
        }
        const at::Tensor Q = torch::matmul(I - S, inv);  // (blocks, b, b)
        std::vector<at::Tensor> diag;
        for (std::int64_t i = 0; i < blocks_; ++i) diag.push_back(Q[Q.size(0) == 1 ? 0 : i]);
        const std::int64_t out = host_.out_features();
        return torch::block_diag(diag).narrow(0, 0, out).narrow(1, 0, out);
    }
    at::Tensor delta_weight() const override { return rotation().t().matmul(host_.weight) - host_.weight; }

    at::Tensor transform_output(const at::Tensor& y, const at::Tensor&) override {
        if (merged_ || dropped()) return y;
        at::Tensor wx = host_.bias.defined() ? y - host_.bias : y;
        at::Tensor out = torch::matmul(wx, rotation().to(wx.scalar_type()));
        return host_.bias.defined() ? out + host_.bias : out;
    }
    void merge(LinearImpl& host) override {
        torch::NoGradGuard ng;
        saved_ = host.weight.clone();  // kept: the cut rotation is not orthogonal, so no exact inverse
        host.weight.copy_(rotation().t().matmul(host.weight));
        merged_ = true;
    }
    void unmerge(LinearImpl& host) override {
        torch::NoGradGuard ng;
        host.weight.copy_(saved_);
        saved_ = at::Tensor();
        merged_ = false;
    }

private:
    mutable at::Tensor R_;
    std::int64_t blocks_;
    bool coft_;
    double eps_;
    at::Tensor saved_;
};

class OftMethod : public delta::HostedMethod {
public:
    OftMethod(const nlohmann::json& spec, const std::string& where) : HostedMethod(spec) { o_ = resolve_options("oft", spec, where); }
    std::string name() const override { return "oft"; }

    void attach(AttachContext& ctx) override {
        const auto r = o_["r"].get<std::int64_t>();
        const bool share = o_["block_share"].get<bool>();
        for (const auto& path : delta::select_targets(ctx, spec_, default_targets("oft", ctx.model.roles()), true)) {
            LinearImpl& lin = delta::linear_at(ctx.model, path, ctx.where);
            const std::int64_t out = lin.out_features();
            if (r > out) throw Error("r = " + std::to_string(r) + " blocks exceed the " + std::to_string(out) + " output features of '" + path + "'",
                                     ctx.where + ": r", "choose r at most the layer's output size");
            const std::int64_t b = (out + r - 1) / r;
            Host& h = new_host(path, lin);
            at::Tensor R = add_param(h, "oft_r", torch::zeros({share ? 1 : r, b, b}));
            const double eps = o_["eps"].get<double>() * static_cast<double>(b * b);
            set_branch(h, std::make_shared<OftBranch>(lin, R, r, o_["coft"].get<bool>(), eps, o_["module_dropout"].get<double>()));
        }
    }

private:
    nlohmann::json o_;
};

}  // namespace

std::unique_ptr<DeltaMethod> make_oft(const nlohmann::json& spec, const std::string& where) { return std::make_unique<OftMethod>(spec, where); }

}  // namespace dt
