#include "experiments/comparison.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "delta/method.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "models/model.h"
#include "train/events.h"
#include "train/run.h"
#include "train/run_folder.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace dt {
namespace {

const std::map<std::string, std::string>& size_fields() {
    static const std::map<std::string, std::string> f = {
        {"lora", "r"}, {"adapter", "size"}, {"prefix", "num_virtual_tokens"}, {"prompt", "num_virtual_tokens"}, {"last_layers", "num_layers"}};
    return f;
}

std::int64_t trainable_count(TransformerModel& model, const nlohmann::json& spec) {
    DeltaSet set = DeltaSet::apply(model, DeltaSpec::from_json(spec, "budget matching"));
    const std::int64_t n = set.accounting(model).trainable_params;
    set.remove(model);
    return n;
}

bool plain_name(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    return s[0] != '.';
}

class CurveRecorder : public TrainObserver {
public:
    CurveRecorder(ComparisonObserver* obs, std::string method, std::string metric)
        : obs_(obs), method_(std::move(method)), metric_(std::move(metric)) {}
    void on_step(const StepEvent& e) override { elapsed_ = e.elapsed_s; }
    void on_eval(const EvalEvent& e) override {
        const auto it = e.metrics.find(metric_);
        if (it == e.metrics.end()) return;
        CurvePoint p{e.step, elapsed_, it->second};
        curve.push_back(p);
        if (obs_) obs_->on_point(method_, p);
    }
    std::vector<CurvePoint> curve;

private:
    ComparisonObserver* obs_;
    std::string method_, metric_;
    double elapsed_ = 0;
};

// A method's curve from its events.jsonl: the metric at each evaluation, the last line of each step
// winning (a resumed run evaluates again the steps a killed one had reached), with the elapsed time
// of the step line before it.
std::vector<CurvePoint> curve_from_events(const std::string& path, const std::string& metric) {
    std::map<std::int64_t, CurvePoint> by_step;
    std::ifstream f(path);
    std::string line;
    double elapsed = 0;
    EventLine e;
    while (std::getline(f, line)) {
        if (!parse_event_line(line.data(), line.data() + line.size(), e)) continue;
        if (e.kind == "step") elapsed = e.step.elapsed_s;
        if (e.kind != "eval") continue;
        const auto it = e.eval.metrics.find(metric);
        if (it != e.eval.metrics.end()) by_step[e.eval.step] = CurvePoint{e.eval.step, elapsed, it->second};
    }
    std::vector<CurvePoint> out;
    for (const auto& [step, p] : by_step) out.push_back(p);
    return out;
}

}  // namespace

CompareSpec CompareSpec::from_json(const nlohmann::json& j, const std::string& source, const std::string& base) {
    if (!j.is_object()) throw Error("a comparison spec must be a JSON object", source);
    for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key() != "model" && it.key() != "task" && it.key() != "methods" && it.key() != "budget" && it.key() != "training" &&
            it.key() != "output_dir")
            throw Error("unknown field '" + it.key() + "'", source, "accepted: model, task, methods, budget, training, output_dir");
    CompareSpec s;
    s.source = source;
    s.base_dir = base;
    s.model = json::get_string(j, "model", source);
    if (!j.contains("task") || !(j["task"].is_string() || j["task"].is_object()))
        throw Error("missing field 'task'", source, "a task.json path or a task object");
    s.task = j["task"];
    s.training = j.value("training", nlohmann::json::object());
    s.budget = json::get_int_or(j, "budget", 0, source);
    if (s.budget < 0) throw Error("field 'budget' must be >= 0", source);
    s.output_dir = resolve_path(json::get_string(j, "output_dir", source), base);
    if (!j.contains("methods") || !j["methods"].is_array() || j["methods"].empty())
        throw Error("field 'methods' must list the methods to compare", source, "e.g. [\"lora\", \"adapter\", \"bitfit\"]");
    for (std::size_t i = 0; i < j["methods"].size(); ++i) {
        const auto& m = j["methods"][i];
        const std::string where = source + ": methods[" + std::to_string(i) + "]";
        Method out;
        if (m.is_string()) {
            out.delta = {{"method", m.get<std::string>()}};
            out.name = m.get<std::string>();
        } else if (m.is_object() && m.contains("delta")) {
            out.delta = m["delta"].is_string() ? nlohmann::json{{"method", m["delta"].get<std::string>()}} : m["delta"];
            out.name = json::get_string(m, "name", where);
        } else if (m.is_object()) {
            out.delta = m;
            out.name = json::get_string_or(m, "method", "", where);
        } else {
            throw Error("a method is a name, a delta spec object, or {\"name\", \"delta\"}", where);
        }
        // Validated now, not after the first methods have trained.
        for (const auto& meth : DeltaSpec::from_json(out.delta, where).methods) find_method(meth.value("method", std::string()), where);
        if (!plain_name(out.name))
            throw Error("method name '" + out.name + "' is not a plain folder name", where, "letters, digits, '-', '_' and '.'");
        for (const auto& o : s.methods)
            if (o.name == out.name) throw Error("two methods are named '" + out.name + "'", where, "give each a \"name\"");
        s.methods.push_back(std::move(out));
    }
    return s;
}

