#include "experiments/experiments.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "models/model.h"
#include "train/run_spec.h"

#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>

namespace dt {
namespace {

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string o = "\"";
    for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
    return o + "\"";
}

std::string num(double v) {
    if (!std::isfinite(v)) return "";
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", v);
    return b;
}

using Snapshot = std::vector<std::pair<std::string, at::Tensor>>;

// The trainable tensors (delta parameters and saved modules), by name, in a fixed order.
Snapshot trainable(TransformerModel& m) {
    Snapshot s;
    for (const auto& p : m.named_parameters(true))
        if (p.value().requires_grad()) s.emplace_back(p.key(), p.value());
    return s;
}

Snapshot clone(const Snapshot& s) {
    Snapshot c;
    for (const auto& [n, t] : s) c.emplace_back(n, t.detach().clone());
    return c;
}

void assign(Snapshot& live, const Snapshot& values) {
    torch::NoGradGuard ng;
    for (std::size_t i = 0; i < live.size(); ++i) live[i].second.copy_(values[i].second);
}

// A trainer checkpoint's parameters (not its optimizer state), checked against the live tensors.
Snapshot read_checkpoint(const Snapshot& live, const std::string& dir) {
    const std::string file = dir + "/trainable.safetensors";
    if (!path_exists(file)) throw Error("no trainable.safetensors in the checkpoint folder", dir, "pass a run's checkpoints/<name> folder");
    auto f = st::File::open(file);
    Snapshot out;
    for (const auto& [name, t] : live) {
        if (!f->contains("param." + name))
            throw Error("the checkpoint has no tensor for trainable parameter '" + name + "'", file,
                        "it was trained with another delta spec or model");
        at::Tensor v = f->tensor("param." + name);
        if (v.sizes() != t.sizes())
            throw Error("tensor 'param." + name + "' has shape " + c10::str(v.sizes()) + ", expected " + c10::str(t.sizes()), file);
        out.emplace_back(name, v.to(t.device()).clone());
    }
    return out;
}

}  // namespace

std::string primary_metric(const Dataset& d) { return d.regression ? "pearson" : d.causal_lm || d.masked_lm ? "loss" : "accuracy"; }

namespace {

double evaluate_on(TransformerModel& m, const Dataset& data, const TrainConfig& cfg, const std::string& metric = "") {
    TrainConfig c = cfg;
    c.run_dir.clear();
    c.save_best = false;
    Trainer t(m, data, nullptr, c);
    const auto metrics = t.evaluate(data);
    return metrics.at(metric.empty() ? primary_metric(data) : metric);
}

Dataset first_n(Dataset d, std::size_t n) {
    if (n > 0 && d.examples.size() > n) d.examples.resize(n);
    return d;
}

void append_line(const std::string& path, const std::string& line) {
    std::ofstream f(path, std::ios::app);
    if (!f) throw Error("cannot write", path);
    f << line << "\n";
}

// Cells already computed in an earlier, stopped run of the same experiment.
std::map<std::pair<std::string, std::string>, nlohmann::json> read_cells(const std::string& path) {
    std::map<std::pair<std::string, std::string>, nlohmann::json> out;
    std::ifstream f(path);
    std::string line;
    while (std::getline(f, line)) {
        try {
            auto j = nlohmann::json::parse(line);
            out[{j.at("row").get<std::string>(), j.at("col").get<std::string>()}] = j;
        } catch (const std::exception&) {
            // A line cut short by a kill: that cell is simply computed again.
        }
    }
    return out;
}

void write_matrix(const ResultMatrix& m, const std::string& dir) {
    write_file_atomic(dir + "/matrix.json", m.to_json().dump(1) + "\n");
    write_file_atomic(dir + "/matrix.csv", m.to_csv());
}

ResultMatrix empty_matrix(const std::string& kind, const std::string& metric, std::vector<std::string> rows, std::vector<std::string> cols) {
    ResultMatrix m;
    m.kind = kind;
    m.metric = metric;
    m.rows = std::move(rows);
    m.cols = std::move(cols);
    m.value.assign(m.rows.size(), std::vector<double>(m.cols.size(), NAN));
    m.note.assign(m.rows.size(), std::vector<std::string>(m.cols.size()));
    return m;
}

class StepRelay : public TrainObserver {
public:
    StepRelay(ExperimentObserver* o, std::string task) : obs_(o), task_(std::move(task)) {}
    void on_step(const StepEvent& e) override {
        if (obs_) obs_->on_train_step(task_, e);
    }

private:
    ExperimentObserver* obs_;
    std::string task_;
};

std::string folder_name(const std::string& path) {
    std::string p = path;
    const auto slash = p.find_last_of('/');
    if (slash != std::string::npos) p = p.substr(0, slash);
    const auto s2 = p.find_last_of('/');
    return s2 == std::string::npos ? p : p.substr(s2 + 1);
}

}  // namespace

