// Helpers shared by the transfer and ablation experiments: trainable-tensor snapshots, one evaluation,
// and the cells.jsonl / matrix files through which a stopped experiment resumes.
#include "experiments/experiment_util.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "train/run_folder.h"

#include <torch/torch.h>

#include <fstream>

namespace dt::expt {

// The trainable tensors (delta parameters and saved modules), by name, in a fixed order.
Snapshot trainable(TransformerModel& m) { return named_trainable_parameters(m); }

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
    Snapshot out = run_folder::read_trainable(dir, live);
    for (std::size_t i = 0; i < out.size(); ++i) out[i].second = out[i].second.to(live[i].second.device()).clone();
    return out;
}

double evaluate_on(TransformerModel& m, const Dataset& data, const TrainConfig& cfg, const std::string& metric) {
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

}  // namespace dt::expt
