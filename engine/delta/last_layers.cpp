// Last Layer Tuning (the Delta Tuning study's specification baseline): the last N blocks are fully
// trainable. Trains every parameter of those blocks; adds nothing.
#include "delta/methods.h"

#include "core/error.h"
#include "delta/util.h"
#include "models/model.h"

namespace dt {
namespace {

class LastLayersMethod : public DeltaMethod {
public:
    LastLayersMethod(const nlohmann::json& spec, const std::string& where) : DeltaMethod(spec) {
        n_ = resolve_options("last_layers", spec, where)["num_layers"].get<std::int64_t>();
    }
    std::string name() const override { return "last_layers"; }
    void attach(AttachContext& ctx) override {
        const auto& blocks = ctx.model.block_paths();
        if (n_ > static_cast<std::int64_t>(blocks.size()))
            throw Error("num_layers is " + std::to_string(n_) + " but the model has " + std::to_string(blocks.size()) + " blocks",
                        ctx.where + ": num_layers");
        for (std::size_t i = blocks.size() - static_cast<std::size_t>(n_); i < blocks.size(); ++i) {
            delta::unfreeze_module(ctx, blocks[i], "last_layers", unfrozen_);
            targets_.push_back(blocks[i]);
        }
    }
    void detach(TransformerModel&) override {}

private:
    std::int64_t n_ = 1;
};

}  // namespace

std::unique_ptr<DeltaMethod> make_last_layers(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<LastLayersMethod>(spec, where);
}

}  // namespace dt
