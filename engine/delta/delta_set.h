// DeltaSpec (JSON) and DeltaSet: freezing the base, attaching one or more methods, refusing
// overlapping claims, merging, and exact parameter/memory accounting.
//
// Spec: {"methods": [{"method": "lora", "target_modules": ["query", "value"], "r": 8}, {"method": "bitfit"}],
//        "modules_to_save": ["classifier"]}
// A single method object ({"method": "lora", ...}) is accepted as well.
#pragma once

#include "delta/method.h"

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace dt {

class TransformerModel;

struct DeltaSpec {
    std::vector<nlohmann::json> methods;       // each with "method"
    std::vector<std::string> modules_to_save;  // modules trained in full (e.g. a classification head)
    std::string source;                        // file or "<inline>"

    static DeltaSpec from_json(const nlohmann::json& j, const std::string& source);
    static DeltaSpec load(const std::string& path);
    nlohmann::json to_json() const;
};

// Canonical parameter name -> the method that made it trainable.
class ParamClaims {
public:
    explicit ParamClaims(const TransformerModel& model);
    // Unfreezes a base parameter for `owner`; throws dt::Error naming the parameter and both owners
    // when another method already claimed it.
    void claim(const std::string& param, const std::string& owner);
    std::string canonical(const std::string& param) const;
    bool is_base(const std::string& param) const { return base_.count(canonical(param)) != 0; }
    const std::map<std::string, std::string>& claims() const { return claims_; }

private:
    const TransformerModel& model_;
    std::map<std::string, std::string> tied_;
    std::set<std::string> base_;
    std::map<std::string, std::string> claims_;
};

struct MethodCount {
    std::string method;
    std::int64_t added = 0;     // new parameters
    std::int64_t unfrozen = 0;  // base parameters made trainable
};

struct Accounting {
    std::int64_t base_params = 0;       // the model without deltas
    std::int64_t delta_params = 0;      // parameters the methods added
    std::int64_t total_params = 0;      // base + delta
    std::int64_t trainable_params = 0;  // unique parameters with requires_grad
    std::int64_t weight_bytes = 0;      // all parameters
    std::int64_t gradient_bytes = 0;    // one gradient per trainable parameter
    std::int64_t adamw_bytes = 0;       // exp_avg + exp_avg_sq per trainable parameter
    std::vector<MethodCount> per_method;
    double trainable_percent() const { return total_params ? 100.0 * trainable_params / total_params : 0.0; }
    nlohmann::json to_json() const;
    std::string summary() const;  // "trainable params: 294,912 || all params: 109,777,152 || trainable%: 0.2686"
};

// Activation memory a training step keeps for the backward pass, estimated with Korthikanti et al.
// (2022, no recomputation): per layer s·b·h·(34 + 5·a·s/h) bytes at 16 bits, scaled to
// `bytes_per_value` (4 for fp32); a delta anywhere below the top layer needs them all. An estimate:
// it ignores the FFN width (assumes 4h) and the embeddings.
std::int64_t estimate_activation_bytes(const TransformerModel& model, std::int64_t batch, std::int64_t seq, int bytes_per_value = 4);

class DeltaSet {
public:
    DeltaSet() = default;
    ~DeltaSet();
    DeltaSet(DeltaSet&&) noexcept;
    DeltaSet& operator=(DeltaSet&&) noexcept;

    // Freezes every base parameter, then attaches each method in order. On error nothing stays
    // attached and the model is as before.
    static DeltaSet apply(TransformerModel& model, const DeltaSpec& spec);
    // Removes every method, gives modules_to_save their base values back and restores the base's
    // trainability (all trainable, as loaded).
    void remove(TransformerModel& model);

    const std::vector<std::unique_ptr<DeltaMethod>>& methods() const { return methods_; }
    const DeltaSpec& spec() const { return spec_; }
    // Merges every mergeable method into the base weights (returns how many merged).
    int merge();
    int unmerge();
    // Folds every method into the base weights and removes the delta modules, leaving a plain model
    // (what PEFT's merge_and_unload does). Refuses methods that cannot merge (adapters, prefixes,
    // prompts), naming them.
    void merge_and_unload(TransformerModel& model);
    Accounting accounting(const TransformerModel& model) const;

private:
    DeltaSpec spec_;
    std::vector<std::unique_ptr<DeltaMethod>> methods_;
    std::vector<std::string> saved_;  // modules_to_save parameters
    std::vector<at::Tensor> saved_values_;  // their base values, restored by remove()
};

// The parameters an optimiser should update: unique tensors with requires_grad.
std::vector<at::Tensor> trainable_parameters(const TransformerModel& model);
// The same with their names (each tensor under its first name, tied aliases left out), in the
// model's order: what the trainer optimises and a checkpoint stores.
std::vector<std::pair<std::string, at::Tensor>> named_trainable_parameters(const TransformerModel& model);

}  // namespace dt
