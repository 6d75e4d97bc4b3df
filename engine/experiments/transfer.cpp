// The cross-task transfer experiment: its spec, then three stages: train one delta per task, set up
// the matrix (validation sets, metric, cells of an earlier run), evaluate every delta on every task.
#include "experiments/transfer.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "experiments/experiment_util.h"
#include "export/delta_format.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "models/loader.h"
#include "models/model.h"
#include "train/run.h"
#include "train/run_folder.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>

namespace dt {

TransferSpec TransferSpec::from_json(const nlohmann::json& j, const std::string& source, const std::string& base) {
    auto resolve = [&](const std::string& p) { return resolve_path(p, base); };
    if (!j.is_object()) throw Error("a transfer spec must be a JSON object", source);
    for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key() != "model" && it.key() != "tasks" && it.key() != "delta" && it.key() != "training" && it.key() != "sources" &&
            it.key() != "output_dir" && it.key() != "max_eval_examples" && it.key() != "metric" && it.key() != "extra_deltas")
            throw Error("unknown field '" + it.key() + "'", source,
                        "accepted: model, tasks, delta, training, sources, extra_deltas, output_dir, max_eval_examples, metric");
    TransferSpec s;
    s.source = source;
    s.model = resolve(json::get_string(j, "model", source));
    if (!j.contains("tasks") || !j["tasks"].is_array() || j["tasks"].size() < 2)
        throw Error("field 'tasks' must list at least two task.json files", source);
    for (const auto& t : j["tasks"]) {
        if (!t.is_string()) throw Error("field 'tasks' must list task.json paths", source);
        s.tasks.push_back(resolve(t.get<std::string>()));
    }
    s.delta = j.value("delta", nlohmann::json("lora"));
    s.training = j.value("training", nlohmann::json::object());
    if (j.contains("sources")) {
        if (!j["sources"].is_object()) throw Error("field 'sources' must map task names to checkpoint folders", source);
        for (auto it = j["sources"].begin(); it != j["sources"].end(); ++it) {
            if (!it.value().is_string()) throw Error("sources['" + it.key() + "'] must be a folder path", source);
            s.sources.emplace_back(it.key(), resolve(it.value().get<std::string>()));
        }
    }
    if (j.contains("extra_deltas")) {
        if (!j["extra_deltas"].is_object()) throw Error("field 'extra_deltas' must map row names to exported delta folders", source);
        for (auto it = j["extra_deltas"].begin(); it != j["extra_deltas"].end(); ++it) {
            if (!it.value().is_string()) throw Error("extra_deltas['" + it.key() + "'] must be a folder path", source);
            const std::string dir = resolve(it.value().get<std::string>());
            if (!is_exported_delta(dir))
                throw Error("not an exported delta folder (no adapter_config.json or delta_config.json)", source + ": extra_deltas['" + it.key() + "']",
                            "export a run (PEFT or DeltaTune format) or merge deltas first");
            s.extra_deltas.emplace_back(it.key(), dir);
        }
    }
    s.output_dir = resolve(json::get_string(j, "output_dir", source));
    const auto n = json::get_int_or(j, "max_eval_examples", 0, source);
    if (n < 0) throw Error("field 'max_eval_examples' must be >= 0", source);
    s.max_eval_examples = static_cast<std::size_t>(n);
    if (j.contains("metric")) {
        s.metric = json::get_string(j, "metric", source);
        if (s.metric != "accuracy" && s.metric != "exact_match" && s.metric != "rank_accuracy")
            throw Error("field 'metric' must be \"accuracy\", \"exact_match\" or \"rank_accuracy\", not '" + s.metric + "'", source);
    }
    return s;
}

TransferSpec TransferSpec::load(const std::string& path) {
    const auto slash = path.find_last_of('/');
    return from_json(json::load_file(path), path, slash == std::string::npos ? std::string(".") : path.substr(0, slash));
}

