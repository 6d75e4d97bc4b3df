// The cross-task transfer experiment: train one delta per task, then evaluate every delta (and no
// delta) zero-shot on every task's validation set. Schema: docs/experiments.md.
#pragma once

#include "experiments/result_matrix.h"

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace dt {

// deltatune transfer --spec TRANSFER.json:
// {"model": FOLDER, "tasks": [task.json, ...], "delta": SPEC, "training": {...},
//  "sources": {"task name": CHECKPOINT_DIR}?, "extra_deltas": {"row name": DELTA_FOLDER}?,
//  "output_dir": DIR, "max_eval_examples": N?}
struct TransferSpec {
    std::string model, output_dir, source;
    std::vector<std::string> tasks;
    nlohmann::json delta, training;
    std::vector<std::pair<std::string, std::string>> sources;  // task name -> checkpoint folder
    // More rows: exported delta folders (PEFT or DeltaTune, e.g. a merged delta), evaluated on every task.
    std::vector<std::pair<std::string, std::string>> extra_deltas;
    std::size_t max_eval_examples = 0;                          // 0: the whole validation file
    // "accuracy" (the label words compared with each other; the default for classification) or
    // "exact_match" (the model's top word over the whole vocabulary must be the gold label word).
    std::string metric;
    static TransferSpec from_json(const nlohmann::json& j, const std::string& source, const std::string& base_dir);
    static TransferSpec load(const std::string& path);
};

// Rows: "(no delta)", one delta per task, then the extra deltas; columns: the tasks. The matrix is
// announced first; rows are evaluated in order, a task's delta trained (into output_dir/deltas/<task>,
// resuming an interrupted one) just before its row, so a stop keeps every finished row. Cells already in
// output_dir/cells.jsonl are kept. matrix.json and matrix.csv are rewritten (atomically) after every
// cell. A delta trained with a classification head transfers only to tasks with the same label set;
// other cells say so in their note.
ResultMatrix run_transfer(const TransferSpec& spec, ExperimentObserver* obs = nullptr, TrainControl* control = nullptr);

}  // namespace dt
