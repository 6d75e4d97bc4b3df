// The run folder's names and the few operations on them (see run_folder.h).
#include "train/run_folder.h"

#include <algorithm>

#include "io/limits.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "io/atomic_file.h"
#include "io/weight_set.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "train/events.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

namespace dt::run_folder {

std::string spec_path(const std::string& run) { return run + "/spec.json"; }
std::string events_path(const std::string& run) { return run + "/events.jsonl"; }
std::string checkpoints_path(const std::string& run) { return run + "/checkpoints"; }
std::string checkpoint_path(const std::string& run, const std::string& name) { return checkpoints_path(run) + "/" + name; }
std::string latest_path(const std::string& run) { return checkpoints_path(run) + "/latest"; }
std::string info_path(const std::string& run) { return run + "/run_info.json"; }
std::string label_path(const std::string& run) { return run + "/label.txt"; }

RunInfo read_info(const std::string& run) {
    RunInfo r;
    try {
        if (!path_exists(info_path(run))) return r;
        const nlohmann::json info = json::load_file(info_path(run));
        r.trainable = info.value("trainable", std::int64_t(-1));
        r.total = info.value("total", std::int64_t(-1));
        r.train_examples = info.value("train_examples", std::int64_t(-1));
        r.world_size = std::max(1, info.value("world_size", 1));
    } catch (const std::exception&) {
        // an edited or torn run_info.json: the counts stay unknown
    }
    return r;
}

void write_info(const std::string& run, std::int64_t trainable, std::int64_t total, std::int64_t train_examples, int world_size) {
    nlohmann::json j = {{"trainable", trainable}, {"total", total}, {"train_examples", train_examples}};
    if (world_size > 1) j["world_size"] = world_size;
    write_file_atomic(info_path(run), j.dump(2) + "\n");
}

void set_label(const std::string& run, const std::string& label) {
    if (label.find_first_of("\n\r") != std::string::npos) throw Error("a run's name is one line", label_path(run));
    if (label.empty()) std::remove(label_path(run).c_str());
    else write_file_atomic(label_path(run), label + "\n");
}
std::string step_name(std::int64_t step) { return "step-" + std::to_string(step); }
std::string end_name(const std::string& status, std::int64_t steps) { return status == "finished" ? kFinal : step_name(steps); }

std::string trainable_path(const std::string& checkpoint) { return checkpoint + "/trainable.safetensors"; }
std::string state_path(const std::string& checkpoint) { return checkpoint + "/state.json"; }
std::string param_key(const std::string& parameter) { return "param." + parameter; }

bool holds_run(const std::string& run) { return path_exists(checkpoints_path(run)); }
bool has_checkpoint(const std::string& checkpoint) { return path_exists(trainable_path(checkpoint)); }

std::string latest_name(const std::string& run) {
    const std::string file = latest_path(run);
    if (!path_exists(file)) return "";
    std::string name = json::read_text_file(file, 4096);
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    if (!is_plain_file_name(name)) throw Error("does not name a checkpoint folder", file, "delete it, or write a checkpoint's folder name");
    return name;
}

void set_latest(const std::string& checkpoint) {
    const auto slash = checkpoint.find_last_of('/');
    const std::string parent = slash == std::string::npos ? "." : checkpoint.substr(0, slash);
    write_file_atomic(parent + "/latest", checkpoint.substr(slash + 1) + "\n");
}

void remove_checkpoint(const std::string& checkpoint) {
    std::remove(trainable_path(checkpoint).c_str());
    std::remove(state_path(checkpoint).c_str());
    // A save killed mid-write leaves its temporary files here too: a checkpoint folder is flat, so
    // every regular file in it goes, then the folder.
    if (DIR* d = ::opendir(checkpoint.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (name == "." || name == "..") continue;
            const std::string path = checkpoint + "/" + name;
            struct stat st {};
            if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) std::remove(path.c_str());
        }
        ::closedir(d);
    }
    ::rmdir(checkpoint.c_str());
}

