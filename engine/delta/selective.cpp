// Selective Module Tuning (the Delta Tuning study): chosen modules fully trainable, either given
// by target_modules, or `k` Linear modules drawn at random across the blocks from `seed`.
#include "delta/methods.h"

#include "core/error.h"
#include "delta/util.h"
#include "models/model.h"
#include "tree/module_tree.h"

#include <algorithm>
#include <random>

namespace dt {
namespace {

class SelectiveMethod : public DeltaMethod {
public:
    SelectiveMethod(const nlohmann::json& spec, const std::string& where) : DeltaMethod(spec) {
        const nlohmann::json o = resolve_options("selective", spec, where);
        k_ = o.value("k", std::int64_t(0));  // 0: every selected module
        seed_ = o["seed"].get<std::uint64_t>();
        if (k_ == 0 && !spec.contains("target_modules"))
            throw Error("give target_modules or k (modules drawn at random)", where);
    }
    std::string name() const override { return "selective"; }
    void attach(AttachContext& ctx) override {
        std::vector<std::string> chosen;
        if (k_ > 0) {
            std::vector<std::string> pool;
            for (const auto& block : ctx.model.block_paths())
                for (const auto& n : ctx.tree.nodes())
                    if (n.is_linear() && n.path.rfind(block + ".", 0) == 0) pool.push_back(n.path);
            if (spec_.contains("target_modules")) {
                const auto allowed = delta::select_targets(ctx, spec_, {}, false);
                pool.erase(std::remove_if(pool.begin(), pool.end(),
                                          [&](const std::string& p) { return std::find(allowed.begin(), allowed.end(), p) == allowed.end(); }),
                           pool.end());
            }
            if (k_ > static_cast<std::int64_t>(pool.size()))
                throw Error("k is " + std::to_string(k_) + " but only " + std::to_string(pool.size()) + " modules can be chosen",
                            ctx.where + ": k");
            std::mt19937_64 rng(seed_);
            std::shuffle(pool.begin(), pool.end(), rng);
            pool.resize(static_cast<std::size_t>(k_));
            for (const auto& n : ctx.tree.nodes())  // keep tree order
                if (std::find(pool.begin(), pool.end(), n.path) != pool.end()) chosen.push_back(n.path);
        } else {
            chosen = delta::select_targets(ctx, spec_, {}, false);
        }
        for (const auto& p : chosen) {
            delta::unfreeze_module(ctx, p, "selective", unfrozen_);
            targets_.push_back(p);
        }
    }
    void detach(TransformerModel&) override {}

private:
    std::int64_t k_ = 0;
    std::uint64_t seed_ = 0;
};

}  // namespace

std::unique_ptr<DeltaMethod> make_selective(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<SelectiveMethod>(spec, where);
}

}  // namespace dt
