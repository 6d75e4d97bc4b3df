// BitFit (Ben Zaken et al. 2022): train only bias terms. `groups` narrows it to some of: query,
// key, value, attention_output, intermediate, output, layernorm, other (heads, pooler). Trains
// exactly the chosen biases; adds nothing.
#include "delta/methods.h"

#include "core/error.h"
#include "delta/util.h"
#include "models/model.h"

#include <regex>

namespace dt {
namespace {

// The group of a bias by its module path (BERT-family names; other families map by the same roles).
std::string bias_group(const std::string& module) {
    static const std::vector<std::pair<std::string, std::regex>> rules = {
        {"query", std::regex(R"(.*\.(query|q_proj|q))")},
        {"key", std::regex(R"(.*\.(key|k_proj|k))")},
        {"value", std::regex(R"(.*\.(value|v_proj|v))")},
        {"attention_output", std::regex(R"(.*\.attention\.output\.dense|.*\.(o_proj|out_proj))")},
        {"intermediate", std::regex(R"(.*\.intermediate\.dense|.*\.(up_proj|gate_proj|fc1|c_fc))")},
        {"output", std::regex(R"(.*\.layer\.\d+\.output\.dense|.*\.(down_proj|fc2))")},
        {"layernorm", std::regex(R"(.*(LayerNorm|layer_norm|ln_\w+|norm))")},
    };
    for (const auto& [g, re] : rules)
        if (std::regex_match(module, re)) return g;
    return "other";
}

const std::vector<std::string> kGroups = {"query", "key", "value", "attention_output", "intermediate", "output", "layernorm", "other"};

class BitFitMethod : public DeltaMethod {
public:
    BitFitMethod(const nlohmann::json& spec, const std::string& where) : DeltaMethod(spec) {
        delta::check_fields(spec, method_fields("bitfit"), where);
        if (spec.contains("groups")) {
            if (!spec["groups"].is_array() || spec["groups"].empty())
                throw Error("field 'groups' must be a non-empty list", where);
            for (const auto& g : spec["groups"]) {
                if (!g.is_string() || std::find(kGroups.begin(), kGroups.end(), g.get<std::string>()) == kGroups.end())
                    throw Error("unknown bias group " + g.dump(), where + ": groups",
                                "groups: query, key, value, attention_output, intermediate, output, layernorm, other");
                groups_.push_back(g.get<std::string>());
            }
        }
    }
    std::string name() const override { return "bitfit"; }

    void attach(AttachContext& ctx) override {
        for (const auto& p : ctx.model.named_parameters(true)) {
            const auto& k = p.key();
            if (k.size() < 5 || k.compare(k.size() - 5, 5, ".bias") != 0 || !ctx.claims.is_base(k) || ctx.claims.canonical(k) != k)
                continue;
            const std::string module = k.substr(0, k.size() - 5);
            if (!groups_.empty() && std::find(groups_.begin(), groups_.end(), bias_group(module)) == groups_.end()) continue;
            delta::unfreeze_param(ctx, k, "bitfit", unfrozen_);
            targets_.push_back(module);
        }
        if (unfrozen_.empty()) throw Error("no bias matched", ctx.where + ": groups", "this model may have no biases");
    }
    void detach(TransformerModel&) override {}

private:
    std::vector<std::string> groups_;
};

}  // namespace

std::unique_ptr<DeltaMethod> make_bitfit(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<BitFitMethod>(spec, where);
}

}  // namespace dt