RunSummary summarize_run(const std::string& run) {
    RunSummary s;
    std::ifstream events(events_path(run));
    std::string line;
    EventLine ev;
    std::size_t lineno = 0;
    // A line over limits.line_bytes ends the reading: what came before is the summary.
    const auto next_line = [&] {
        try {
            return limits::getline_limited(events, line, events_path(run), ++lineno);
        } catch (const Error&) {
            return false;
        }
    };
    while (next_line()) {
        if (!parse_event_line(line.data(), line.data() + line.size(), ev)) continue;  // a line cut by a kill
        if (ev.kind == "status") {
            s.status = ev.status.status;
            s.steps = ev.status.step;
        } else if (ev.kind == "step") {
            s.steps = std::max(s.steps, ev.step.step);
            if (std::isfinite(ev.step.elapsed_s)) s.elapsed_s = ev.step.elapsed_s;
        } else if (ev.kind == "eval") {
            const EvalEvent& e = ev.eval;
            if (e.metrics.empty() || (!e.metrics.count("loss") && eval_score_name(e.metrics) == "loss")) continue;
            const std::string name = eval_score_name(e.metrics);
            const double v = e.metrics.at(name);
            if (!std::isfinite(v)) continue;
            if (s.best_metric.empty() || (name == "loss" ? v < s.best : v > s.best)) s.best = v;
            s.best_metric = name;
        }
    }
    {
        std::ifstream label(label_path(run));
        std::getline(label, s.label);
    }
    const RunInfo info = read_info(run);
    s.trainable = info.trainable;
    s.total = info.total;
    s.train_examples = info.train_examples;
    std::vector<std::pair<std::int64_t, std::string>> steps;
    for (const auto& name : list_folder(checkpoints_path(run))) {
        if (!has_checkpoint(checkpoint_path(run, name))) continue;
        if (name.rfind("step-", 0) == 0) steps.emplace_back(std::atoll(name.c_str() + 5), name);
    }
    for (const std::string& named : {kBest, kFinal})
        if (has_checkpoint(checkpoint_path(run, named))) s.checkpoints.push_back(named);
    std::sort(steps.rbegin(), steps.rend());
    for (const auto& [n, name] : steps) s.checkpoints.push_back(name);
    return s;
}

std::string pick_checkpoint(const std::string& run, const std::string& name) {
    std::string n = name;
    if (n.empty()) n = path_exists(checkpoint_path(run, kFinal)) ? kFinal : latest_name(run);
    if (n.empty() || !is_plain_file_name(n) || !has_checkpoint(checkpoint_path(run, n)))
        throw Error("no checkpoint '" + n + "'", checkpoints_path(run), "train first, or pass --checkpoint NAME");
    return n;
}

std::vector<std::pair<std::string, at::Tensor>> read_trainable(const std::string& checkpoint,
                                                               const std::vector<std::pair<std::string, at::Tensor>>& like) {
    const std::string file = trainable_path(checkpoint);
    if (!path_exists(file)) throw Error("no trainable.safetensors in the checkpoint folder", checkpoint, "pass a run's checkpoints/<name> folder");
    auto f = st::File::open(file);
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& [name, t] : like) {
        const std::string key = param_key(name);
        if (!f->contains(key))
            throw Error("the checkpoint has no tensor for trainable parameter '" + name + "'", file,
                        "it was trained with another delta spec or model");
        at::Tensor v = f->tensor(key);
        if (v.sizes() != t.sizes()) throw Error("tensor '" + key + "' has shape " + c10::str(v.sizes()) + ", expected " + c10::str(t.sizes()), file);
        out.emplace_back(name, v);
    }
    return out;
}

void load_trainable(TransformerModel& model, const std::string& checkpoint) {
    auto live = named_trainable_parameters(model);
    const auto stored = read_trainable(checkpoint, live);
    torch::NoGradGuard ng;
    for (std::size_t i = 0; i < live.size(); ++i) live[i].second.copy_(stored[i].second);
}

}  // namespace dt::run_folder
