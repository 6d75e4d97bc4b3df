// The layer ablation experiment: a trained delta's parameters reset layer range by layer range, each
// range's metric one cell; resumable through cells.jsonl.
#include "experiments/ablation.h"

#include "core/error.h"
#include "experiments/experiment_util.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "models/model.h"
#include "train/run_spec.h"

#include <torch/torch.h>

#include <regex>

namespace dt {
namespace {

int ablation_layer_of(const std::string& name) {
    static const std::regex re(R"((^|\.)(layer|layers|h|block)\.(\d+)\.)");
    std::smatch m;
    return std::regex_search(name, m, re) ? std::stoi(m[3].str()) : -1;
}

// matrix.json carries the intact delta, the bare model and the tensors outside every layer too.
void write_ablation(const AblationResult& res, const std::string& output_dir) {
    nlohmann::json out = res.matrix.to_json();
    out["with_delta"] = res.with_delta;
    out["without_delta"] = res.without_delta;
    out["outside_layers"] = res.outside_layers;
    out["outside_layer_tensors"] = res.outside_layer_tensors;
    write_file_atomic(output_dir + "/matrix.json", out.dump(1) + "\n");
    write_file_atomic(output_dir + "/matrix.csv", res.matrix.to_csv());
}

}  // namespace

AblationResult run_layer_ablation(const std::string& run_spec_path, const std::string& checkpoint_dir, const std::string& output_dir,
                                  std::size_t max_eval_examples, ExperimentObserver* obs, TrainControl* control) {
    using expt::Snapshot;
    make_dirs(output_dir);
    RunSpec spec = RunSpec::load(run_spec_path);
    PreparedRun p = prepare_run(spec);
    Dataset data = expt::first_n(p.valid, max_eval_examples);
    if (data.examples.empty()) throw Error("the run's task has no validation data", run_spec_path);
    TransformerModel& model = *p.model.model;
    Snapshot live = expt::trainable(model), init = expt::clone(live), trained = expt::read_checkpoint(live, checkpoint_dir);
    const std::int64_t L = model.config().get_int_or("num_hidden_layers", model.config().get_int_or("n_layer", 0));
    if (L <= 0) throw Error("the model's config has no num_hidden_layers", spec.model);
    std::vector<std::string> layers;
    for (std::int64_t i = 0; i < L; ++i) layers.push_back(std::to_string(i));
    AblationResult res;
    for (const auto& [name, value] : trained)
        if (ablation_layer_of(name) < 0) {
            res.outside_layers += value.numel();
            res.outside_layer_tensors.push_back(name);
        }
    res.matrix = expt::empty_matrix("ablation", primary_metric(data), layers, layers);
    if (obs) obs->on_matrix(res.matrix);
    auto eval_with = [&](std::int64_t from, std::int64_t to) {
        Snapshot mix = expt::clone(trained);
        for (std::size_t k = 0; k < mix.size(); ++k) {
            const int l = ablation_layer_of(mix[k].first);
            if (l >= from && l <= to) mix[k].second = init[k].second;
        }
        expt::assign(live, mix);
        return expt::evaluate_on(model, data, spec.training);
    };
    res.with_delta = eval_with(1, 0);  // nothing removed
    expt::assign(live, init);
    res.without_delta = expt::evaluate_on(model, data, spec.training);
    const std::string cells_path = output_dir + "/cells.jsonl";
    const auto done = expt::read_cells(cells_path);
    for (std::int64_t i = 0; i < L; ++i)
        for (std::int64_t j = i; j < L; ++j) {
            const std::string& row = layers[static_cast<std::size_t>(i)];
            const std::string& col = layers[static_cast<std::size_t>(j)];
            const auto it = done.find({row, col});
            double v;
            if (it != done.end() && it->second["value"].is_number()) {
                v = it->second["value"].get<double>();
            } else {
                if (control && control->cancel) return res;
                v = eval_with(i, j);
                append_line(cells_path, nlohmann::json{{"row", row}, {"col", col}, {"value", v}}.dump());
            }
            res.matrix.value[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = v;
            if (obs) obs->on_cell(static_cast<std::size_t>(i), static_cast<std::size_t>(j), v, "");
            write_ablation(res, output_dir);
        }
    expt::assign(live, trained);
    return res;
}

}  // namespace dt
