// The run builder and train_run() (see run.h).
#include "train/run.h"

#include "dist/collective.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "models/registry.h"
#include "train/run_folder.h"
#include "train/tensorboard.h"

namespace dt {
namespace {

// The class load_model() builds for `model` (config.json's architectures[0], else the base class).
std::string architecture_of(const std::string& model) {
    const ModelConfig cfg = is_builtin_model(model) ? builtin_config(model) : ModelConfig::load(model + "/config.json");
    return find_architecture(cfg).architecture;
}

// A classification task (no label words, not causal LM) on a masked-LM model trains a head: the
// ForSequenceClassification sibling is loaded and its classifier trains and saves with the delta.
void add_classification_head(nlohmann::json& spec, const std::string& architecture, const nlohmann::json& task) {
    const auto mlm = architecture.find("ForMaskedLM");
    if (task.contains("label_words") || task.value("type", std::string()) == "causal_lm" || mlm == std::string::npos) return;
    spec["architecture"] = architecture.substr(0, mlm) + "ForSequenceClassification";
    nlohmann::json delta = spec["delta"];
    if (delta.is_object() && delta.contains("method")) delta = {{"methods", {delta}}};
    if (delta.is_object()) delta["modules_to_save"] = {"classifier"};
    spec["delta"] = delta;
}

}  // namespace

nlohmann::json build_run_spec(const RunChoices& c) {
    nlohmann::json training = {{"max_steps", c.steps},
                               {"batch_size", c.batch_size},
                               {"lr", c.lr},
                               {"eval_every", c.eval_every > 0 ? c.eval_every : TrainingDefaults::eval_every(c.steps)}};
    if (c.grad_accum != 1) training["grad_accum"] = c.grad_accum;
    if (c.schedule != "linear") training["schedule"] = c.schedule;
    if (c.warmup_ratio != TrainingDefaults::warmup_ratio) training["warmup_ratio"] = c.warmup_ratio;
    if (c.patience > 0) training["patience"] = c.patience;
    if (c.device != "cpu") training["device"] = c.device;
    if (c.precision != "fp32") training["precision"] = c.precision;
    if (c.base_dtype != "fp32") training["base_dtype"] = c.base_dtype;
    if (c.quantize != "none") training["quantize"] = c.quantize;
    if (c.quantize != "none" && c.double_quant) training["double_quant"] = true;
    if (c.seed != 0) training["seed"] = c.seed;
    if (c.packing) training["packing"] = true;
    nlohmann::json delta = c.delta.is_string() ? nlohmann::json(absolute_path(c.delta.get<std::string>())) : c.delta;
    nlohmann::json spec = {{"model", absolute_path(c.model)}, {"task", absolute_path(c.task_file)}, {"delta", delta}, {"training", training}};
    if (c.max_length > 0) spec["max_length"] = c.max_length;
    add_classification_head(spec, architecture_of(c.model), json::load_file(c.task_file));
    return spec;
}

const Dataset* validation_set(const PreparedRun& p) { return p.valid.size() > 0 ? &p.valid : nullptr; }

void create_run_folder(const std::string& run_dir, const RunSpec& spec) {
    if (run_folder::holds_run(run_dir))
        throw Error("the run folder already holds a run", run_dir, "resume it with 'deltatune resume " + run_dir + "' or choose another folder");
    make_dirs(run_dir);
    if (!path_exists(run_dir)) throw Error("cannot create the run folder", run_dir);
    write_file_atomic(run_folder::spec_path(run_dir), run_folder_spec(spec, run_dir).dump(2) + "\n");
}

nlohmann::json run_folder_spec(const RunSpec& spec, const std::string& run_dir) {
    nlohmann::json saved = spec.resolved_json();
    saved["output_dir"] = absolute_path(run_dir);
    if (spec.load_options.num_labels > 0) saved["num_labels"] = spec.load_options.num_labels;
    return saved;
}

TrainResult train_run(PreparedRun& p, const std::string& run_dir, TrainObserver* observer, TrainControl* control,
                      const TrainRunOptions& options) {
    TrainConfig cfg = p.spec.training;
    cfg.run_dir = run_dir;
    if (cfg.checkpoint_every <= 0) cfg.checkpoint_every = TrainingDefaults::checkpoint_every(cfg.max_steps);
    if (!options.periodic_checkpoints) cfg.checkpoint_every = 0;
    cfg.save_best = cfg.save_best && options.save_best;
    if (options.grad_norms_every > 0) cfg.grad_norms_every = options.grad_norms_every;
    const bool writer = !cfg.collective || cfg.collective->rank() == 0;  // data parallel: rank 0 alone writes
    const auto counts = p.deltas.accounting(*p.model.model);
    if (writer)
        run_folder::write_info(run_dir, counts.trainable_params, counts.total_params, static_cast<std::int64_t>(p.train.size()),
                               cfg.collective ? cfg.collective->world_size() : 1);
    Trainer trainer(*p.model.model, p.train, options.evaluate ? validation_set(p) : nullptr, cfg, observer);
    if (!options.resume_from.empty()) trainer.load_checkpoint(options.resume_from);  // every rank: the same position
    TrainResult res = trainer.run(control);
    if (!writer) return res;
    if (res.status != "stopped_nonfinite")
        trainer.save_checkpoint(run_folder::checkpoint_path(run_dir, run_folder::end_name(res.status, res.steps)));
    tensorboard::export_run(run_dir);  // the curves for TensorBoard, beside events.jsonl
    return res;
}

LoadedRun open_run(const std::string& run_dir) {
    RunSpec spec = RunSpec::load(run_folder::spec_path(run_dir));
    LoadedRun r;
    if (!model_needs_data(spec)) {
        PreparedModel m = prepare_model(spec);
        r.model = std::move(m.model);
        r.deltas = std::move(m.deltas);
        r.warnings = std::move(m.warnings);
    } else {  // a run folder written before num_labels was recorded: the data gives the label count
        PreparedRun p = prepare_run(spec);
        spec = p.spec;
        r.model = std::move(p.model);
        r.deltas = std::move(p.deltas);
        r.warnings = std::move(p.warnings);
    }
    r.spec = std::move(spec);
    return r;
}

LoadedRun load_run(const std::string& run_dir, const std::string& checkpoint) {
    const std::string ckpt = run_folder::checkpoint_path(run_dir, run_folder::pick_checkpoint(run_dir, checkpoint));
    LoadedRun r = open_run(run_dir);
    run_folder::load_trainable(*r.model.model, ckpt);
    r.checkpoint = ckpt;
    return r;
}

}  // namespace dt
