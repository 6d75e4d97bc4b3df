// AdaLoRA (Zhang et al. 2023), as PEFT 0.7.1. Each target holds an SVD-form triplet: lora_A (r, in),
// lora_E (r, 1) and lora_B (out, r), and adds B (A ⊙ E) x · lora_alpha / (init_r + 1e-5): PEFT divides
// by its `ranknum`, which is init_r even after pruning. Init: A, B ~ N(0, 0.02), E = 0 (unchanged model).
// While training (the hook below):
// - the loss gains orth_reg_weight · mean over A's and B's of ||A Aᵀ − I||_F and ||Bᵀ B − I||_F;
// - after each optimizer step, importance I = |p ⊙ ∇p| is smoothed, Ī = β1 Ī + (1−β1) I and
//   Ū = β2 Ū + (1−β2) |I − Ī|, and a triplet scores Ī_E·Ū_E + mean_j(Ī_A·Ū_A) + mean_i(Ī_B·Ū_B);
// - the budget (total kept triplets) falls from init_r·n to target_r·n with the cubic schedule:
//   steps <= tinit keep all; after total_step − tfinal the final pattern is fixed and re-applied;
//   between, budget = target + (init − target)·(1 − (t − tinit)/(T − tfinal − tinit))³, applied every
//   deltaT steps by zeroing the E entries whose score is at most the (init − budget)-th smallest.
// A spec with `rank_pattern` (an imported adapter) builds each module at its kept rank, possibly 0.
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

class AdaloraBranch : public delta::DeltaWeightBranch {
public:
    AdaloraBranch(LinearImpl& host, at::Tensor A, at::Tensor E, at::Tensor B, double scale, double dropout)
        : DeltaWeightBranch(host, "adalora"), A_(std::move(A)), E_(std::move(E)), B_(std::move(B)), scale_(scale), dropout_(dropout) {}
    at::Tensor delta_weight() const override { return torch::matmul(B_, A_ * E_) * scale_; }
    at::Tensor transform_output(const at::Tensor& y, const at::Tensor& x) override {
        if (merged_ || A_.size(0) == 0) return y;
        at::Tensor xd = dropout_ > 0 ? fast_dropout(x, dropout_, host_.is_training()) : x;
        return y + at::linear(at::linear(xd, A_ * E_), B_) * scale_;
    }

private:
    at::Tensor A_, E_, B_;
    double scale_, dropout_;
};

struct Triplet {
    std::string path;
    at::Tensor A, E, B;
    at::Tensor mask;              // (r) bool: kept triplets while training at init_r
    std::vector<bool> imported;   // an imported module: PEFT's init_r booleans (its tensors hold the kept ones)
};

class RankAllocator : public TrainingHook {
public:
    // The triplets are shared with the method, so a hook left on a model outlives it safely.
    RankAllocator(std::shared_ptr<std::vector<Triplet>> triplets, const nlohmann::json& o) : t_(std::move(triplets)), o_(o) {}

    at::Tensor regularizer() override {
        const double w = o_["orth_reg_weight"].get<double>();
        at::Tensor sum;
        int n = 0;
        for (const auto& t : *t_) {
            for (const at::Tensor& cov : {torch::matmul(t.A, t.A.t()), torch::matmul(t.B.t(), t.B)}) {
                const at::Tensor term = (cov - torch::eye(cov.size(0), cov.options())).norm();
                sum = sum.defined() ? sum + term : term;
                ++n;
            }
        }
        return n ? sum * (w / n) : at::Tensor();
    }

    void after_step(std::int64_t step, std::int64_t run_steps) override {
        const std::int64_t total = o_.contains("total_step") ? o_["total_step"].get<std::int64_t>() : run_steps;
        const std::int64_t tfinal = o_["tfinal"].get<std::int64_t>();
        torch::NoGradGuard ng;
        if (step < total - tfinal) {
            update_importance();
            const auto [budget, mask_now] = budget_at(step, total);
            if (mask_now) mask_to_budget(budget);
        } else if (step == total - tfinal) {
            mask_to_budget(budget_at(step, total).first);
            ipt_.clear();
        } else {
            for (auto& t : *t_) t.E.masked_fill_(~t.mask.view({-1, 1}), 0.0);
        }
    }

    // (budget, whether to mask at this step): PEFT's budget_schedule.
    std::pair<std::int64_t, bool> budget_at(std::int64_t step, std::int64_t total) const {
        const std::int64_t tinit = o_["tinit"].get<std::int64_t>(), tfinal = o_["tfinal"].get<std::int64_t>();
        std::int64_t init = 0;
        for (const auto& t : *t_) init += t.A.size(0);
        const std::int64_t target = o_["target_r"].get<std::int64_t>() * static_cast<std::int64_t>(t_->size());
        if (step <= tinit) return {init, false};
        if (step > total - tfinal) return {target, true};
        const double span = static_cast<double>(total - tfinal - tinit);
        const double mul = span > 0 ? 1.0 - static_cast<double>(step - tinit) / span : 0.0;
        const auto budget = static_cast<std::int64_t>(static_cast<double>(init - target) * mul * mul * mul + static_cast<double>(target));
        return {budget, step % o_["deltaT"].get<std::int64_t>() == 0};
    }

