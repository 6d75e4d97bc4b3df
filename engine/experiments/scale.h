// Power of scale (the Delta Tuning study's figure: the same delta methods on models of growing size):
// one task, a list of models, a list of methods. Every (model, method) pair is a method comparison
// run in output_dir/<model name>/ (so a stopped experiment resumes with the pairs it finished), and
// scale.json / scale.csv / scale_curves.csv gather the metric per size and method and the convergence
// curves (metric against steps). Schema: docs/experiments.md.
#pragma once

#include "experiments/comparison.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace dt {

// {"models": [FOLDER | {"name": N, "model": FOLDER}, ...], "task": task.json | {...},
//  "methods": [as compare], "training": {...}, "budget": N?, "output_dir": DIR}
struct ScaleSpec {
    struct Model {
        std::string name, model;
    };
    std::vector<Model> models;
    CompareSpec compare;  // model left empty: filled per model
    static ScaleSpec from_json(const nlohmann::json& j, const std::string& source, const std::string& base_dir);
    static ScaleSpec load(const std::string& path);
};

struct ScaleResult {
    struct Size {
        std::string name, model;
        std::int64_t parameters = 0;  // the base model's, without any delta
        ComparisonResult methods;
    };
    std::string task, metric;
    std::vector<Size> sizes;  // in the spec's order (the models run so far, when stopped)
    nlohmann::json to_json() const;
    std::string to_csv() const;         // model,parameters,method,trainable_params,<metric>,best_<metric>,seconds
    std::string curves_csv() const;     // model,method,step,elapsed_s,<metric>
};

// Runs the models in order; the observer's method names are "<model>/<method>".
ScaleResult run_scale(const ScaleSpec& spec, ComparisonObserver* obs = nullptr, TrainControl* control = nullptr);

}  // namespace dt
