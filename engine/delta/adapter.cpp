// Bottleneck adapters: a(h) = up(act(down(h))), down (m, d), up (d, m), up initialised to zero so
// the model is unchanged at init. Placements: houlsby (in series after attention and after the FFN,
// Houlsby et al. 2019), pfeiffer (in series after the FFN only, Pfeiffer et al. 2021), parallel
// (beside the FFN on its input, scaled by s, He et al. 2022). Parameters: 2·m·d + d + m per site.
// Adapters live under the site's host module: `...layer.0.output.adapter.down.weight`.
#include "delta/methods.h"

#include "core/error.h"
#include "delta/util.h"
#include "models/model.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace dt {
namespace {

class BottleneckImpl : public torch::nn::Module {
public:
    BottleneckImpl(std::int64_t d, std::int64_t m, const std::string& act) : torch::nn::Module("BottleneckAdapter"), act_(activation(act, "activation")) {
        down = register_module("down", Linear(d, m));
        up = register_module("up", Linear(m, d));
    }
    at::Tensor forward(const at::Tensor& h) { return up->forward(act_(down->forward(h))); }
    Linear down{nullptr}, up{nullptr};

private:
    std::function<at::Tensor(const at::Tensor&)> act_;
};
TORCH_MODULE(Bottleneck);

class AdapterMethod : public DeltaMethod {
public:
    AdapterMethod(const nlohmann::json& spec, const std::string& where) : DeltaMethod(spec) {
        const nlohmann::json o = resolve_options("adapter", spec, where);
        size_ = o.value("size", std::int64_t(0));  // 0: hidden size / reduction_factor
        reduction_ = o["reduction_factor"].get<std::int64_t>();
        placement_ = o["placement"].get<std::string>();
        act_ = o["activation"].get<std::string>();
        activation(act_, where + ": activation");
        scaling_ = o["scaling"].get<double>();
        seed_ = o["seed"].get<std::uint64_t>();
        if (spec.contains("layers_to_transform")) {
            const auto& l = spec["layers_to_transform"];
            if (l.is_number_integer()) layers_.push_back(l.get<int>());
            else if (l.is_array())
                for (const auto& e : l) {
                    if (!e.is_number_integer()) throw Error("'layers_to_transform' entries must be integers", where);
                    layers_.push_back(e.get<int>());
                }
            else throw Error("'layers_to_transform' must be an integer or a list", where);
        }
    }

    std::string name() const override { return "adapter"; }

    void attach(AttachContext& ctx) override {
        if (ctx.model.sites().empty())
            throw Error(ctx.model.name() + " has no adapter sites", ctx.where, "use lora or ia3 on this model");
        const std::int64_t d = ctx.model.hidden_size();
        const std::int64_t m = size_ > 0 ? size_ : std::max<std::int64_t>(1, d / reduction_);
        auto gen = delta::make_generator(seed_);
        const bool parallel = placement_ == "parallel";
        for (const auto& ref : ctx.model.sites()) {
            if (placement_ != "houlsby" && ref.role != "after_ffn") continue;
            if (!layers_.empty() && std::find(layers_.begin(), layers_.end(), ref.layer) == layers_.end()) continue;
            auto host = delta::module_at(ctx.model, ref.path);
            if (!host) throw Error("site host '" + ref.path + "' not found", ctx.where);
            if (host->named_children().contains("adapter"))
                throw Error("module '" + ref.path + "' already has an adapter", ctx.where, "two adapter methods use the same site");
            Bottleneck a(d, m, act_);
            {
                torch::NoGradGuard ng;
                const double bound = 1.0 / std::sqrt(static_cast<double>(d));
                a->down->weight.uniform_(-bound, bound, gen);
                a->down->bias.zero_();
                a->up->weight.zero_();
                a->up->bias.zero_();
            }
            a->to(ctx.model.parameters().front().device(), ctx.model.parameters().front().scalar_type());
            host->register_module("adapter", a);
            const double s = scaling_;
            const int id = ref.site->add_hook(parallel ? Site::Hook([a, s](const at::Tensor& h, const at::Tensor& x) mutable {
                return h + s * a->forward(x);
            })
                                                       : Site::Hook([a, s](const at::Tensor& h, const at::Tensor&) mutable {
                                                             return h + s * a->forward(h);
                                                         }));
            hooks_.push_back({ref.site, id, host});
            for (const auto& p : a->named_parameters(true)) added_.push_back(ref.path + ".adapter." + p.key());
            targets_.push_back(ref.path);
        }
        if (hooks_.empty())
            throw Error("no site selected (placement " + placement_ + ")", ctx.where + ": layers_to_transform",
                        "check the layer indices");
    }

    void detach(TransformerModel&) override {
        for (auto& h : hooks_) {
            h.site->remove_hook(h.id);
            h.host->unregister_module("adapter");
        }
        hooks_.clear();
    }

private:
    struct Hooked {
        Site* site;
        int id;
        std::shared_ptr<torch::nn::Module> host;
    };
    std::int64_t size_ = 0, reduction_ = 16;
    std::string placement_, act_;
    double scaling_ = 1.0;
    std::uint64_t seed_ = 0;
    std::vector<int> layers_;
    std::vector<Hooked> hooks_;
};

}  // namespace

std::unique_ptr<DeltaMethod> make_adapter(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<AdapterMethod>(spec, where);
}

}  // namespace dt