CompareSpec CompareSpec::load(const std::string& path) {
    const auto slash = path.find_last_of('/');
    return from_json(json::load_file(path), path, slash == std::string::npos ? std::string(".") : path.substr(0, slash));
}

nlohmann::json MethodResult::to_json() const {
    nlohmann::json c = nlohmann::json::array();
    for (const auto& p : curve) c.push_back({{"step", p.step}, {"elapsed_s", p.elapsed_s}, {"value", p.value}});
    auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
    return {{"name", name},       {"metric", metric},      {"delta", delta},        {"trainable_params", trainable_params}, {"total_params", total_params}, {"base_params", base_params},
            {"value", num(value)}, {"best", num(best)},     {"seconds", seconds},                   {"curve", c},
            {"pareto", pareto}};
}

MethodResult MethodResult::from_json(const nlohmann::json& j) {
    MethodResult r;
    r.name = j.at("name").get<std::string>();
    r.metric = j.at("metric").get<std::string>();
    r.delta = j.at("delta");
    r.trainable_params = j.at("trainable_params").get<std::int64_t>();
    r.total_params = j.at("total_params").get<std::int64_t>();
    r.base_params = j.value("base_params", std::int64_t{0});
    r.value = j.at("value").is_number() ? j["value"].get<double>() : NAN;
    r.best = j.at("best").is_number() ? j["best"].get<double>() : NAN;
    r.seconds = j.at("seconds").get<double>();
    for (const auto& p : j.at("curve")) r.curve.push_back({p.at("step").get<std::int64_t>(), p.at("elapsed_s").get<double>(), p.at("value").get<double>()});
    return r;
}

nlohmann::json ComparisonResult::to_json() const {
    nlohmann::json m = nlohmann::json::array();
    for (const auto& r : methods) m.push_back(r.to_json());
    return {{"kind", "method_comparison"}, {"task", task}, {"metric", metric}, {"budget", budget}, {"methods", m}};
}

std::string ComparisonResult::to_csv() const {
    std::ostringstream o;
    o.precision(10);
    o << "method,trainable_params,total_params," << metric << ",best_" << metric << ",seconds,pareto\n";
    for (const auto& r : methods) {
        o << r.name << "," << r.trainable_params << "," << r.total_params << ",";
        if (std::isfinite(r.value)) o << r.value;
        o << ",";
        if (std::isfinite(r.best)) o << r.best;
        o << "," << r.seconds << "," << (r.pareto ? "yes" : "no") << "\n";
    }
    return o.str();
}

nlohmann::json match_budget(TransformerModel& model, const nlohmann::json& method_spec, std::int64_t target, std::int64_t* count) {
    nlohmann::json spec = method_spec;
    const auto f = size_fields().find(spec.value("method", std::string()));
    if (f == size_fields().end() || target <= 0) {
        if (count) *count = trainable_count(model, spec);
        return spec;
    }
    const std::string& field = f->second;
    auto with = [&](std::int64_t v) {
        nlohmann::json s = spec;
        s[field] = v;
        if (field == "r" && !spec.contains("lora_alpha")) s["lora_alpha"] = 2 * v;  // keep PEFT's usual alpha = 2r ratio
        return s;
    };
    // The search stays inside the option's declared range (and the model's depth for num_layers).
    const OptionDecl& decl = find_method(spec.value("method", std::string()), "budget matching").option(field);
    std::int64_t hi_limit = static_cast<std::int64_t>(decl.max);
    if (field == "num_layers") hi_limit = std::min<std::int64_t>(hi_limit, model.num_layers());
    // The count grows with the field: find the first value at or above the target, then take
    // whichever of it and its predecessor lands closer.
    std::int64_t lo = 1, hi = hi_limit;
    while (lo < hi) {
        const std::int64_t mid = lo + (hi - lo) / 2;
        if (trainable_count(model, with(mid)) >= target) hi = mid;
        else lo = mid + 1;
    }
    std::int64_t best = lo, best_n = trainable_count(model, with(lo));
    if (lo > 1) {
        const std::int64_t n = trainable_count(model, with(lo - 1));
        if (std::llabs(n - target) <= std::llabs(best_n - target)) best = lo - 1, best_n = n;
    }
    if (count) *count = best_n;
    return with(best);
}