namespace {

class TransferStepRelay : public TrainObserver {
public:
    TransferStepRelay(ExperimentObserver* o, std::string task) : obs_(o), task_(std::move(task)) {}
    void on_step(const StepEvent& e) override {
        if (obs_) obs_->on_train_step(task_, e);
    }

private:
    ExperimentObserver* obs_;
    std::string task_;
};

std::string task_folder_name(const std::string& path) {
    std::string p = path;
    const auto slash = p.find_last_of('/');
    if (slash != std::string::npos) p = p.substr(0, slash);
    const auto s2 = p.find_last_of('/');
    return s2 == std::string::npos ? p : p.substr(s2 + 1);
}

// What the stages share: the tasks (in the spec's order) and what each stage adds for them.
struct TransferState {
    std::vector<RunSpec> tasks;
    std::vector<std::string> names, categories;
    std::vector<std::string> checkpoints;  // stage 1: each task's delta checkpoint (trained when its row is reached)
    std::vector<Dataset> valid;            // stage 2: each task's validation set
};

TransferState read_transfer_tasks(const TransferSpec& spec) {
    TransferState s;
    for (const auto& file : spec.tasks) {
        nlohmann::json j = {{"model", spec.model}, {"task", file}, {"delta", spec.delta}, {"training", spec.training}};
        RunSpec r = RunSpec::from_json(j, spec.source + ": " + file, "");
        std::string name = r.task_name.empty() ? task_folder_name(file) : r.task_name;
        for (const auto& n : s.names)
            if (n == name) throw Error("two tasks are named '" + name + "'", spec.source, "give each task.json its own \"name\"");
        s.names.push_back(name);
        s.categories.push_back(r.task_category);
        s.tasks.push_back(std::move(r));
    }
    for (const auto& [name, dir] : spec.sources)
        if (std::find(s.names.begin(), s.names.end(), name) == s.names.end())
            throw Error("sources names task '" + name + "', which is not in 'tasks'", spec.source);
    return s;
}

// Trains one delta into run_dir (a run folder like any other), resuming a stopped training; false
// when stopped again.
bool train_transfer_delta(RunSpec r, const std::string& name, const std::string& run_dir, ExperimentObserver* obs, TrainControl* control) {
    if (obs) obs->on_status("training a delta on " + name);
    if (r.training.checkpoint_every <= 0) r.training.checkpoint_every = std::max<std::int64_t>(1, r.training.max_steps / 4);
    PreparedRun p = prepare_run(r);
    TrainRunOptions options;
    options.save_best = false;
    options.evaluate = false;  // the matrix evaluates every delta afterwards
    if (run_folder::holds_run(run_dir)) {
        const std::string last = run_folder::latest_name(run_dir);
        if (!last.empty() && run_folder::has_checkpoint(run_folder::checkpoint_path(run_dir, last)))
            options.resume_from = run_folder::checkpoint_path(run_dir, last);
    } else {
        create_run_folder(run_dir, p.spec);
    }
    TransferStepRelay relay(obs, name);
    return train_run(p, run_dir, &relay, control, options).status != "cancelled";
}

// Stage 1. Where each task's delta is: given (checked now), or output_dir/deltas/<task>'s final
// checkpoint, trained when its row is reached (ensure_transfer_delta).
void plan_transfer_deltas(const TransferSpec& spec, TransferState& s) {
    for (std::size_t i = 0; i < s.tasks.size(); ++i) {
        std::string given;
        for (const auto& [name, dir] : spec.sources)
            if (name == s.names[i]) given = dir;
        if (!given.empty() && !run_folder::has_checkpoint(given))
            throw Error("no trainable.safetensors in the checkpoint folder", given, "sources name a run's checkpoints/<name> folder");
        s.checkpoints.push_back(!given.empty() ? given : run_folder::checkpoint_path(spec.output_dir + "/deltas/" + s.names[i], run_folder::kFinal));
    }
}

// Task i's delta exists afterwards, trained now if needed (resuming a stopped training); false when
// stopped.
bool ensure_transfer_delta(const TransferSpec& spec, const TransferState& s, std::size_t i, ExperimentObserver* obs, TrainControl* control) {
    if (run_folder::has_checkpoint(s.checkpoints[i])) return true;
    if (control && control->cancel) return false;
    return train_transfer_delta(s.tasks[i], s.names[i], spec.output_dir + "/deltas/" + s.names[i], obs, control);
}

// Every task's validation set; returns each column's metric: the spec's, else the task's own (a
// generative task's exact match beside a classification task's accuracy: cell (i, j) is task j's
// metric with task i's delta).
std::vector<std::string> load_transfer_validation(const TransferSpec& spec, TransferState& s) {
    std::vector<std::string> metrics;
    for (const auto& t : s.tasks) {
        s.valid.push_back(expt::first_n(load_task_data(t).valid, spec.max_eval_examples));
        if (s.valid.back().examples.empty()) throw Error("the task has no validation data", t.task_file, "add a validation file or split");
        const std::string m = primary_metric(s.valid.back());
        const bool words = !s.valid.back().label_word_ids.empty() || s.valid.back().seq2seq;
        if (spec.metric == "rank_accuracy") {  // text-to-text classification columns; the others keep their own
            metrics.push_back(s.valid.back().target_word_ids.empty() ? m : spec.metric);
            continue;
        }
        if (!spec.metric.empty() && spec.metric != m && !(spec.metric == "exact_match" && words))
            throw Error("metric '" + spec.metric + "' does not apply to this task (its metric is " + m + ")", t.task_file,
                        "exact_match needs label words and a template, or a text-to-text task; or leave 'metric' out");
        metrics.push_back(spec.metric.empty() ? m : spec.metric);
    }
    return metrics;
}

// Stage 2. The matrix: rows "(no delta)" and every delta, columns the tasks; with the cells an earlier,
// stopped run computed with the same metric.
ResultMatrix start_transfer_matrix(const TransferSpec& spec, TransferState& s, ExperimentObserver* obs) {
    std::vector<std::string> rows = {"(no delta)"};
    rows.insert(rows.end(), s.names.begin(), s.names.end());
    for (const auto& [name, dir] : spec.extra_deltas) rows.push_back(name);
    const std::vector<std::string> metrics = load_transfer_validation(spec, s);
    const bool one = std::all_of(metrics.begin(), metrics.end(), [&](const std::string& m) { return m == metrics.front(); });
    ResultMatrix M = expt::empty_matrix("transfer", one ? metrics.front() : "own", rows, s.names);
    if (!one) M.col_metrics = metrics;
    M.row_categories = {""};
    M.row_categories.insert(M.row_categories.end(), s.categories.begin(), s.categories.end());
    M.row_categories.resize(rows.size(), "");  // extra deltas have no task category
    M.col_categories = s.categories;
    if (obs) obs->on_matrix(M);
    const auto done = expt::read_cells(spec.output_dir + "/cells.jsonl");
    for (std::size_t r = 0; r < M.rows.size(); ++r)
        for (std::size_t c = 0; c < M.cols.size(); ++c) {
            const auto it = done.find({M.rows[r], M.cols[c]});
            if (it == done.end()) continue;
            if (it->second.value("metric", metrics[c]) != metrics[c]) continue;  // the spec's metric changed: computed again
            M.value[r][c] = it->second["value"].is_null() ? NAN : it->second["value"].get<double>();
            M.note[r][c] = it->second.value("note", "");
            if (obs) obs->on_cell(r, c, M.value[r][c], M.note[r][c]);
        }
    return M;
}

// One model per head shape (label words: the MLM head, key 0), with the delta attached; loaded when
// first needed.
class TransferModels {
public:
    struct Slot {
        LoadedModel model;
        std::unique_ptr<DeltaSet> deltas;
        expt::Snapshot live, init;
    };
    // The model for task t's head shape with the transfer's delta attached (`folder` empty; its
    // checkpoints are assigned per row), or with an extra row's exported delta from `folder`.
    Slot& slot(const RunSpec& t, const Dataset& valid, const std::string& folder = {}) {
        const bool words = !valid.label_word_ids.empty() || valid.causal_lm || valid.seq2seq;
        const std::int64_t key = words ? 0 : valid.regression ? 1 : static_cast<std::int64_t>(valid.labels.size());
        auto it = slots_.find({folder, key});
        if (it != slots_.end()) return it->second;
        Slot s;
        LoadOptions lo = t.load_options;
        if (!words && lo.num_labels <= 0) lo.num_labels = key;
        s.model = load_model(t.model, lo);
        if (!folder.empty()) {
            s.deltas = std::make_unique<DeltaSet>(std::move(import_exported_delta(*s.model.model, folder).deltas));
        } else {
            s.deltas = std::make_unique<DeltaSet>(DeltaSet::apply(*s.model.model, t.delta));
            s.live = expt::trainable(*s.model.model);
            s.init = expt::clone(s.live);
        }
        return slots_.emplace(std::make_pair(folder, key), std::move(s)).first->second;
    }

private:
    std::map<std::pair<std::string, std::int64_t>, Slot> slots_;
};

// A computed cell goes to cells.jsonl (to resume from) and the matrix files at once.
void record_transfer_cell(const TransferSpec& spec, ResultMatrix& M, std::size_t r, std::size_t c, double v, const std::string& why,
                          double secs, ExperimentObserver* obs) {
    M.value[r][c] = v;
    M.note[r][c] = why;
    nlohmann::json cell = {{"row", M.rows[r]}, {"col", M.cols[c]}, {"value", std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr)},
                           {"metric", M.col_metrics.empty() ? M.metric : M.col_metrics[c]}, {"seconds", secs}};
    if (!why.empty()) cell["note"] = why;
    append_line(spec.output_dir + "/cells.jsonl", cell.dump());
    expt::write_matrix(M, spec.output_dir);
    if (obs) obs->on_cell(r, c, v, why);
}

