// The DeltaMethod interface and the method table. A method attaches only at the engine's injection
// points (Linear branches, Sites, attention prefixes, embedding prompts) or by unfreezing base
// parameters, so it never touches architecture code. Parameters it adds live under their host's
// HF path (`...query.lora_A.weight`); parameters it unfreezes are claimed, and two methods claiming
// the same parameter is an error naming it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace at {
class Tensor;
}
namespace torch::nn {
class Module;
}

namespace dt {

class ModuleTree;
class TransformerModel;
class ParamClaims;

// What a method needs while attaching: the model, its tree, and the claim registry.
struct AttachContext {
    TransformerModel& model;
    const ModuleTree& tree;
    ParamClaims& claims;
    std::string where;  // "delta spec: methods[0] (lora)", for errors
};

class DeltaMethod {
public:
    explicit DeltaMethod(nlohmann::json spec) : spec_(std::move(spec)) {}
    virtual ~DeltaMethod() = default;

    virtual std::string name() const = 0;
    virtual void attach(AttachContext& ctx) = 0;
    // Removes everything attach() added (branches, hooks, modules, providers); unfrozen base
    // parameters are frozen again by the caller.
    virtual void detach(TransformerModel& model) = 0;
    virtual bool can_merge() const { return false; }
    virtual void merge() {}
    virtual void unmerge() {}
    virtual bool merged() const { return false; }
    // Replaces a training-time reparameterisation by its output (prefix tuning's projection MLP),
    // leaving the outputs unchanged; the plain form is what exports store.
    virtual bool can_fold() const { return false; }
    virtual void fold(TransformerModel&) {}

    // What the method learned beyond its tensors, for export and the workbench (AdaLoRA: the kept
    // ranks per module and PEFT's rank_pattern); null when nothing.
    virtual nlohmann::json status() const { return nullptr; }
    // Virtual tokens the method puts in front of every sequence (prompt tuning, P-tuning): the
    // activation estimate counts them.
    virtual std::int64_t extra_tokens() const { return 0; }
    // Whether the method's parameters serve every layer alike without a layer in their names
    // (prefix tuning's key/value table): the budget chart spreads them over the layers.
    virtual bool spans_layers() const { return false; }
    // The tensors a saved delta holds, by full name: by default every added parameter; AdaLoRA
    // keeps only its surviving triplets (PEFT's layout).
    virtual std::vector<std::pair<std::string, at::Tensor>> saved_tensors(TransformerModel& model) const;

    const nlohmann::json& spec() const { return spec_; }
    // Full names of parameters this method added (new tensors).
    const std::vector<std::string>& added() const { return added_; }
    // Full names of base parameters this method made trainable.
    const std::vector<std::string>& unfrozen() const { return unfrozen_; }
    // Module paths the method attached to (for inspection and export).
    const std::vector<std::string>& targets() const { return targets_; }

protected:
    nlohmann::json spec_;
    std::vector<std::string> added_;
    std::vector<std::string> unfrozen_;
    std::vector<std::string> targets_;
};

using MethodFactory = std::function<std::unique_ptr<DeltaMethod>(const nlohmann::json& spec, const std::string& where)>;

// One option of a method, declared once: JSON parsing (type, range, choices, default), the method
// panel's form and tooltip, PEFT export and `deltatune methods --json` all read this declaration.
// Defaults are PEFT's where PEFT has the option.
struct OptionDecl {
    std::string name;              // spec field
    std::string kind;              // int | number | bool | choice | choices (a list) | json (checked by the method)
    nlohmann::json default_value;  // null: no default (optional, or derived: see help)
    double min = 0, max = 0;       // inclusive range of int/number options (ignored when min > max)
    std::vector<std::string> choices;
    std::string help;              // one line, shown as tooltip and by `deltatune methods`
    std::string peft;              // PEFT config field, empty when PEFT has none
    bool in_form = false;          // shown in the method panel's form
    nlohmann::json to_json() const;
};

struct MethodInfo {
    std::string name;
    std::string family;   // "addition", "specification", "reparameterization", "baseline"
    std::string summary;  // one line, for tooltips and --help
    std::string formula;  // added or trained parameters, e.g. "r (d_in + d_out) per target"
    std::vector<OptionDecl> options;
    MethodFactory make;

    const OptionDecl& option(const std::string& field) const;  // throws dt::Error for an undeclared one
    bool has_option(const std::string& field) const;
    std::vector<std::string> fields() const;                  // option names, in declaration order
    nlohmann::json to_json() const;                           // for `deltatune methods --json`
};

const std::vector<MethodInfo>& method_table();
const MethodInfo& find_method(const std::string& name, const std::string& where);

// Checks `spec` against the method's declarations (unknown fields, types, ranges, choices) and
// returns every declared option with its value: the spec's, else the declared default (options
// without a default and absent from the spec are left out). Errors name the field.
nlohmann::json resolve_options(const std::string& method, const nlohmann::json& spec, const std::string& where);

}  // namespace dt
