// The Delta Tuning study's experiments as engine functions the CLI and the GUI's worker thread run:
// a cross-task transfer matrix (train one delta per task, evaluate every delta zero-shot on every
// task), a layer ablation of one delta (remove it from layers i..j), and the Pareto front of metric
// against trainable parameters. Results are written to the experiment folder as they come, and a
// stopped experiment resumes with the cells it already has. Schema: docs/experiments.md.
#pragma once

#include "train/trainer.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace dt {

// A matrix of evaluation results; NaN marks a cell not (yet) computed or not computable (see note).
struct ResultMatrix {
    std::string kind;    // "transfer" | "ablation"
    std::string metric;  // e.g. "accuracy"
    std::vector<std::string> rows, cols, row_categories, col_categories;
    std::vector<std::vector<double>> value;
    std::vector<std::vector<std::string>> note;  // why a cell is empty, when it is
    double at(std::size_t r, std::size_t c) const { return value[r][c]; }
    bool has(std::size_t r, std::size_t c) const { return std::isfinite(value[r][c]); }
    // Transfer: each cell divided by its column's own-task delta (the row with the column's name).
    std::vector<std::vector<double>> relative() const;
    nlohmann::json to_json() const;
    std::string to_csv() const;  // header "row,category,<cols>", then one line per row; empty = not computed
    static ResultMatrix from_json(const nlohmann::json& j, const std::string& where);
};

class ExperimentObserver {
public:
    virtual ~ExperimentObserver() = default;
    virtual void on_status(const std::string&) {}
    virtual void on_matrix(const ResultMatrix&) {}  // the matrix's shape, before any cell
    virtual void on_cell(std::size_t row, std::size_t col, double value, const std::string& note) {}
    virtual void on_train_step(const std::string& task, const StepEvent&) {}
};

// deltatune transfer --spec TRANSFER.json:
// {"model": FOLDER, "tasks": [task.json, ...], "delta": SPEC, "training": {...},
//  "sources": {"task name": CHECKPOINT_DIR}?, "output_dir": DIR, "max_eval_examples": N?}
struct TransferSpec {
    std::string model, output_dir, source;
    std::vector<std::string> tasks;
    nlohmann::json delta, training;
    std::vector<std::pair<std::string, std::string>> sources;  // task name -> checkpoint folder
    std::size_t max_eval_examples = 0;                          // 0: the whole validation file
    // "accuracy" (the label words compared with each other; the default for classification) or
    // "exact_match" (the model's top word over the whole vocabulary must be the gold label word).
    std::string metric;
    static TransferSpec from_json(const nlohmann::json& j, const std::string& source, const std::string& base_dir);
    static TransferSpec load(const std::string& path);
};

// Rows: "(no delta)" then one delta per task; columns: the tasks. Deltas without a checkpoint are
// trained first (into output_dir/deltas/<task>, resuming an interrupted one). Cells already in
// output_dir/cells.jsonl are kept. matrix.json and matrix.csv are rewritten (atomically) after every
// cell. A delta trained with a classification head transfers only to tasks with the same label set;
// other cells say so in their note.
ResultMatrix run_transfer(const TransferSpec& spec, ExperimentObserver* obs = nullptr, TrainControl* control = nullptr);

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

// The metric experiments compare tasks by: accuracy (classification), pearson (regression), loss (LM).
struct Dataset;
std::string primary_metric(const Dataset& d);

// Pareto front for (trainable parameters: fewer is better, metric: higher is better): true for the
// points no other point dominates.
std::vector<bool> pareto_front(const std::vector<std::pair<double, double>>& params_and_metric);

}  // namespace dt