ComparisonResult run_method_comparison(const CompareSpec& spec, ComparisonObserver* obs, TrainControl* control) {
    make_dirs(spec.output_dir);
    const std::string results_path = spec.output_dir + "/results.jsonl";
    std::map<std::string, MethodResult> done;
    {
        std::ifstream f(results_path);
        std::string line;
        while (std::getline(f, line)) {
            try {
                auto r = MethodResult::from_json(nlohmann::json::parse(line));
                done[r.name] = r;
            } catch (const std::exception&) {
                // a line cut short by a kill: that method is trained again
            }
        }
    }
    ComparisonResult out;
    out.budget = spec.budget;
    auto publish = [&] {
        std::vector<std::pair<double, double>> pts;
        for (const auto& r : out.methods) pts.emplace_back(static_cast<double>(r.trainable_params), std::isfinite(r.value) ? r.value : -1e300);
        const auto front = pareto_front(pts);
        for (std::size_t i = 0; i < out.methods.size(); ++i) out.methods[i].pareto = front[i] && std::isfinite(out.methods[i].value);
        write_file_atomic(spec.output_dir + "/comparison.json", out.to_json().dump(1) + "\n");
        write_file_atomic(spec.output_dir + "/comparison.csv", out.to_csv());
    };
    for (const auto& m : spec.methods) {
        if (control && control->cancel) break;
        nlohmann::json j = {{"model", spec.model}, {"task", spec.task}, {"delta", m.delta}, {"training", spec.training}};
        RunSpec r = RunSpec::from_json(j, spec.source + ": " + m.name, spec.base_dir);
        if (out.task.empty()) out.task = r.task_name.empty() ? (r.task_file.empty() ? std::string("task") : r.task_file) : r.task_name;
        if (const auto it = done.find(m.name); it != done.end()) {
            out.methods.push_back(it->second);
            out.metric = it->second.metric;
            if (obs) obs->on_method(it->second);
            publish();
            continue;
        }
        if (obs) obs->on_status("training " + m.name);
        PreparedRun p = prepare_run(r);
        if (!validation_set(p)) throw Error("the task has no validation data", spec.source + ": task", "method comparison evaluates on it");
        const std::string metric = primary_metric(p.valid);
        out.metric = metric;
        nlohmann::json delta = m.delta;
        if (spec.budget > 0) {
            p.deltas.remove(*p.model.model);
            std::int64_t n = 0;
            delta = match_budget(*p.model.model, m.delta, spec.budget, &n);
            p.deltas = DeltaSet::apply(*p.model.model, DeltaSpec::from_json(delta, spec.source + ": " + m.name));
            p.spec.delta = p.deltas.spec();
        }
        const Accounting acc = p.deltas.accounting(*p.model.model);
        const std::string run_dir = spec.output_dir + "/runs/" + m.name;
        make_dirs(run_dir);
        if (p.spec.training.eval_every <= 0) p.spec.training.eval_every = TrainingDefaults::eval_every(p.spec.training.max_steps);
        CurveRecorder rec(obs, m.name, metric);
        TrainRunOptions options;
        options.save_best = false;
        // A method stopped (or killed) earlier resumes from its latest checkpoint, exactly, and its
        // curve is read back from events.jsonl; without one it trains from the start.
        const std::string latest = run_folder::holds_run(run_dir) ? run_folder::latest_name(run_dir) : std::string();
        if (!latest.empty() && run_folder::has_checkpoint(run_folder::checkpoint_path(run_dir, latest)))
            options.resume_from = run_folder::checkpoint_path(run_dir, latest);
        else
            std::remove(run_folder::events_path(run_dir).c_str());
        const auto t0 = std::chrono::steady_clock::now();
        const TrainResult res = train_run(p, run_dir, &rec, control, options);  // final checkpoint when finished
        if (res.status == "cancelled") break;
        if (!options.resume_from.empty()) rec.curve = curve_from_events(run_folder::events_path(run_dir), metric);
        MethodResult mr;
        mr.name = m.name;
        mr.metric = metric;
        mr.delta = delta;
        mr.trainable_params = acc.trainable_params;
        mr.total_params = acc.total_params;
        mr.base_params = acc.base_params;
        mr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        mr.curve = rec.curve;
        if (!mr.curve.empty()) {
            mr.value = mr.curve.back().value;
            mr.best = mr.value;
            for (const auto& c : mr.curve) mr.best = metric == "loss" ? std::min(mr.best, c.value) : std::max(mr.best, c.value);
        }
        // The trained delta, exportable like any run: spec.json + checkpoints/final.
        nlohmann::json saved = run_folder_spec(p.spec, run_dir);
        saved["delta"] = delta;
        write_file_atomic(run_folder::spec_path(run_dir), saved.dump(2) + "\n");
        append_line(results_path, mr.to_json().dump());
        out.methods.push_back(mr);
        if (obs) obs->on_method(mr);
        publish();
    }
    return out;
}

}  // namespace dt
