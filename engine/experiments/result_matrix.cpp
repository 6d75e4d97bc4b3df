// ResultMatrix: relative values, JSON and CSV; the primary metric of a task and the Pareto front.
#include "experiments/result_matrix.h"

#include "core/error.h"

#include <cstdio>
#include <sstream>

namespace dt {
namespace {

std::string matrix_csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string o = "\"";
    for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
    return o + "\"";
}

std::string matrix_csv_number(double v) {
    if (!std::isfinite(v)) return "";
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", v);
    return b;
}

}  // namespace

std::string primary_metric(const Dataset& d) {
    if (d.seq2seq) return !d.target_words.empty() ? "accuracy" : d.tokenizer ? "exact_match" : "loss";
    return d.regression ? "pearson" : d.causal_lm || d.masked_lm ? "loss" : "accuracy";
}

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
    if (!col_metrics.empty()) j["col_metrics"] = col_metrics;
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
        m.col_metrics = j.value("col_metrics", std::vector<std::string>{});
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
    for (const auto& c : cols) o << "," << matrix_csv_field(c);
    o << "\n";
    for (std::size_t r = 0; r < rows.size(); ++r) {
        o << matrix_csv_field(rows[r]) << "," << matrix_csv_field(r < row_categories.size() ? row_categories[r] : "");
        for (std::size_t c = 0; c < cols.size(); ++c) o << "," << matrix_csv_number(value[r][c]);
        o << "\n";
    }
    return o.str();
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
