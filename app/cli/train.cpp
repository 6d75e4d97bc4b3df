// `deltatune train --spec RUN.json`, `deltatune resume RUN_DIR`, `deltatune eval --spec RUN.json`,
// `deltatune spec ...` (the run builder's spec for the same choices the workbench offers). The run
// folder's layout is train/run_folder.h; Ctrl+C stops between micro-batches and writes a checkpoint
// to resume from.
#include "cli.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "dist/process_group.h"
#include "io/atomic_file.h"
#include "io/weight_set.h"
#include "io/json_util.h"
#include "tokenizers/tokenizer.h"
#include "train/run.h"
#include "train/run_folder.h"
#include "tree/module_tree.h"

#include <torch/torch.h>

#include <csignal>
#include <cstdio>
#include <sys/stat.h>
#include <unistd.h>

namespace dt::cli {
namespace {

TrainControl* g_control = nullptr;
extern "C" void on_sigint(int) {
    if (g_control) g_control->cancel = true;
}


class Printer : public TrainObserver {
public:
    Printer(bool json, std::int64_t max_steps) : json_(json), max_(max_steps), tty_(::isatty(2)) {}
    void on_step(const StepEvent& e) override {
        if (json_) {
            std::printf("%s\n", e.to_json().dump().c_str());
            std::fflush(stdout);
            return;
        }
        if (!e.skipped) ema_ = ema_ < 0 ? e.loss : 0.9 * ema_ + 0.1 * e.loss;
        const double eta = e.step > 0 ? e.elapsed_s / static_cast<double>(e.step) * static_cast<double>(max_ - e.step) : 0;
        const int width = 30, done = static_cast<int>(width * e.step / std::max<std::int64_t>(1, max_));
        if (tty_) {
            std::fprintf(stderr, "\r[%.*s%*s] %lld/%lld loss %.4f  %.0f tok/s  ETA %.0fs ", done, "##############################",
                         width - done, "", static_cast<long long>(e.step), static_cast<long long>(max_), ema_, e.tokens_per_s, eta);
        } else if (e.step % std::max<std::int64_t>(1, max_ / 10) == 0 || e.step == max_) {
            std::fprintf(stderr, "step %lld/%lld loss %.4f  %.0f tok/s  ETA %.0fs\n", static_cast<long long>(e.step),
                         static_cast<long long>(max_), ema_, e.tokens_per_s, eta);
        }
    }
    void on_eval(const EvalEvent& e) override {
        const nlohmann::json j = e.to_json();
        if (json_) std::printf("%s\n", j.dump().c_str());
        else std::fprintf(stderr, "%seval at step %lld: %s\n", tty_ ? "\n" : "", static_cast<long long>(e.step), j.dump().c_str());
    }
    void on_error(const std::string& m) override { std::fprintf(stderr, "%swarning: %s\n", tty_ && !json_ ? "\n" : "", m.c_str()); }

private:
    bool json_;
    std::int64_t max_;
    bool tty_;
    double ema_ = -1;
};

class QuietPrinter : public TrainObserver {
public:
    void on_error(const std::string& m) override { std::fprintf(stderr, "warning: %s\n", m.c_str()); }
};

void warn_skipped(const PreparedRun& p) {
    for (const auto& w : p.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    for (const auto* st : {&p.train_stats, &p.valid_stats})
        if (st->skipped > 0)
            std::fprintf(stderr, "warning: skipped %zu bad line(s), e.g. %s\n", st->skipped, st->first_problems.front().c_str());
}

// A data-parallel worker's group, from torchrun's environment (RANK, WORLD_SIZE, ...); null alone.
std::shared_ptr<Collective> join_group(const RunSpec& spec) {
    const auto env = DistEnv::from_environment();
    // One process is no group, unless a backend is named (a one-rank group: the smoke test of a backend).
    if (!env || (env->world_size == 1 && !std::getenv("DELTATUNE_DIST_BACKEND"))) return nullptr;
    auto group = init_process_group(*env, choose_backend(spec.training.device));
    std::fprintf(stderr, "joined %s\n", group->describe().c_str());
    return group;
}

int run_training(PreparedRun& p, const std::string& dir, const std::string& resume_from, bool json, std::shared_ptr<Collective> group) {
    const bool rank0 = !group || group->rank() == 0;  // the other ranks print errors only
    if (rank0) warn_skipped(p);
    p.spec.training.collective = group;
    // "cuda" alone: each rank trains on its own GPU, cuda:LOCAL_RANK, as torchrun's scripts do (after
    // the run folder's spec.json was written, so a resume picks per rank again).
    if (group && p.spec.training.device == "cuda") p.spec.training.device = "cuda:" + std::to_string(group->local_rank());
    Printer printer(json, p.spec.training.max_steps);
    QuietPrinter quiet;
    TrainObserver* observer = rank0 ? static_cast<TrainObserver*>(&printer) : &quiet;
    if (!json && rank0) std::fprintf(stderr, "%s\n", p.deltas.accounting(*p.model.model).summary().c_str());
    TrainControl control;
    g_control = &control;
    auto old = std::signal(SIGINT, on_sigint);
    TrainResult res;
    try {
        res = train_run(p, dir, observer, &control, {resume_from});
    } catch (...) {
        std::signal(SIGINT, old);
        g_control = nullptr;
        throw;
    }
    std::signal(SIGINT, old);
    g_control = nullptr;
    nlohmann::json summary = {{"event", "done"}, {"status", res.status}, {"steps", res.steps}, {"skipped", res.skipped}, {"run_dir", dir}};
    for (const auto& [k, v] : res.last_metrics) summary[k] = v;
    if (group) {
        summary["world_size"] = group->world_size();
        summary["allreduce_bytes_per_step"] = res.allreduce_bytes;
        summary["eval_examples_this_rank"] = res.eval_examples;
        summary["allreduce_ms_per_step"] = res.allreduces > 0 ? 1e3 * res.allreduce_seconds / static_cast<double>(res.allreduces) : 0.0;
    }
    if (!rank0) return res.status == "stopped_nonfinite" ? 1 : 0;
    if (json) std::printf("%s\n", summary.dump().c_str());
    else std::fprintf(stderr, "\n%s\n", summary.dump().c_str());
    return res.status == "stopped_nonfinite" ? 1 : 0;
}

}  // namespace

int cmd_train(const Args& a) {
    if (!a.has("--spec")) throw Error("needs --spec RUN.json", "train");
    RunSpec spec = RunSpec::load(a.value("--spec"));
    // Continue from an exported delta (or train another method) without editing the spec.
    if (a.has("--delta")) spec.set_delta(absolute_path(a.value("--delta")), ".", "--delta");
    const std::string dir = absolute_path(a.has("--out") ? a.value("--out") : spec.output_dir);
    if (dir.empty()) throw Error("no output folder", a.value("--spec") + ": output_dir", "set output_dir or pass --out DIR");
    auto group = join_group(spec);
    const bool rank0 = !group || group->rank() == 0;
    if (rank0 && run_folder::holds_run(dir))
        throw Error("the run folder already holds a run", dir, "resume it with 'deltatune resume " + dir + "' or choose another folder");
    PreparedRun p = prepare_run(spec);
    if (rank0) create_run_folder(dir, p.spec);  // rank 0 alone writes the run folder
    return run_training(p, dir, "", a.has("--json"), group);
}

int cmd_resume(const Args& a) {
    if (a.positional.size() != 1) throw Error("needs RUN_DIR", "resume");
    const std::string dir = absolute_path(a.positional[0]);
    RunSpec spec = RunSpec::load(run_folder::spec_path(dir));
    const std::string name = run_folder::latest_name(dir);
    if (name.empty()) throw Error("no checkpoint to resume from", run_folder::latest_path(dir), "train it again with 'deltatune train'");
    if (name == run_folder::kFinal) throw Error("the run already finished", dir);
    auto group = join_group(spec);
    PreparedRun p = prepare_run(spec);
    return run_training(p, dir, run_folder::checkpoint_path(dir, name), a.has("--json"), group);
}

int cmd_eval(const Args& a) {
    if (!a.has("--spec")) throw Error("needs --spec RUN.json", "eval");
    RunSpec spec = RunSpec::load(a.value("--spec"));
    if (a.has("--delta") && a.has("--checkpoint"))
        throw Error("--delta and --checkpoint both name the delta to evaluate", "eval", "pass one of them");
    if (a.has("--delta")) spec.set_delta(absolute_path(a.value("--delta")), ".", "--delta");
    PreparedRun p = prepare_run(std::move(spec));
    for (const auto& w : p.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const Dataset* valid = validation_set(p);
    if (!valid)
        throw Error("the spec has no validation file", a.value("--spec") + ": task.validation", "add task.validation or task.validation_split");
    if (a.has("--checkpoint")) run_folder::load_trainable(*p.model.model, a.value("--checkpoint"));
    Trainer t(*p.model.model, p.train, valid, p.spec.training);
    nlohmann::json j = t.evaluate(*valid);
    std::printf("%s\n", j.dump().c_str());
    return 0;
}

int cmd_spec(const Args& a) {
    if (!a.has("--model") || !a.has("--task")) throw Error("needs --model MODEL and --task TASK.json", "spec");
    RunChoices c;
    c.model = absolute_path(a.value("--model"));
    c.task_file = absolute_path(a.value("--task"));
    const std::string delta = a.value("--delta", "lora");
    // A .json file is embedded (a method or delta spec, as the workbench writes it); a folder stays a
    // path (an exported delta to continue from); anything else names a method with its defaults.
    if (delta.size() > 5 && delta.compare(delta.size() - 5, 5, ".json") == 0) c.delta = json::load_file(delta);
    else if (path_exists(delta)) c.delta = absolute_path(delta);
    else c.delta = {{"method", delta}};
    c.steps = a.int_value("--steps", static_cast<int>(c.steps));
    c.batch_size = a.int_value("--batch", static_cast<int>(c.batch_size));
    c.lr = a.number_value("--lr", c.lr);
    c.device = a.value("--device", c.device);
    c.precision = a.value("--precision", c.precision);
    c.seed = static_cast<std::uint64_t>(a.int_value("--seed", 0));
    nlohmann::json spec = build_run_spec(c);
    if (a.has("--out")) spec["output_dir"] = absolute_path(a.value("--out"));
    std::printf("%s\n", spec.dump(2).c_str());
    return 0;
}

}  // namespace dt::cli
