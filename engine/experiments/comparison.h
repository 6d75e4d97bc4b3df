// Method comparison (the Delta Tuning study's "which method gives most per trainable parameter"):
// train several delta methods on one task, one after another, optionally at a matched budget of
// trainable parameters, and record for each the final metric, its trainable parameters, and its
// convergence curve (metric against steps and against wall time). Schema: docs/experiments.md.
#pragma once

#include "experiments/experiments.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace dt {

class TransformerModel;

// {"model": FOLDER, "task": task.json | {...}, "methods": ["lora", {"method": "adapter", ...},
//  {"name": "lora-r2", "delta": {...}}], "budget": N?, "training": {...}, "output_dir": DIR}
struct CompareSpec {
    struct Method {
        std::string name;
        nlohmann::json delta;  // a delta spec object
    };
    std::string model, output_dir, source, base_dir;  // model and task paths are relative to base_dir
    nlohmann::json task, training;
    std::vector<Method> methods;
    std::int64_t budget = 0;  // > 0: each method's size field chosen to come closest to it
    static CompareSpec from_json(const nlohmann::json& j, const std::string& source, const std::string& base_dir);
    static CompareSpec load(const std::string& path);
};

struct CurvePoint {
    std::int64_t step = 0;
    double elapsed_s = 0, value = 0;
};

struct MethodResult {
    std::string name, metric;
    nlohmann::json delta;              // as trained (after budget matching)
    std::int64_t trainable_params = 0, total_params = 0, base_params = 0;
    double value = NAN, best = NAN;    // metric at the end, best seen
    double seconds = 0;                // training wall time
    std::vector<CurvePoint> curve;     // one point per evaluation
    bool pareto = false;
    nlohmann::json to_json() const;
    static MethodResult from_json(const nlohmann::json& j);
};

struct ComparisonResult {
    std::string task, metric;
    std::int64_t budget = 0;
    std::vector<MethodResult> methods;
    nlohmann::json to_json() const;
    std::string to_csv() const;  // method,trainable_params,value,best,seconds,pareto
};

class ComparisonObserver {
public:
    virtual ~ComparisonObserver() = default;
    virtual void on_status(const std::string&) {}
    virtual void on_point(const std::string& method, const CurvePoint&) {}
    virtual void on_method(const MethodResult&) {}  // a method finished (or was already done)
};

// The size field of a method ("r", "size", "num_virtual_tokens", "num_layers") set so that the
// trainable parameter count on `model` comes closest to `target`; methods without one (bitfit, ia3,
// layernorm, full, selective with explicit targets) are returned unchanged. `count` gets the result.
nlohmann::json match_budget(TransformerModel& model, const nlohmann::json& method_spec, std::int64_t target, std::int64_t* count);

// Trains each method into output_dir/runs/<name> (final checkpoint and spec.json, so `deltatune
// export` works on it) and rewrites comparison.json / comparison.csv after each. Methods already in
// output_dir/results.jsonl are kept; a method stopped midway is trained again from its start.
ComparisonResult run_method_comparison(const CompareSpec& spec, ComparisonObserver* obs = nullptr, TrainControl* control = nullptr);

}  // namespace dt