std::vector<std::vector<double>> ResultMatrix::relative() const {
    std::vector<std::vector<double>> out(rows.size(), std::vector<double>(cols.size(), NAN));
    for (std::size_t c = 0; c < cols.size(); ++c) {
        double own = NAN;
        for (std::size_t r = 0; r < rows.size(); ++r)
            if (rows[r] == cols[c]) own = value[r][c];
        for (std::size_t r = 0; r < rows.size(); ++r)
            if (std::isfinite(own) && own != 0 && std::isfinite(value[r][c])) out[r][c] = value[r][c] / own;
    }
    return out;
}

nlohmann::json ResultMatrix::to_json() const {
    auto cells = [](const std::vector<std::vector<double>>& v) {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& row : v) {
            nlohmann::json r = nlohmann::json::array();
            for (double x : row) r.push_back(std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr));
            a.push_back(r);
        }
        return a;
    };
    nlohmann::json j = {{"kind", kind}, {"metric", metric}, {"rows", rows}, {"cols", cols}, {"row_categories", row_categories},
                        {"col_categories", col_categories}, {"value", cells(value)}, {"note", note}};
    if (kind == "transfer") j["relative"] = cells(relative());
    return j;
}

ResultMatrix ResultMatrix::from_json(const nlohmann::json& j, const std::string& where) {
    try {
        ResultMatrix m;
        m.kind = j.at("kind").get<std::string>();
        m.metric = j.at("metric").get<std::string>();
        m.rows = j.at("rows").get<std::vector<std::string>>();
        m.cols = j.at("cols").get<std::vector<std::string>>();
        m.row_categories = j.value("row_categories", std::vector<std::string>{});
        m.col_categories = j.value("col_categories", std::vector<std::string>{});
        m.value.assign(m.rows.size(), std::vector<double>(m.cols.size(), NAN));
        m.note.assign(m.rows.size(), std::vector<std::string>(m.cols.size()));
        const auto& v = j.at("value");
        if (v.size() != m.rows.size()) throw Error("'value' has " + std::to_string(v.size()) + " rows, expected " + std::to_string(m.rows.size()), where);
        for (std::size_t r = 0; r < m.rows.size(); ++r) {
            if (v[r].size() != m.cols.size()) throw Error("'value' row " + std::to_string(r) + " has the wrong length", where);
            for (std::size_t c = 0; c < m.cols.size(); ++c)
                if (!v[r][c].is_null()) m.value[r][c] = v[r][c].get<double>();
        }
        if (j.contains("note"))
            for (std::size_t r = 0; r < m.rows.size() && r < j["note"].size(); ++r)
                for (std::size_t c = 0; c < m.cols.size() && c < j["note"][r].size(); ++c) m.note[r][c] = j["note"][r][c].get<std::string>();
        return m;
    } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("not a result matrix: ") + e.what(), where);
    }
}

std::string ResultMatrix::to_csv() const {
    std::ostringstream o;
    o << "row,category";
    for (const auto& c : cols) o << "," << csv_field(c);
    o << "\n";
    for (std::size_t r = 0; r < rows.size(); ++r) {
        o << csv_field(rows[r]) << "," << csv_field(r < row_categories.size() ? row_categories[r] : "");
        for (std::size_t c = 0; c < cols.size(); ++c) o << "," << num(value[r][c]);
        o << "\n";
    }
    return o.str();
}

