// LoRA (Hu et al. 2021): y = W x + b + s * B(A(dropout(x))), s = alpha / r (rsLoRA: alpha / sqrt(r)).
// A (r, d_in) Kaiming-uniform like PEFT (or gaussian N(0, 1/r)), B (d_out, r) zeros, so the model
// is unchanged at init. DoRA (Liu et al. 2024) adds a magnitude m (d_out): y = (m / ||W + sBA||_row)
// (W x + s B A x) + b, with the norm detached as PEFT does. Parameters: r (d_in + d_out) per target
// (+ d_out with DoRA). Merge folds the update into W (and m/||.|| for DoRA); unmerge restores it.
#include "delta/methods.h"

#include "core/error.h"
#include "delta/util.h"
#include "models/model.h"

#include <torch/torch.h>

#include <cmath>
#include <regex>

namespace dt {
namespace {

struct LoraOptions {
    std::int64_t r = 8;
    double alpha = 8;
    double dropout = 0.0;
    bool rslora = false;
    bool dora = false;
    std::string init = "kaiming";  // PEFT's default (init_lora_weights = true)
    std::string bias = "none";
    std::uint64_t seed = 0;
};

// PEFT: a pattern key applies when the module path matches "(.*\.)?key$".
template <typename T>
T pattern_value(const nlohmann::json& patterns, const std::string& path, T fallback, const std::string& where,
                const char* field) {
    if (patterns.is_null()) return fallback;
    for (auto it = patterns.begin(); it != patterns.end(); ++it) {
        std::regex re;
        try {
            re = std::regex("(.*\\.)?" + it.key());
        } catch (const std::regex_error&) {
            throw Error("invalid pattern '" + it.key() + "'", where + ": " + field);
        }
        if (std::regex_match(path, re)) {
            if (!it.value().is_number()) throw Error("values must be numbers", where + ": " + field);
            return it.value().get<T>();
        }
    }
    return fallback;
}

class LoraBranch : public LinearBranch {
public:
    LoraBranch(LinearImpl& host, Linear A, Linear B, double scale, double dropout, at::Tensor magnitude)
        : host_(host), A_(std::move(A)), B_(std::move(B)), scale_(scale), dropout_(dropout), m_(std::move(magnitude)) {}

    std::string kind() const override { return "lora"; }

    at::Tensor transform_output(const at::Tensor& y, const at::Tensor& x) override {
        if (merged_) return y;
        at::Tensor xd = dropout_ > 0 ? torch::dropout(x, dropout_, host_.is_training()) : x;
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
            const auto r = pattern_value<std::int64_t>(rp, path, o_.r, ctx.where, "rank_pattern");
            const double alpha = pattern_value<double>(ap, path, o_.alpha, ctx.where, "alpha_pattern");
            if (r <= 0) throw Error("rank for '" + path + "' must be positive", ctx.where + ": rank_pattern");
            const double scale = o_.rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
            Linear A(host.in_features(), r, false), B(r, host.out_features(), false);
            {
                torch::NoGradGuard ng;
                if (o_.init == "gaussian") A->weight.normal_(0.0, 1.0 / static_cast<double>(r), gen);
                else {
                    const double bound = 1.0 / std::sqrt(static_cast<double>(host.in_features()));  // kaiming_uniform(a=sqrt(5))
                    A->weight.uniform_(-bound, bound, gen);
                }
                B->weight.zero_();
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
            hosts_.push_back({path, &host, branch});
            targets_.push_back(path);
            if (o_.bias == "lora_only" && host.bias.defined()) delta::unfreeze_param(ctx, path + ".bias", "lora", unfrozen_);
        }
        if (o_.bias == "all")
            for (const auto& p : ctx.model.named_parameters(true)) {
                const auto& k = p.key();
                if (k.size() > 5 && k.compare(k.size() - 5, 5, ".bias") == 0 && ctx.claims.is_base(k) &&
                    ctx.claims.canonical(k) == k)
                    delta::unfreeze_param(ctx, k, "lora", unfrozen_);
            }
    }

    void detach(TransformerModel&) override {
        for (auto& h : hosts_) {
            h.host->remove_branch(h.branch.get());
            h.host->unregister_module("lora_A");
            h.host->unregister_module("lora_B");
            if (o_.dora) h.host->remove_parameter("lora_magnitude_vector");
        }
        hosts_.clear();
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
    };
    LoraOptions o_;
    std::vector<Host> hosts_;
};

}  // namespace

std::unique_ptr<DeltaMethod> make_lora(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<LoraMethod>(spec, where);
}

}  // namespace dt
