// LoHa and LoKr (the LyCORIS family, as PEFT implements them).
//   LoHa (Hyeon-Woo et al. 2022, FedPara): ΔW = (w1_a w1_b) ⊙ (w2_a w2_b) · alpha / r, with w1_a, w2_a
//   (out, r) and w1_b, w2_b (r, in). Init as PEFT: w1_a, w1_b, w2_a Kaiming-uniform, w2_b zero, so the
//   model is unchanged. Parameters: 2·r·(in + out) per target.
//   LoKr (Yeh et al. 2023): ΔW = kron(w1, w2) with out = a·c and in = b·d split by lycoris'
//   factorization(dim, decompose_factor); w1 (a, b), w2 (c, d), each full or a rank-r product
//   (w2 when r < max(c, d)/2; w1 only with decompose_both and r < max(a, b)/2). Init: w1 (or w1_a)
//   zero, the rest Kaiming-uniform. peft 0.7.1 applies no alpha / r to LoKr; neither do we.
// Both: rank_dropout (training: each output row of ΔW kept with probability 1 - p, then divided by
// the kept fraction), module_dropout (training: the whole branch skipped with probability p),
// rank_pattern / alpha_pattern per module.
#include "delta/methods.h"

#include "core/error.h"
#include "delta/hosted.h"
#include "delta/util.h"
#include "models/model.h"

#include <torch/torch.h>

namespace dt {

// lycoris' factorization: the divisor pair (m <= n, m·n = dim) found by walking m upwards from 1
// while m + n does not grow and m <= factor; a positive factor that divides dim is taken directly.
std::pair<std::int64_t, std::int64_t> lycoris_factorization(std::int64_t dim, std::int64_t factor) {
    if (factor > 0 && dim % factor == 0) {
        std::int64_t m = factor, n = dim / factor;
        if (m > n) std::swap(m, n);
        return {m, n};
    }
    if (factor < 0) factor = dim;
    std::int64_t m = 1, n = dim;
    const std::int64_t length = m + n;
    while (m < n) {
        std::int64_t nm = m + 1;
        while (dim % nm != 0) ++nm;
        const std::int64_t nn = dim / nm;
        if (nm + nn > length || nm > factor) break;
        m = nm;
        n = nn;
    }
    if (m > n) std::swap(m, n);
    return {m, n};
}

namespace {

// Training-time rank dropout on a delta weight's rows (lycoris: no 1/(1-p) rescaling but the mean).
at::Tensor rank_dropout(const at::Tensor& w, double p, bool training) {
    if (!training || p <= 0) return w;
    at::Tensor keep = (torch::rand({w.size(0)}, w.options()) > p).to(w.scalar_type());
    const at::Tensor mean = keep.mean();
    keep = keep / mean.clamp_min(1e-12);
    return w * keep.view({-1, 1});
}

class LohaBranch : public delta::DeltaWeightBranch {
public:
    LohaBranch(LinearImpl& host, at::Tensor w1a, at::Tensor w1b, at::Tensor w2a, at::Tensor w2b, double scale, double rank_dropout,
               double module_dropout)
        : DeltaWeightBranch(host, "loha", module_dropout), w1a_(std::move(w1a)), w1b_(std::move(w1b)), w2a_(std::move(w2a)),
          w2b_(std::move(w2b)), scale_(scale), rank_dropout_(rank_dropout) {}
    at::Tensor delta_weight() const override {
        const at::Tensor w = torch::matmul(w1a_, w1b_) * torch::matmul(w2a_, w2b_) * scale_;
        return rank_dropout(w, rank_dropout_, host_.is_training() && !merged_);
    }

private:
    at::Tensor w1a_, w1b_, w2a_, w2b_;
    double scale_, rank_dropout_;
};

class LokrBranch : public delta::DeltaWeightBranch {
public:
    LokrBranch(LinearImpl& host, std::vector<at::Tensor> w1, std::vector<at::Tensor> w2, double rank_dropout, double module_dropout)
        : DeltaWeightBranch(host, "lokr", module_dropout), w1_(std::move(w1)), w2_(std::move(w2)), rank_dropout_(rank_dropout) {}
    at::Tensor delta_weight() const override {
        const at::Tensor a = w1_.size() == 1 ? w1_[0] : torch::matmul(w1_[0], w1_[1]);
        const at::Tensor b = w2_.size() == 1 ? w2_[0] : torch::matmul(w2_[0], w2_[1]);
        return rank_dropout(torch::kron(a, b), rank_dropout_, host_.is_training() && !merged_);
    }

private:
    std::vector<at::Tensor> w1_, w2_;  // one full factor, or (a, b) of a low-rank product
    double rank_dropout_;
};

class LycorisMethod : public delta::HostedMethod {
public:
    LycorisMethod(std::string kind, const nlohmann::json& spec, const std::string& where) : HostedMethod(spec), kind_(std::move(kind)) {
        o_ = resolve_options(kind_, spec, where);
        for (const char* f : {"rank_pattern", "alpha_pattern"})
            if (spec.contains(f) && !spec[f].is_object() && !spec[f].is_null())
                throw Error(std::string("field '") + f + "' must be an object of pattern -> number", where);
    }
    std::string name() const override { return kind_; }

