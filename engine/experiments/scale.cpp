#include "experiments/scale.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "models/loader.h"
#include "train/run_spec.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace dt {
namespace {

// Method names carry the model's name to the observer.
class PrefixedObserver : public ComparisonObserver {
public:
    PrefixedObserver(ComparisonObserver* inner, std::string prefix) : inner_(inner), prefix_(std::move(prefix)) {}
    void on_status(const std::string& s) override {
        if (inner_) inner_->on_status(prefix_ + ": " + s);
    }
    void on_point(const std::string& method, const CurvePoint& p) override {
        if (inner_) inner_->on_point(prefix_ + "/" + method, p);
    }
    void on_method(const MethodResult& r) override {
        if (!inner_) return;
        MethodResult named = r;
        named.name = prefix_ + "/" + r.name;
        inner_->on_method(named);
    }

private:
    ComparisonObserver* inner_;
    std::string prefix_;
};

std::string folder_name(const std::string& path) {
    std::string p = path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    const auto slash = p.find_last_of('/');
    return slash == std::string::npos ? p : p.substr(slash + 1);
}

void put_number(std::ostringstream& o, double v) {
    if (std::isfinite(v)) o << v;
}

}  // namespace

ScaleSpec ScaleSpec::from_json(const nlohmann::json& j, const std::string& source, const std::string& base) {
    if (!j.is_object()) throw Error("a scale spec must be a JSON object", source);
    for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key() != "models" && it.key() != "task" && it.key() != "methods" && it.key() != "budget" && it.key() != "training" &&
            it.key() != "output_dir")
            throw Error("unknown field '" + it.key() + "'", source, "accepted: models, task, methods, budget, training, output_dir");
    if (!j.contains("models") || !j["models"].is_array() || j["models"].size() < 2)
        throw Error("field 'models' must list at least two models (the sizes to compare)", source,
                    "e.g. [\"models/synth-t5-small\", \"models/synth-t5-base\"]");
    ScaleSpec s;
    for (std::size_t i = 0; i < j["models"].size(); ++i) {
        const auto& m = j["models"][i];
        const std::string where = source + ": models[" + std::to_string(i) + "]";
        Model out;
        if (m.is_string()) {
            out.model = m.get<std::string>();
            out.name = folder_name(out.model);
        } else if (m.is_object()) {
            out.model = json::get_string(m, "model", where);
            out.name = json::get_string_or(m, "name", folder_name(out.model), where);
        } else {
            throw Error("a model is a folder or {\"name\", \"model\"}", where);
        }
        if (!is_builtin_model(out.model)) out.model = resolve_path(out.model, base);
        if (out.name.empty() || out.name.find('/') != std::string::npos || out.name[0] == '.')
            throw Error("model name '" + out.name + "' is not a plain folder name", where, "give it a \"name\"");
        for (const auto& o : s.models)
            if (o.name == out.name) throw Error("two models are named '" + out.name + "'", where, "give each a \"name\"");
        s.models.push_back(std::move(out));
    }
    nlohmann::json c = j;
    c.erase("models");
    c["model"] = s.models.front().model;  // validated per model when it runs
    s.compare = CompareSpec::from_json(c, source, base);
    return s;
}

ScaleSpec ScaleSpec::load(const std::string& path) {
    const auto slash = path.find_last_of('/');
    return from_json(json::load_file(path), path, slash == std::string::npos ? std::string(".") : path.substr(0, slash));
}

nlohmann::json ScaleResult::to_json() const {
    nlohmann::json sizes_j = nlohmann::json::array();
    for (const auto& s : sizes)
        sizes_j.push_back({{"name", s.name}, {"model", s.model}, {"parameters", s.parameters}, {"comparison", s.methods.to_json()}});
    return {{"kind", "scale"}, {"task", task}, {"metric", metric}, {"sizes", sizes_j}};
}

std::string ScaleResult::to_csv() const {
    std::ostringstream o;
    o.precision(10);
    o << "model,parameters,method,trainable_params," << metric << ",best_" << metric << ",seconds\n";
    for (const auto& s : sizes)
        for (const auto& m : s.methods.methods) {
            o << s.name << "," << s.parameters << "," << m.name << "," << m.trainable_params << ",";
            put_number(o, m.value);
            o << ",";
            put_number(o, m.best);
            o << "," << m.seconds << "\n";
        }
    return o.str();
}

std::string ScaleResult::curves_csv() const {
    std::ostringstream o;
    o.precision(10);
    o << "model,method,step,elapsed_s," << metric << "\n";
    for (const auto& s : sizes)
        for (const auto& m : s.methods.methods)
            for (const auto& p : m.curve) {
                o << s.name << "," << m.name << "," << p.step << "," << p.elapsed_s << ",";
                put_number(o, p.value);
                o << "\n";
            }
    return o.str();
}

ScaleResult run_scale(const ScaleSpec& spec, ComparisonObserver* obs, TrainControl* control) {
    make_dirs(spec.compare.output_dir);
    ScaleResult out;
    auto publish = [&] {
        write_file_atomic(spec.compare.output_dir + "/scale.json", out.to_json().dump(1) + "\n");
        write_file_atomic(spec.compare.output_dir + "/scale.csv", out.to_csv());
        write_file_atomic(spec.compare.output_dir + "/scale_curves.csv", out.curves_csv());
    };
    for (const auto& m : spec.models) {
        if (control && control->cancel) break;
        CompareSpec c = spec.compare;
        c.model = m.model;
        c.output_dir = spec.compare.output_dir + "/" + m.name;
        PrefixedObserver prefixed(obs, m.name);
        ScaleResult::Size size;
        size.name = m.name;
        size.model = m.model;
        size.methods = run_method_comparison(c, &prefixed, control);
        for (const auto& r : size.methods.methods) size.parameters = std::max(size.parameters, r.base_params);
        if (out.task.empty()) out.task = size.methods.task;
        if (!size.methods.metric.empty()) out.metric = size.methods.metric;
        out.sizes.push_back(std::move(size));
        publish();
    }
    return out;
}

}  // namespace dt
