// Full fine-tuning: every base parameter trainable; the baseline every comparison needs.
#include "delta/methods.h"

#include "delta/util.h"
#include "models/model.h"

namespace dt {
namespace {

class FullMethod : public DeltaMethod {
public:
    FullMethod(const nlohmann::json& spec, const std::string& where) : DeltaMethod(spec) {
        resolve_options("full", spec, where);
    }
    std::string name() const override { return "full"; }
    void attach(AttachContext& ctx) override { delta::unfreeze_module(ctx, "", "full", unfrozen_); }
    void detach(TransformerModel&) override {}
};

}  // namespace

std::unique_ptr<DeltaMethod> make_full(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<FullMethod>(spec, where);
}

}  // namespace dt
