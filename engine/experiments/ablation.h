// The layer ablation experiment: one trained delta evaluated with its parameters in layers i..j
// reset, for every i <= j. Schema: docs/experiments.md.
#pragma once

#include "experiments/result_matrix.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace dt {

// Layer ablation of one trained delta on its task's validation set: cell (i, j), i <= j, is the
// metric with the delta's parameters in layers i..j reset to their initial values (for LoRA, IA3,
// adapters and BitFit exactly "no delta there"). Rows and columns are layer numbers; also reports
// the intact delta and the bare base model in the matrix notes' first cell and in the JSON.
struct AblationResult {
    ResultMatrix matrix;
    double with_delta = NAN, without_delta = NAN;
    // Delta parameters in no layer (an LM-head transform, a classifier in modules_to_save, a soft
    // prompt): they stay in every cell, so cell (0, L-1) is the base model only when this is 0.
    std::int64_t outside_layers = 0;
    std::vector<std::string> outside_layer_tensors;
};
AblationResult run_layer_ablation(const std::string& run_spec_path, const std::string& checkpoint_dir, const std::string& output_dir,
                                  std::size_t max_eval_examples = 0, ExperimentObserver* obs = nullptr,
                                  TrainControl* control = nullptr);

}  // namespace dt
