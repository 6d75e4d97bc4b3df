// JSON form of the training events (see events.h).
#include "train/events.h"

#include <cmath>

namespace dt {
namespace {

// JSON has no NaN or infinity: a non-finite value is written as null and read back as NaN.
nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
double number_or_nan(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : std::nan("");
}
// A step number: an integer, or a whole float within range (a float like 1e300 would overflow the
// conversion); anything else reads as `fallback`.
bool is_step_number(const nlohmann::json& v) {
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    const double d = v.get<double>();
    return std::isfinite(d) && std::fabs(d) < 9.0e18;
}
std::int64_t step_or(const nlohmann::json& j, const char* key, std::int64_t fallback = 0) {
    auto it = j.find(key);
    if (it == j.end() || !is_step_number(*it)) return fallback;
    if (it->is_number_integer()) return it->get<std::int64_t>();  // unsigned above int64 wraps, defined
    return static_cast<std::int64_t>(it->get<double>());
}

}  // namespace

nlohmann::json StepEvent::to_json() const {
    return {{"event", "step"},
            {"step", step},
            {"loss", skipped ? nlohmann::json(nullptr) : finite_or_null(loss)},
            {"lr", finite_or_null(lr)},
            {"grad_norm", finite_or_null(grad_norm)},
            {"tokens_per_s", finite_or_null(tokens_per_s)},
            {"elapsed_s", finite_or_null(elapsed_s)},
            {"pad_fraction", finite_or_null(pad_fraction)},
            {"skipped", skipped}};
}

StepEvent StepEvent::from_json(const nlohmann::json& j) {
    StepEvent e;
    e.step = step_or(j, "step");
    e.loss = number_or_nan(j, "loss");
    e.lr = number_or_nan(j, "lr");
    e.grad_norm = number_or_nan(j, "grad_norm");
    e.tokens_per_s = number_or_nan(j, "tokens_per_s");
    e.elapsed_s = number_or_nan(j, "elapsed_s");
    e.pad_fraction = number_or_nan(j, "pad_fraction");
    const auto sk = j.find("skipped");
    e.skipped = sk != j.end() && sk->is_boolean() && sk->get<bool>();
    return e;
}

nlohmann::json EvalEvent::to_json() const {
    nlohmann::json j = {{"event", "eval"}, {"step", step}};
    for (const auto& [k, v] : metrics) j[k] = finite_or_null(v);
    if (!confusion.empty())
        j["confusion"] = {{"labels", confusion.labels}, {"counts", confusion.counts}, {"unmatched", confusion.unmatched}};
    return j;
}

EvalEvent EvalEvent::from_json(const nlohmann::json& j) {
    EvalEvent e;
    e.step = step_or(j, "step");
    for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key() != "event" && it.key() != "step" && it.key() != "confusion")
            e.metrics[it.key()] = it->is_number() ? it->get<double>() : std::nan("");
    // The confusion matrix only when it is whole: K labels, K rows of K counts (a torn or edited line
    // leaves it out rather than failing the metrics).
    const auto c = j.find("confusion");
    if (c != j.end() && c->is_object()) {
        try {
            ConfusionMatrix m;
            m.labels = c->at("labels").get<std::vector<std::string>>();
            m.counts = c->at("counts").get<std::vector<std::vector<std::int64_t>>>();
            m.unmatched = c->value("unmatched", std::vector<std::int64_t>(m.labels.size(), 0));
            bool whole = m.counts.size() == m.labels.size() && m.unmatched.size() == m.labels.size();
            for (const auto& row : m.counts) whole = whole && row.size() == m.labels.size();
            if (whole) e.confusion = std::move(m);
        } catch (const nlohmann::json::exception&) {
        }
    }
    return e;
}

nlohmann::json StatusEvent::to_json() const { return {{"event", "status"}, {"status", status}, {"step", step}}; }

StatusEvent StatusEvent::from_json(const nlohmann::json& j) {
    const auto s = j.find("status");
    return {s != j.end() && s->is_string() ? s->get<std::string>() : std::string(), step_or(j, "step")};
}

std::string event_kind(const nlohmann::json& j) {
    if (!j.is_object()) return "";
    const auto e = j.find("event");
    if (e == j.end() || !e->is_string()) return "";
    const std::string& k = e->get_ref<const std::string&>();
    return k == "step" || k == "eval" || k == "status" ? k : "";
}

bool parse_event_line(const char* begin, const char* end, EventLine& out) {
    const nlohmann::json j = nlohmann::json::parse(begin, end, nullptr, false);
    out.kind = event_kind(j);
    if (out.kind.empty()) return false;
    // Without a usable step the line cannot be placed: read as step 0 it would look like a resume
    // and hide the curve before it.
    const auto st = j.find("step");
    if (st == j.end() || !is_step_number(*st)) return false;
    try {
        if (out.kind == "step") out.step = StepEvent::from_json(j);
        else if (out.kind == "eval") out.eval = EvalEvent::from_json(j);
        else out.status = StatusEvent::from_json(j);
    } catch (const nlohmann::json::exception&) {
        return false;
    }
    return true;
}

}  // namespace dt