    void attach(AttachContext& ctx) override {
        auto gen = delta::make_generator(o_["seed"].get<std::uint64_t>());
        const nlohmann::json rp = spec_.value("rank_pattern", nlohmann::json()), ap = spec_.value("alpha_pattern", nlohmann::json());
        const double rd = o_["rank_dropout"].get<double>(), md = o_["module_dropout"].get<double>();
        for (const auto& path : delta::select_targets(ctx, spec_, default_targets(kind_, ctx.model.roles()), true)) {
            LinearImpl& lin = delta::linear_at(ctx.model, path, ctx.where);
            const auto r = static_cast<std::int64_t>(delta::pattern_number(rp, path, o_["r"].get<double>(), ctx.where, "rank_pattern"));
            const double alpha = delta::pattern_number(ap, path, o_["alpha"].get<double>(), ctx.where, "alpha_pattern");
            if (r <= 0) throw Error("rank for '" + path + "' must be positive", ctx.where + ": rank_pattern");
            Host& h = new_host(path, lin);
            const std::int64_t out = lin.out_features(), in = lin.in_features();
            auto kaiming = [&](std::vector<std::int64_t> shape) {
                at::Tensor t = torch::empty(shape);
                delta::kaiming_uniform_(t, gen);
                return t;
            };
            if (kind_ == "loha") {
                at::Tensor w1a = add_param(h, "hada_w1_a", kaiming({out, r})), w1b = add_param(h, "hada_w1_b", kaiming({r, in}));
                at::Tensor w2a = add_param(h, "hada_w2_a", kaiming({out, r})), w2b = add_param(h, "hada_w2_b", torch::zeros({r, in}));
                set_branch(h, std::make_shared<LohaBranch>(lin, w1a, w1b, w2a, w2b, alpha / static_cast<double>(r), rd, md));
                continue;
            }
            const auto factor = o_["decompose_factor"].get<std::int64_t>();
            const auto [a, c] = lycoris_factorization(out, factor);
            const auto [b, d] = lycoris_factorization(in, factor);
            std::vector<at::Tensor> w1, w2;
            if (o_["decompose_both"].get<bool>() && 2 * r < std::max(a, b)) {
                w1.push_back(add_param(h, "lokr_w1_a", torch::zeros({a, r})));
                w1.push_back(add_param(h, "lokr_w1_b", kaiming({r, b})));
            } else {
                w1.push_back(add_param(h, "lokr_w1", torch::zeros({a, b})));
            }
            if (2 * r < std::max(c, d)) {
                w2.push_back(add_param(h, "lokr_w2_a", kaiming({c, r})));
                w2.push_back(add_param(h, "lokr_w2_b", kaiming({r, d})));
            } else {
                w2.push_back(add_param(h, "lokr_w2", kaiming({c, d})));
            }
            set_branch(h, std::make_shared<LokrBranch>(lin, w1, w2, rd, md));
        }
    }

private:
    std::string kind_;
    nlohmann::json o_;
};

}  // namespace

std::unique_ptr<DeltaMethod> make_loha(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<LycorisMethod>("loha", spec, where);
}
std::unique_ptr<DeltaMethod> make_lokr(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<LycorisMethod>("lokr", spec, where);
}

}  // namespace dt
