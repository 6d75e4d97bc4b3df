// LayerNorm tuning: train only the normalisation layers' gains and biases (any module whose type
// is a norm: LayerNorm, RMSNorm, ...). Adds nothing.
#include "delta/methods.h"

#include "core/error.h"
#include "delta/util.h"
#include "models/model.h"
#include "tree/module_tree.h"

namespace dt {
namespace {

class LayerNormMethod : public DeltaMethod {
public:
    LayerNormMethod(const nlohmann::json& spec, const std::string& where) : DeltaMethod(spec) {
        resolve_options("layernorm", spec, where);
    }
    std::string name() const override { return "layernorm"; }
    void attach(AttachContext& ctx) override {
        for (const auto& n : ctx.tree.nodes()) {
            const bool norm = n.type.find("Norm") != std::string::npos;
            if (!norm || n.params.empty()) continue;
            delta::unfreeze_module(ctx, n.path, "layernorm", unfrozen_);
            targets_.push_back(n.path);
        }
        if (targets_.empty()) throw Error("the model has no normalisation layers", ctx.where);
    }
    void detach(TransformerModel&) override {}
};

}  // namespace

std::unique_ptr<DeltaMethod> make_layernorm(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<LayerNormMethod>(spec, where);
}

}  // namespace dt
