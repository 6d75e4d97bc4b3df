// The run folder, declared in one place. Every reader and writer of a run asks here:
//   RUN/spec.json                      the run spec with every path absolute (what `resume` reads)
//   RUN/events.jsonl                   one StepEvent / EvalEvent / StatusEvent per line (train/events.h)
//   RUN/checkpoints/<name>/            trainable.safetensors (param.<name>, AdamW moments, RNG) + state.json
//   RUN/checkpoints/latest             the name of the newest checkpoint
// Checkpoint names: step-N (periodic or stopped), best (best evaluation), final (finished).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dt {
class TransformerModel;
}

namespace dt::run_folder {

inline const std::string kFinal = "final";
inline const std::string kBest = "best";

std::string spec_path(const std::string& run);
std::string events_path(const std::string& run);
std::string checkpoints_path(const std::string& run);
std::string checkpoint_path(const std::string& run, const std::string& name);
std::string latest_path(const std::string& run);
std::string info_path(const std::string& run);   // RUN/run_info.json: trainable/total parameters, train examples
std::string label_path(const std::string& run);  // RUN/label.txt: the name the user gave the run (optional)
std::string step_name(std::int64_t step);  // "step-120"
// The checkpoint a run ends with: final when it finished, else step-N (resumable).
std::string end_name(const std::string& status, std::int64_t steps);

// Inside a checkpoint folder.
std::string trainable_path(const std::string& checkpoint);
std::string state_path(const std::string& checkpoint);
std::string param_key(const std::string& parameter);  // "param.<name>" in trainable.safetensors

bool holds_run(const std::string& run);              // a checkpoints/ folder exists
bool has_checkpoint(const std::string& checkpoint);  // its trainable.safetensors exists
// The name in checkpoints/latest ("" when absent); throws dt::Error when it names no plain folder.
std::string latest_name(const std::string& run);
// Records `checkpoint`'s folder name as the run's latest.
void set_latest(const std::string& checkpoint);
// Removes a checkpoint folder (oldest periodic checkpoints are trimmed this way).
void remove_checkpoint(const std::string& checkpoint);
// `name`, or when empty final, else the latest; throws dt::Error naming the folder when there is none.
std::string pick_checkpoint(const std::string& run, const std::string& name);

// What a run folder says about itself: its last status line in events.jsonl ("" when it has none:
// still running, or killed) and the step it reached, and its checkpoints that hold weights, in the
// order an export offers them: best, final, then step-N newest first.
struct RunSummary {
    std::string status;
    std::int64_t steps = 0;
    std::vector<std::string> checkpoints;
    std::string label;                // label.txt, "" when the user gave none
    std::string best_metric;          // the ranked metric (eval_score_name), "" before any evaluation
    double best = 0;                  // its best value (lowest for loss)
    double elapsed_s = 0;             // training time to the last step
    std::int64_t trainable = -1, total = -1, train_examples = -1;  // run_info.json (-1: not recorded)
    bool finished() const { return status == "finished" || status == "early_stopped"; }
};
RunSummary summarize_run(const std::string& run);
// run_info.json's counts: trainable and total parameters, training examples (-1 each when absent
// or unreadable, as for runs made before it existed).
struct RunInfo {
    std::int64_t trainable = -1, total = -1, train_examples = -1;
    int world_size = 1;  // data-parallel ranks: an optimizer step takes batch_size x grad_accum x this examples
};
RunInfo read_info(const std::string& run);
// Writes run_info.json (train_run does, at its start).
void write_info(const std::string& run, std::int64_t trainable, std::int64_t total, std::int64_t train_examples, int world_size = 1);
// Sets (or with "" removes) the run's label; throws dt::Error naming the file.
void set_label(const std::string& run, const std::string& label);

// The stored values (param.<name>) of a checkpoint for each of `like`'s names, checked against
// their shapes; tensors as stored (on the CPU, not copied). Throws dt::Error naming the tensor and file.
std::vector<std::pair<std::string, at::Tensor>> read_trainable(const std::string& checkpoint,
                                                               const std::vector<std::pair<std::string, at::Tensor>>& like);

// Copies the trained values of a checkpoint into the model's trainable parameters (the delta must
// be attached as it was trained). Reads no data set. Throws dt::Error naming the tensor and file.
void load_trainable(TransformerModel& model, const std::string& checkpoint);

}  // namespace dt::run_folder