TransferSpec TransferSpec::from_json(const nlohmann::json& j, const std::string& source, const std::string& base) {
    auto resolve = [&](const std::string& p) { return resolve_path(p, base); };
    if (!j.is_object()) throw Error("a transfer spec must be a JSON object", source);
    for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key() != "model" && it.key() != "tasks" && it.key() != "delta" && it.key() != "training" && it.key() != "sources" &&
            it.key() != "output_dir" && it.key() != "max_eval_examples" && it.key() != "metric")
            throw Error("unknown field '" + it.key() + "'", source,
                        "accepted: model, tasks, delta, training, sources, output_dir, max_eval_examples, metric");
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
    s.output_dir = resolve(json::get_string(j, "output_dir", source));
    const auto n = json::get_int_or(j, "max_eval_examples", 0, source);
    if (n < 0) throw Error("field 'max_eval_examples' must be >= 0", source);
    s.max_eval_examples = static_cast<std::size_t>(n);
    if (j.contains("metric")) {
        s.metric = json::get_string(j, "metric", source);
        if (s.metric != "accuracy" && s.metric != "exact_match")
            throw Error("field 'metric' must be \"accuracy\" or \"exact_match\", not '" + s.metric + "'", source);
    }
    return s;
}

TransferSpec TransferSpec::load(const std::string& path) {
    const auto slash = path.find_last_of('/');
    return from_json(json::load_file(path), path, slash == std::string::npos ? std::string(".") : path.substr(0, slash));
}

