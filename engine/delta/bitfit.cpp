// BitFit (Ben Zaken et al. 2022): train only bias terms. `groups` narrows it to some of: query,
// key, value, attention_output, intermediate, output, layernorm, other (heads, pooler). Trains
// exactly the chosen biases; adds nothing.
#include "delta/methods.h"

#include "core/error.h"
#include "delta/util.h"
#include "models/model.h"

namespace dt {
namespace {

// The group of a bias by its module's role in the architecture's role table. A fused attn_qkv
// (GPT-2) is one bias for three groups, so it stays in "other".
std::string bias_group(const RoleTable& roles, const std::string& module) {
    static const std::vector<std::pair<Role, const char*>> groups = {
        {Role::AttnQ, "query"},         {Role::AttnK, "key"},          {Role::AttnV, "value"},
        {Role::AttnOut, "attention_output"}, {Role::FfnUp, "intermediate"}, {Role::FfnGate, "intermediate"},
        {Role::FfnDown, "output"},      {Role::Norm, "layernorm"},
    };
    const auto role = roles.role_of(module);
    for (const auto& [r, g] : groups)
        if (role == r) return g;
    return "other";
}

class BitFitMethod : public DeltaMethod {
public:
    BitFitMethod(const nlohmann::json& spec, const std::string& where) : DeltaMethod(spec) {
        const nlohmann::json o = resolve_options("bitfit", spec, where);  // checks the groups against kBiasGroups
        if (o.contains("groups")) groups_ = o["groups"].get<std::vector<std::string>>();
    }
    std::string name() const override { return "bitfit"; }

    void attach(AttachContext& ctx) override {
        for (const auto& p : ctx.model.named_parameters(true)) {
            const auto& k = p.key();
            if (k.size() < 5 || k.compare(k.size() - 5, 5, ".bias") != 0 || !ctx.claims.is_base(k) || ctx.claims.canonical(k) != k)
                continue;
            const std::string module = k.substr(0, k.size() - 5);
            if (!groups_.empty() && std::find(groups_.begin(), groups_.end(), bias_group(ctx.model.roles(), module)) == groups_.end()) continue;
            delta::unfreeze_param(ctx, k, "bitfit", unfrozen_);
            targets_.push_back(module);
        }
        if (unfrozen_.empty()) {
            bool any_bias = false;
            for (const auto& p : ctx.model.named_parameters(true)) {
                const auto& k = p.key();
                any_bias = any_bias || (k.size() > 5 && k.compare(k.size() - 5, 5, ".bias") == 0);
            }
            // Never train nothing: T5 and bias-free Llamas have no bias terms at all.
            if (!any_bias)
                throw Error(ctx.model.name() + " has no bias terms, so BitFit would train nothing", ctx.where,
                            "use method 'layernorm' to tune its norm gains, or lora / ia3");
            throw Error("no bias matched", ctx.where + ": groups", "choose other groups");
        }
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
