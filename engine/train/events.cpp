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
    e.step = j.value("step", std::int64_t(0));
    e.loss = number_or_nan(j, "loss");
    e.lr = number_or_nan(j, "lr");
    e.grad_norm = number_or_nan(j, "grad_norm");
    e.tokens_per_s = number_or_nan(j, "tokens_per_s");
    e.elapsed_s = number_or_nan(j, "elapsed_s");
    e.pad_fraction = number_or_nan(j, "pad_fraction");
    e.skipped = j.value("skipped", false);
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
    e.step = j.value("step", std::int64_t(0));
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
    return {j.value("status", std::string()), j.value("step", std::int64_t(0))};
}

std::string event_kind(const nlohmann::json& j) {
    if (!j.is_object()) return "";
    const std::string k = j.value("event", std::string());
    return k == "step" || k == "eval" || k == "status" ? k : "";
}

}  // namespace dt