ResultMatrix run_transfer(const TransferSpec& spec, ExperimentObserver* obs, TrainControl* control) {
    make_dirs(spec.output_dir);
    std::vector<RunSpec> tasks;
    std::vector<std::string> names, categories;
    for (const auto& file : spec.tasks) {
        nlohmann::json j = {{"model", spec.model}, {"task", file}, {"delta", spec.delta}, {"training", spec.training}};
        RunSpec r = RunSpec::from_json(j, spec.source + ": " + file, "");
        std::string name = r.task_name.empty() ? folder_name(file) : r.task_name;
        for (const auto& n : names)
            if (n == name) throw Error("two tasks are named '" + name + "'", spec.source, "give each task.json its own \"name\"");
        names.push_back(name);
        categories.push_back(r.task_category);
        tasks.push_back(std::move(r));
    }
    for (const auto& [name, dir] : spec.sources)
        if (std::find(names.begin(), names.end(), name) == names.end())
            throw Error("sources names task '" + name + "', which is not in 'tasks'", spec.source);

    // 1. One delta per task: given, already trained, or trained now (resuming a stopped training).
    std::vector<std::string> checkpoints;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        std::string ckpt;
        for (const auto& [name, dir] : spec.sources)
            if (name == names[i]) ckpt = dir;
        const std::string run_dir = spec.output_dir + "/deltas/" + names[i];
        if (ckpt.empty()) ckpt = run_dir + "/checkpoints/final";
        checkpoints.push_back(ckpt);
        if (path_exists(ckpt + "/trainable.safetensors")) continue;
        if (control && control->cancel) break;
        if (obs) obs->on_status("training a delta on " + names[i]);
        make_dirs(run_dir);
        RunSpec r = tasks[i];
        r.training.run_dir = run_dir;
        if (r.training.checkpoint_every <= 0) r.training.checkpoint_every = std::max<std::int64_t>(1, r.training.max_steps / 4);
        PreparedRun p = prepare_run(r);
        StepRelay relay(obs, names[i]);
        Trainer t(*p.model.model, p.train, nullptr, p.spec.training, &relay);
        std::ifstream latest(run_dir + "/checkpoints/latest");
        std::string last;
        if (latest >> last && path_exists(run_dir + "/checkpoints/" + last + "/trainable.safetensors"))
            t.load_checkpoint(run_dir + "/checkpoints/" + last);
        const auto res = t.run(control);
        if (res.status == "cancelled") {
            t.save_checkpoint(run_dir + "/checkpoints/step-" + std::to_string(t.step()));
            break;
        }
        t.save_checkpoint(ckpt);
    }

    // 2. The matrix: every delta (and none) on every task's validation set.
    std::vector<std::string> rows = {"(no delta)"};
    rows.insert(rows.end(), names.begin(), names.end());
    std::vector<Dataset> valid;
    std::string metric;
    for (const auto& t : tasks) {
        valid.push_back(first_n(load_task_data(t).valid, spec.max_eval_examples));
        if (valid.back().examples.empty()) throw Error("the task has no validation data", t.task_file, "add a validation file or split");
        const std::string m = primary_metric(valid.back());
        if (!metric.empty() && m != metric) throw Error("tasks mix metrics (" + metric + ", " + m + ")", t.task_file, "transfer compares tasks with one metric");
        metric = m;
        if (!spec.metric.empty() && spec.metric != m && !(spec.metric == "exact_match" && !valid.back().label_word_ids.empty()))
            throw Error("metric '" + spec.metric + "' does not apply to this task (its metric is " + m + ")", t.task_file,
                        "exact_match needs label words and a template; or leave 'metric' out");
    }
    if (!spec.metric.empty()) metric = spec.metric;
    ResultMatrix M = empty_matrix("transfer", metric, rows, names);
    M.row_categories = {""};
    M.row_categories.insert(M.row_categories.end(), categories.begin(), categories.end());
    M.col_categories = categories;
    if (obs) obs->on_matrix(M);
    const std::string cells_path = spec.output_dir + "/cells.jsonl";
    const auto done = read_cells(cells_path);
    for (std::size_t r = 0; r < rows.size(); ++r)
        for (std::size_t c = 0; c < names.size(); ++c) {
            const auto it = done.find({rows[r], names[c]});
            if (it == done.end()) continue;
            if (it->second.value("metric", metric) != metric) continue;  // the spec's metric changed: computed again
            M.value[r][c] = it->second["value"].is_null() ? NAN : it->second["value"].get<double>();
            M.note[r][c] = it->second.value("note", "");
            if (obs) obs->on_cell(r, c, M.value[r][c], M.note[r][c]);
        }

    // One model per head shape (label words: the MLM head, key 0), with the delta attached.
    struct Slot {
        LoadedModel model;
        std::unique_ptr<DeltaSet> deltas;
        Snapshot live, init;
    };
    std::map<std::int64_t, Slot> slots;
    auto slot_for = [&](std::size_t task) -> Slot& {
        const RunSpec& t = tasks[task];
        const bool words = !valid[task].label_word_ids.empty() || valid[task].causal_lm;
        const std::int64_t key = words ? 0 : valid[task].regression ? 1 : static_cast<std::int64_t>(valid[task].labels.size());
        auto it = slots.find(key);
        if (it != slots.end()) return it->second;
        Slot s;
        LoadOptions lo = t.load_options;
        if (!words && lo.num_labels <= 0) lo.num_labels = key;
        s.model = load_model(t.model, lo);
        s.deltas = std::make_unique<DeltaSet>(DeltaSet::apply(*s.model.model, t.delta));
        s.live = trainable(*s.model.model);
        s.init = clone(s.live);
        return slots.emplace(key, std::move(s)).first->second;
    };
    for (std::size_t r = 0; r < rows.size(); ++r) {
        for (std::size_t c = 0; c < names.size(); ++c) {
            if (M.has(r, c) || !M.note[r][c].empty()) continue;
            if (control && control->cancel) return M;
            const std::size_t src = r - 1;
            const auto t0 = std::chrono::steady_clock::now();
            double v = NAN;
            std::string why;
            if (r > 0 && !path_exists(checkpoints[src] + "/trainable.safetensors")) {
                continue;  // not trained (stopped): stays empty, filled in when resumed
            } else if (r > 0 && valid[c].label_word_ids.empty() && valid[src].labels != valid[c].labels) {
                why = "label sets differ: a classification-head delta only transfers between tasks with the same labels";
            } else {
                Slot& s = slot_for(c);
                assign(s.live, r == 0 ? s.init : read_checkpoint(s.live, checkpoints[src]));
                v = evaluate_on(*s.model.model, valid[c], tasks[c].training, spec.metric);
            }
            M.value[r][c] = v;
            M.note[r][c] = why;
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            nlohmann::json cell = {{"row", rows[r]}, {"col", names[c]}, {"value", std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr)},
                                   {"metric", metric}, {"seconds", secs}};
            if (!why.empty()) cell["note"] = why;
            append_line(cells_path, cell.dump());
            write_matrix(M, spec.output_dir);
            if (obs) obs->on_cell(r, c, v, why);
        }
    }
    write_matrix(M, spec.output_dir);
    return M;
}