    std::vector<std::pair<std::string, at::Tensor>> state() const override {
        std::vector<std::pair<std::string, at::Tensor>> s;
        for (const auto& t : *t_) {
            s.emplace_back("adalora." + t.path + ".mask", t.mask);
            for (const char* part : {"A", "E", "B"}) {
                const std::string key = t.path + "." + part;
                auto it = ipt_.find(key);
                if (it == ipt_.end()) continue;
                s.emplace_back("adalora." + key + ".exp_avg_ipt", it->second.first);
                s.emplace_back("adalora." + key + ".exp_avg_unc", it->second.second);
            }
        }
        return s;
    }
    void load_state(const std::map<std::string, at::Tensor>& by_name) override {
        ipt_.clear();
        for (auto& t : *t_) {
            if (auto it = by_name.find("adalora." + t.path + ".mask"); it != by_name.end()) t.mask.copy_(it->second);
            for (const char* part : {"A", "E", "B"}) {
                const std::string key = t.path + "." + part;
                auto a = by_name.find("adalora." + key + ".exp_avg_ipt"), u = by_name.find("adalora." + key + ".exp_avg_unc");
                if (a != by_name.end() && u != by_name.end())
                    ipt_[key] = {a->second.to(t.A.device()).clone(), u->second.to(t.A.device()).clone()};
            }
        }
    }

private:
    void update_importance() {
        const double b1 = o_["beta1"].get<double>(), b2 = o_["beta2"].get<double>();
        for (const auto& t : *t_)
            for (const auto& [part, p] : {std::pair<const char*, at::Tensor>{"A", t.A}, {"E", t.E}, {"B", t.B}}) {
                if (!p.grad().defined()) continue;
                const std::string key = t.path + "." + part;
                auto it = ipt_.find(key);
                if (it == ipt_.end()) it = ipt_.emplace(key, std::make_pair(torch::zeros_like(p), torch::zeros_like(p))).first;
                const at::Tensor ipt = (p * p.grad()).abs();
                it->second.first.mul_(b1).add_(ipt, 1 - b1);
                it->second.second.mul_(b2).add_((ipt - it->second.first).abs(), 1 - b2);
            }
    }
    at::Tensor score(const Triplet& t, const char* part) const {
        auto it = ipt_.find(t.path + "." + part);
        const at::Tensor& p = std::string(part) == "A" ? t.A : std::string(part) == "E" ? t.E : t.B;
        return it == ipt_.end() ? torch::zeros_like(p) : it->second.first * it->second.second;
    }
    void mask_to_budget(std::int64_t budget) {
        std::vector<at::Tensor> scores, all;
        std::int64_t init = 0;
        for (const auto& t : *t_) {
            const at::Tensor s = score(t, "E").view(-1) + score(t, "A").mean(1) + score(t, "B").mean(0);
            scores.push_back(s);
            all.push_back(s);
            init += t.A.size(0);
        }
        const std::int64_t k = init - budget;
        if (k <= 0) return;  // nothing to prune (PEFT's kthvalue would refuse k = 0)
        const double threshold = std::get<0>(torch::kthvalue(torch::cat(all), k)).item<double>();
        for (std::size_t i = 0; i < t_->size(); ++i) {
            auto& t = (*t_)[i];
            t.mask.copy_(scores[i] > threshold);
            t.E.masked_fill_(~t.mask.view({-1, 1}), 0.0);
        }
    }

    std::shared_ptr<std::vector<Triplet>> t_;
    nlohmann::json o_;
    std::map<std::string, std::pair<at::Tensor, at::Tensor>> ipt_;  // "<path>.A" -> (Ī, Ū)
};

class AdaloraMethod : public delta::HostedMethod {
public:
    AdaloraMethod(const nlohmann::json& spec, const std::string& where) : HostedMethod(spec) {
        o_ = resolve_options("adalora", spec, where);
        if (o_["target_r"].get<std::int64_t>() > o_["init_r"].get<std::int64_t>())
            throw Error("target_r must not exceed init_r", where + ": target_r");
        if (spec.contains("rank_pattern") && !spec["rank_pattern"].is_null() && !spec["rank_pattern"].is_object())
            throw Error("field 'rank_pattern' must be an object of module -> list of booleans", where);
    }
    std::string name() const override { return "adalora"; }

