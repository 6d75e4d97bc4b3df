// Helpers shared by the transfer and ablation experiments: snapshots of a model's trainable tensors,
// one evaluation, and an experiment folder's cells.jsonl and matrix files. Internal to engine/experiments.
#pragma once

#include "experiments/result_matrix.h"

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dt {

class TransformerModel;

namespace expt {

using Snapshot = std::vector<std::pair<std::string, at::Tensor>>;

// The trainable tensors (delta parameters and saved modules), by name, in a fixed order.
Snapshot trainable(TransformerModel& m);
Snapshot clone(const Snapshot& s);
void assign(Snapshot& live, const Snapshot& values);
// A trainer checkpoint's parameters (not its optimizer state), checked against the live tensors.
Snapshot read_checkpoint(const Snapshot& live, const std::string& dir);

// The metric ("" : the task's primary metric) of the model as it is, on `data`.
double evaluate_on(TransformerModel& m, const Dataset& data, const TrainConfig& cfg, const std::string& metric = "");
Dataset first_n(Dataset d, std::size_t n);

// Cells already computed in an earlier, stopped run of the same experiment, by (row, col).
std::map<std::pair<std::string, std::string>, nlohmann::json> read_cells(const std::string& path);
void write_matrix(const ResultMatrix& m, const std::string& dir);  // matrix.json and matrix.csv, atomically
ResultMatrix empty_matrix(const std::string& kind, const std::string& metric, std::vector<std::string> rows, std::vector<std::string> cols);

}  // namespace expt
}  // namespace dt