namespace {
int layer_of(const std::string& name) {
    static const std::regex re(R"((^|\.)(layer|layers|h|block)\.(\d+)\.)");
    std::smatch m;
    return std::regex_search(name, m, re) ? std::stoi(m[3].str()) : -1;
}
}  // namespace

AblationResult run_layer_ablation(const std::string& run_spec_path, const std::string& checkpoint_dir, const std::string& output_dir,
                                  std::size_t max_eval_examples, ExperimentObserver* obs, TrainControl* control) {
    make_dirs(output_dir);
    RunSpec spec = RunSpec::load(run_spec_path);
    PreparedRun p = prepare_run(spec);
    Dataset data = first_n(p.valid, max_eval_examples);
    if (data.examples.empty()) throw Error("the run's task has no validation data", run_spec_path);
    TransformerModel& model = *p.model.model;
    Snapshot live = trainable(model), init = clone(live), trained = read_checkpoint(live, checkpoint_dir);
    const std::int64_t L = model.config().get_int_or("num_hidden_layers", model.config().get_int_or("n_layer", 0));
    if (L <= 0) throw Error("the model's config has no num_hidden_layers", spec.model);
    std::vector<std::string> layers;
    for (std::int64_t i = 0; i < L; ++i) layers.push_back(std::to_string(i));
    AblationResult res;
    for (const auto& [name, value] : trained)
        if (layer_of(name) < 0) {
            res.outside_layers += value.numel();
            res.outside_layer_tensors.push_back(name);
        }
    res.matrix = empty_matrix("ablation", primary_metric(data), layers, layers);
    if (obs) obs->on_matrix(res.matrix);
    auto eval_with = [&](std::int64_t from, std::int64_t to) {
        Snapshot mix = clone(trained);
        for (std::size_t k = 0; k < mix.size(); ++k) {
            const int l = layer_of(mix[k].first);
            if (l >= from && l <= to) mix[k].second = init[k].second;
        }
        assign(live, mix);
        return evaluate_on(model, data, spec.training);
    };
    res.with_delta = eval_with(1, 0);  // nothing removed
    assign(live, init);
    res.without_delta = evaluate_on(model, data, spec.training);
    const std::string cells_path = output_dir + "/cells.jsonl";
    const auto done = read_cells(cells_path);
    for (std::int64_t i = 0; i < L; ++i)
        for (std::int64_t j = i; j < L; ++j) {
            const auto it = done.find({layers[static_cast<std::size_t>(i)], layers[static_cast<std::size_t>(j)]});
            double v;
            if (it != done.end() && it->second["value"].is_number()) {
                v = it->second["value"].get<double>();
            } else {
                if (control && control->cancel) return res;
                v = eval_with(i, j);
                append_line(cells_path, nlohmann::json{{"row", layers[static_cast<std::size_t>(i)]},
                                                       {"col", layers[static_cast<std::size_t>(j)]},
                                                       {"value", v}}.dump());
            }
            res.matrix.value[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = v;
            if (obs) obs->on_cell(static_cast<std::size_t>(i), static_cast<std::size_t>(j), v, "");
            nlohmann::json out = res.matrix.to_json();
            out["with_delta"] = res.with_delta;
            out["without_delta"] = res.without_delta;
            out["outside_layers"] = res.outside_layers;
            out["outside_layer_tensors"] = res.outside_layer_tensors;
            write_file_atomic(output_dir + "/matrix.json", out.dump(1) + "\n");
            write_file_atomic(output_dir + "/matrix.csv", res.matrix.to_csv());
        }
    assign(live, trained);
    return res;
}

std::vector<bool> pareto_front(const std::vector<std::pair<double, double>>& pts) {
    std::vector<bool> front(pts.size(), true);
    for (std::size_t i = 0; i < pts.size(); ++i)
        for (std::size_t k = 0; k < pts.size() && front[i]; ++k) {
            if (k == i) continue;
            const bool no_worse = pts[k].first <= pts[i].first && pts[k].second >= pts[i].second;
            const bool better = pts[k].first < pts[i].first || pts[k].second > pts[i].second;
            if (no_worse && better) front[i] = false;
        }
    return front;
}

}  // namespace dt