    void attach(AttachContext& ctx) override {
        auto gen = delta::make_generator(o_["seed"].get<std::uint64_t>());
        const auto init_r = o_["init_r"].get<std::int64_t>();
        const double alpha = o_["lora_alpha"].get<double>();
        const double scale = (alpha > 0 ? alpha : static_cast<double>(init_r)) / (static_cast<double>(init_r) + 1e-5);
        const nlohmann::json pattern = spec_.value("rank_pattern", nlohmann::json::object());
        for (const auto& path : delta::select_targets(ctx, spec_, default_targets("adalora", ctx.model.roles()), true)) {
            LinearImpl& lin = delta::linear_at(ctx.model, path, ctx.where);
            at::Tensor mask = torch::ones({init_r}, torch::kBool);
            for (const std::string& key : {path + ".lora_E", ctx.model.base_model_prefix() + "." + path + ".lora_E"}) {
                if (!pattern.is_object() || !pattern.contains(key)) continue;
                const auto& bits = pattern[key];
                if (!bits.is_array() || static_cast<std::int64_t>(bits.size()) != init_r)
                    throw Error("rank_pattern['" + key + "'] must list init_r = " + std::to_string(init_r) + " booleans", ctx.where);
                for (std::int64_t i = 0; i < init_r; ++i) mask[i] = bits[static_cast<std::size_t>(i)].get<bool>();
            }
            // An imported pattern builds the kept rank; training starts at init_r and masks.
            const std::int64_t r = pattern.empty() ? init_r : mask.sum().item<std::int64_t>();
            Host& h = new_host(path, lin);
            at::Tensor A = torch::empty({r, lin.in_features()}), B = torch::empty({lin.out_features(), r});
            A.normal_(0.0, 0.02, gen);
            B.normal_(0.0, 0.02, gen);
            A = add_param(h, "lora_A", A);
            at::Tensor E = add_param(h, "lora_E", torch::zeros({r, 1}));
            B = add_param(h, "lora_B", B);
            set_branch(h, std::make_shared<AdaloraBranch>(lin, A, E, B, scale, o_["lora_dropout"].get<double>()));
            std::vector<bool> bits;
            for (std::int64_t i = 0; !pattern.empty() && i < init_r; ++i) bits.push_back(mask[i].item<bool>());
            // The mask lives beside E, which it zeroes.
            triplets_->push_back({path, A, E, B, (pattern.empty() ? mask : torch::ones({r}, torch::kBool)).to(E.device()), bits});
        }
        hook_ = std::make_shared<RankAllocator>(triplets_, o_);
        ctx.model.training_hooks().push_back(hook_);
    }
    // {"ranks": {path: kept}, "rank_pattern": {"<path>.lora_E": [init_r booleans]}, "budget": kept total}
    nlohmann::json status() const override {
        nlohmann::json ranks = nlohmann::json::object(), pattern = nlohmann::json::object();
        std::int64_t total = 0;
        for (const auto& t : *triplets_) {
            std::vector<bool> bits = t.imported;
            if (bits.empty()) {  // one copy to the host, not one sync per triplet
                const at::Tensor m = t.mask.to(torch::kCPU).contiguous();
                bits.assign(m.data_ptr<bool>(), m.data_ptr<bool>() + m.numel());
            }
            const auto kept = static_cast<std::int64_t>(std::count(bits.begin(), bits.end(), true));
            ranks[t.path] = kept;
            pattern[t.path + ".lora_E"] = bits;
            total += kept;
        }
        return {{"ranks", ranks}, {"rank_pattern", pattern}, {"budget", total}, {"init_r", o_["init_r"]}, {"target_r", o_["target_r"]}};
    }
    // The kept rows of a trained module's tensors (all of an imported one's), for PEFT's files.
    std::vector<std::pair<std::string, at::Tensor>> saved_tensors(TransformerModel&) const override {
        std::vector<std::pair<std::string, at::Tensor>> v;
        for (const auto& t : *triplets_) {
            const at::Tensor idx = t.imported.empty() ? t.mask.nonzero().view(-1).to(t.A.device()) : torch::arange(t.A.size(0), t.A.options().dtype(torch::kLong));
            v.emplace_back(t.path + ".lora_A", t.A.detach().index_select(0, idx));
            v.emplace_back(t.path + ".lora_B", t.B.detach().index_select(1, idx));
            v.emplace_back(t.path + ".lora_E", t.E.detach().index_select(0, idx));
        }
        return v;
    }
    void detach(TransformerModel& model) override {
        model.remove_training_hook(hook_.get());
        hook_.reset();
        triplets_->clear();
        HostedMethod::detach(model);
    }

private:
    nlohmann::json o_;
    std::shared_ptr<std::vector<Triplet>> triplets_ = std::make_shared<std::vector<Triplet>>();
    std::shared_ptr<RankAllocator> hook_;
};

}  // namespace

std::unique_ptr<DeltaMethod> make_adalora(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<AdaloraMethod>(spec, where);
}

}  // namespace dt
