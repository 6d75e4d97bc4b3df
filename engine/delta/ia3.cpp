// IA3 (Liu et al. 2022, T-Few): learned rescaling vectors initialised to ones. A target scales its
// output (ia3_l is (d_out, 1)); a feed-forward target scales its input (ia3_l is (1, d_in)), as
// PEFT does. Parameters: d_out per target, d_in per feed-forward target. Merges into W's rows
// (and bias) or columns.
#include "delta/methods.h"

#include "core/error.h"
#include "delta/util.h"
#include "models/model.h"

#include <torch/torch.h>

namespace dt {
namespace {

class Ia3Branch : public LinearBranch {
public:
    Ia3Branch(at::Tensor l, bool feedforward) : l_(std::move(l)), ff_(feedforward) {}
    std::string kind() const override { return "ia3"; }
    at::Tensor transform_input(const at::Tensor& x) override { return (ff_ && !merged_) ? x * l_.view({-1}) : x; }
    at::Tensor transform_output(const at::Tensor& y, const at::Tensor&) override {
        return (!ff_ && !merged_) ? y * l_.view({-1}) : y;
    }
    bool can_merge() const override { return true; }
    void merge(LinearImpl& host) override {
        torch::NoGradGuard ng;
        if (ff_) {
            host.weight.mul_(l_.view({1, -1}));
        } else {
            host.weight.mul_(l_.view({-1, 1}));
            if (host.bias.defined()) host.bias.mul_(l_.view({-1}));
        }
        merged_ = true;
    }
    void unmerge(LinearImpl& host) override {
        torch::NoGradGuard ng;
        if (ff_) {
            host.weight.div_(l_.view({1, -1}) + 1e-8);
        } else {
            host.weight.div_(l_.view({-1, 1}) + 1e-8);
            if (host.bias.defined()) host.bias.div_(l_.view({-1}) + 1e-8);
        }
        merged_ = false;
    }
    bool merged() const { return merged_; }

private:
    at::Tensor l_;
    bool ff_;
    bool merged_ = false;
};

class Ia3Method : public DeltaMethod {
public:
    Ia3Method(const nlohmann::json& spec, const std::string& where) : DeltaMethod(spec) {
        resolve_options("ia3", spec, where);
        if (spec.contains("feedforward_modules")) {
            const auto& f = spec["feedforward_modules"];
            if (f.is_string()) ff_.target_regex = f.get<std::string>();
            else if (f.is_array())
                for (const auto& e : f) {
                    if (!e.is_string()) throw Error("'feedforward_modules' entries must be strings", where);
                    ff_.targets.push_back(e.get<std::string>());
                }
            else throw Error("'feedforward_modules' must be a regex string or a list of names", where);
        } else if (!spec.contains("target_modules")) {
            use_default_ff_ = true;  // with the default targets, as PEFT does
        }
    }
    std::string name() const override { return "ia3"; }

    void attach(AttachContext& ctx) override {
        const RoleTable& roles = ctx.model.roles();
        if (use_default_ff_) ff_.targets = default_targets("ia3", roles, true);
        for (const auto& path : delta::select_targets(ctx, spec_, default_targets("ia3", roles), true)) {
            LinearImpl& host = delta::linear_at(ctx.model, path, ctx.where);
            if (host.named_parameters(false).contains("ia3_l"))
                throw Error("module '" + path + "' already has IA3 vectors", ctx.where);
            const bool ff = matches_target(path, ff_);
            at::Tensor l = ff ? torch::ones({1, host.in_features()}) : torch::ones({host.out_features(), 1});
            l = host.register_parameter("ia3_l", l.to(host.weight.options()));
            auto b = std::make_shared<Ia3Branch>(l, ff);
            host.add_branch(b);
            hosts_.push_back({&host, b});
            added_.push_back(path + ".ia3_l");
            targets_.push_back(path);
        }
    }
    void detach(TransformerModel&) override {
        for (auto& h : hosts_) {
            h.host->remove_branch(h.branch.get());
            h.host->remove_parameter("ia3_l");
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
        LinearImpl* host;
        std::shared_ptr<Ia3Branch> branch;
    };
    SelectionSpec ff_;
    bool use_default_ff_ = false;
    std::vector<Host> hosts_;
};

}  // namespace

std::unique_ptr<DeltaMethod> make_ia3(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<Ia3Method>(spec, where);
}

}  // namespace dt