// Stage 3. Row r (no delta, a task's delta, an extra delta) on every task's validation set, cell by
// cell; false when stopped.
bool evaluate_transfer_row(const TransferSpec& spec, const TransferState& s, ResultMatrix& M, std::size_t r, TransferModels& models,
                           ExperimentObserver* obs, TrainControl* control) {
    for (std::size_t c = 0; c < M.cols.size(); ++c) {
        if (M.has(r, c) || !M.note[r][c].empty()) continue;
        if (control && control->cancel) return false;
        const std::size_t src = r - 1;
        const std::string& metric = M.col_metrics.empty() ? M.metric : M.col_metrics[c];
        const auto t0 = std::chrono::steady_clock::now();
        double v = NAN;
        std::string why;
        if (r > s.names.size()) {  // an extra delta: evaluated as exported, whatever its method
            auto& slot = models.slot(s.tasks[c], s.valid[c], spec.extra_deltas[r - 1 - s.names.size()].second);
            v = expt::evaluate_on(*slot.model.model, s.valid[c], s.tasks[c].training, metric);
        } else if (r > 0 && !run_folder::has_checkpoint(s.checkpoints[src])) {
            continue;  // not trained (stopped): stays empty, filled in when resumed
        } else if (r > 0 && s.valid[c].label_word_ids.empty() && !s.valid[c].seq2seq && !s.valid[c].causal_lm &&
                   s.valid[src].labels != s.valid[c].labels) {
            why = "label sets differ: a classification-head delta only transfers between tasks with the same labels";
        } else {
            auto& slot = models.slot(s.tasks[c], s.valid[c]);
            expt::assign(slot.live, r == 0 ? slot.init : expt::read_checkpoint(slot.live, s.checkpoints[src]));
            v = expt::evaluate_on(*slot.model.model, s.valid[c], s.tasks[c].training, metric);
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        record_transfer_cell(spec, M, r, c, v, why, secs, obs);
    }
    return true;
}

}  // namespace

ResultMatrix run_transfer(const TransferSpec& spec, ExperimentObserver* obs, TrainControl* control) {
    make_dirs(spec.output_dir);
    TransferState s = read_transfer_tasks(spec);
    plan_transfer_deltas(spec, s);
    // The matrix first (with the cells of an earlier, stopped run), then row by row: the base, each
    // task's delta as soon as it is trained, the extra deltas. A stop keeps every finished row.
    ResultMatrix M = start_transfer_matrix(spec, s, obs);
    TransferModels models;
    for (std::size_t r = 0; r < M.rows.size(); ++r) {
        const bool task_row = r >= 1 && r <= s.names.size();
        if (task_row && !ensure_transfer_delta(spec, s, r - 1, obs, control)) return M;  // stopped while training
        if (!evaluate_transfer_row(spec, s, M, r, models, obs, control)) return M;      // stopped: resumed later from cells.jsonl
    }
    expt::write_matrix(M, spec.output_dir);
    return M;
}

}  // namespace dt
