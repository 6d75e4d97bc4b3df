// The run builder and train_run(): one path from a user's choices to a trained run, shared by the
// `deltatune` CLI, the workbench's training worker, compare and transfer.
//   build_run_spec(): (model, task, delta, training) -> the run spec JSON every front end writes the
//                     same way (it owns the MaskedLM -> SequenceClassification rule);
//   prepare_run():    (train/run_spec.h) the spec -> data, model and delta loaded;
//   train_run():      train -> periodic checkpoints -> final (or step-N when stopped) in a run folder.
#pragma once

#include "train/run_spec.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace dt {

// What a user picks; the rest of the run spec follows from these and TrainingDefaults.
struct RunChoices {
    std::string model;      // a model folder or a built-in name
    std::string task_file;  // a task.json
    nlohmann::json delta;   // a method spec, a delta spec, or an exported delta folder (a string)
    std::int64_t steps = TrainingDefaults::max_steps;
    std::int64_t batch_size = TrainingDefaults::batch_size;
    double lr = TrainingDefaults::lr;
    std::string device = "cpu";
    std::string precision = "fp32";
    std::string base_dtype = "fp32";  // the frozen base's storage: fp32 or bf16
    std::string quantize = "none";    // none | int8 | nf4 (the frozen Linear weights)
    bool double_quant = false;        // with quantize: the scales quantized too
    bool packing = false;             // causal LM: sequence packing
    std::uint64_t seed = 0;
    // Left at their defaults they are not written (the spec stays short):
    std::int64_t grad_accum = 1;
    std::string schedule = "linear";
    double warmup_ratio = TrainingDefaults::warmup_ratio;
    std::int64_t eval_every = 0;  // 0: TrainingDefaults::eval_every(steps)
    int patience = 0;             // early stopping after this many evaluations without gain; 0: off
    std::int64_t max_length = 0;  // 0: the task's max_length
};

// The run spec for `c`, with absolute paths. A task without label words on a *ForMaskedLM model is
// trained with a classification head: the spec names the ForSequenceClassification sibling and adds
// the head to modules_to_save. Reads the model's config.json and the task file, never the data.
nlohmann::json build_run_spec(const RunChoices& c);

// The validation set a run evaluates on: the validation file, or the split of the training file;
// null when the run has neither.
const Dataset* validation_set(const PreparedRun& p);

struct TrainRunOptions {
    std::string resume_from;             // a checkpoint folder to continue from exactly
    std::int64_t grad_norms_every = 0;   // > 0: per-tensor gradient norms in StepEvents (the Inspect view)
    bool periodic_checkpoints = true;    // step-N checkpoints while training (resumable runs)
    bool save_best = true;               // checkpoints/best after an improving evaluation
    bool evaluate = true;                // evaluate on validation_set() while training
};

// Trains a prepared run into `run_dir` (events.jsonl, checkpoints/ per run_folder.h): periodic
// checkpoints (TrainingDefaults::checkpoint_every unless the spec sets checkpoint_every), then final
// when it finished or step-N when it was stopped, so it can be resumed. Throws dt::Error.
TrainResult train_run(PreparedRun& p, const std::string& run_dir, TrainObserver* observer, TrainControl* control,
                      const TrainRunOptions& options = {});

// Starts a new run folder for `spec`: refuses a folder that already holds a run, creates it and
// writes spec.json with every path absolute (what `deltatune resume` reads).
void create_run_folder(const std::string& run_dir, const RunSpec& spec);
// What a run folder's spec.json holds: the spec with absolute paths, output_dir and the label count
// found in the data (so load_run() needs no data).
nlohmann::json run_folder_spec(const RunSpec& spec, const std::string& run_dir);

// A run's model with its delta attached and the trained values of `checkpoint` (a name under
// checkpoints/, empty: final, else the latest) loaded. Reads no data set when spec.json records
// num_labels (runs written by create_run_folder do).
struct LoadedRun {
    RunSpec spec;
    LoadedModel model;
    DeltaSet deltas;
    std::string checkpoint;  // the folder loaded
    std::vector<std::string> warnings;
};
LoadedRun load_run(const std::string& run_dir, const std::string& checkpoint = "");
// The same with the delta at its initial values (no checkpoint loaded; `checkpoint` left empty).
LoadedRun open_run(const std::string& run_dir);

}  // namespace dt
