// The run spec: one JSON document naming the model, the task data, the delta and the training
// arguments, shared by `deltatune train`, the GUI and resumed runs. Schema: docs/run-spec.md.
#pragma once

#include "data/text_data.h"
#include "delta/delta_set.h"
#include "models/loader.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>

#include <string>

namespace dt {

// A path from a spec file: absolute paths and built-in model names as they are, others relative to
// `base_dir` (the spec file's folder).
std::string resolve_path(const std::string& path, const std::string& base_dir);
// `path` made absolute against the working directory; built-in model names as they are.
std::string absolute_path(const std::string& path);

struct RunSpec {
    std::string model;          // folder or built-in
    LoadOptions load_options;   // architecture / num_labels overrides
    std::string train_file, validation_file;
    std::string format = "tokenized-jsonl";  // or jsonl | csv | tsv (text, tokenized with `tokenizer_file`)
    std::string tokenizer_file;               // default: <model folder>/tokenizer.json
    TextTaskOptions text;                     // fields, header, regression, skip_bad_lines, max_length
    double validation_split = 0;              // split the training file when there is no validation file
    std::string task_type = "classification"; // classification | regression | causal_lm
    std::string prompt_field = "prompt", response_field = "response";
    std::vector<std::string> labels;
    std::string task_file;                    // set when "task" names a task.json
    std::string task_name, task_category;     // optional "name" / "category" of the task
    DeltaSpec delta;
    std::string delta_folder;                 // set when "delta" names an exported delta folder
    TrainConfig training;
    std::string output_dir;
    std::string source;
    nlohmann::json raw;

    // Relative paths are resolved against the spec file's folder. Errors name the field.
    static RunSpec from_json(const nlohmann::json& j, const std::string& source, const std::string& base_dir);
    static RunSpec load(const std::string& path);
    // "delta" as a string: a method name with its defaults ("lora"), a delta spec file, or an exported
    // delta folder (PEFT's or DeltaTune's), whose trained values the run then starts from. Relative
    // paths are resolved against `base_dir`. Used for the spec's field and for `--delta` overrides.
    void set_delta(const std::string& arg, const std::string& base_dir, const std::string& where);
    // The spec with every path absolute (model, task file or train/validation/tokenizer), as a run
    // folder's spec.json stores it so `resume` works from any directory.
    nlohmann::json resolved_json() const;
};

// The task's data, tokenized when it is text (with the model folder's tokenizer.json unless the
// task names one), split when asked. Throws dt::Error naming the file and line.
struct TaskData {
    Dataset train, valid;
    ReadStats train_stats, valid_stats;
};
// A label-word classification task on an encoder-decoder is read text-to-text (as_text_to_text).
TaskData load_task_data(const RunSpec& spec);

// Whether `model` (a folder or a built-in) is an encoder-decoder, from its config alone; false when
// the config cannot be read (loading the model then says why).
bool model_is_encoder_decoder(const std::string& model);

// Everything a run needs, loaded: data (tokenized when the task is text), the model with the
// spec's overrides, and the delta applied. Throws dt::Error naming the file or field.
struct PreparedRun {
    RunSpec spec;
    Dataset train, valid;
    ReadStats train_stats, valid_stats;
    LoadedModel model;
    DeltaSet deltas;
    std::vector<std::string> warnings;  // e.g. an exported delta trained on other base weights
};
PreparedRun prepare_run(RunSpec spec);

// The model part of prepare_run(): the spec's model with its overrides and the delta applied, no
// data read. Sets spec.training.pad_id from the config unless given, and spec.delta from an imported
// delta folder. The head's label count must already be in spec.load_options (see model_needs_data).
struct PreparedModel {
    LoadedModel model;
    DeltaSet deltas;
    std::vector<std::string> warnings;
};
PreparedModel prepare_model(RunSpec& spec);

// Whether the head's size comes from the data (a classification head whose label count the spec
// does not give), so that only prepare_run() can build the model.
bool model_needs_data(const RunSpec& spec);

}  // namespace dt
