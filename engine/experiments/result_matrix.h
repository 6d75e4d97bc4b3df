// The result of an experiment as a matrix of evaluation results (rows x columns, with notes and
// categories), its JSON and CSV forms, the observer experiments report to, and the small helpers
// experiments compare results with (the primary metric of a task, the Pareto front).
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
    std::string metric;  // e.g. "accuracy"; "own" when the columns differ (col_metrics)
    std::vector<std::string> col_metrics;  // transfer across task kinds: each column's own metric
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

// The metric experiments compare tasks by: accuracy (classification), pearson (regression), loss (LM).
struct Dataset;
std::string primary_metric(const Dataset& d);

// Pareto front for (trainable parameters: fewer is better, metric: higher is better): true for the
// points no other point dominates.
std::vector<bool> pareto_front(const std::vector<std::pair<double, double>>& params_and_metric);

}  // namespace dt
