// `deltatune train --spec RUN.json`, `deltatune resume RUN_DIR`, `deltatune eval --spec RUN.json`.
// A run folder holds spec.json (paths resolved), events.jsonl and checkpoints/ (latest names the
// newest). Ctrl+C stops between micro-batches and writes a checkpoint to resume from.
#include "cli.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/json_util.h"
#include "tokenizers/tokenizer.h"
#include "train/run_spec.h"
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

std::string absolute(const std::string& p) {
    if (p.empty() || p[0] == '/' || is_builtin_model(p)) return p;
    char buf[4096];
    if (!::getcwd(buf, sizeof buf)) return p;
    return std::string(buf) + "/" + p;
}

class Printer : public TrainObserver {
public:
    Printer(bool json, std::int64_t max_steps) : json_(json), max_(max_steps), tty_(::isatty(2)) {}
    void on_step(const StepEvent& e) override {
        if (json_) {
            std::printf("{\"event\":\"step\",\"step\":%lld,\"loss\":%s,\"lr\":%.6g,\"grad_norm\":%.6g,\"tokens_per_s\":%.1f,\"elapsed_s\":%.3f}\n",
                        static_cast<long long>(e.step), e.skipped ? "null" : std::to_string(e.loss).c_str(), e.lr, e.grad_norm,
                        e.tokens_per_s, e.elapsed_s);
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
        nlohmann::json j = {{"event", "eval"}, {"step", e.step}};
        for (const auto& [k, v] : e.metrics) j[k] = v;
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

void warn_skipped(const PreparedRun& p) {
    for (const auto& w : p.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    for (const auto* st : {&p.train_stats, &p.valid_stats})
        if (st->skipped > 0)
            std::fprintf(stderr, "warning: skipped %zu bad line(s), e.g. %s\n", st->skipped, st->first_problems.front().c_str());
}

int run_training(PreparedRun& p, const std::string& dir, const std::string& resume_from, bool json) {
    warn_skipped(p);
    TrainConfig cfg = p.spec.training;
    cfg.run_dir = dir;
    if (cfg.checkpoint_every <= 0) cfg.checkpoint_every = std::max<std::int64_t>(1, cfg.max_steps / 10);
    Printer printer(json, cfg.max_steps);
    Trainer trainer(*p.model.model, p.train, p.spec.validation_file.empty() ? nullptr : &p.valid, cfg, &printer);
    if (!resume_from.empty()) trainer.load_checkpoint(resume_from);
    const Accounting acc = p.deltas.accounting(*p.model.model);
    if (!json) std::fprintf(stderr, "%s\n", acc.summary().c_str());
    TrainControl control;
    g_control = &control;
    auto old = std::signal(SIGINT, on_sigint);
    TrainResult res;
    try {
        res = trainer.run(&control);
    } catch (...) {
        std::signal(SIGINT, old);
        g_control = nullptr;
        throw;
    }
    std::signal(SIGINT, old);
    g_control = nullptr;
    if (res.status != "stopped_nonfinite")
        trainer.save_checkpoint(dir + "/checkpoints/" + (res.status == "finished" ? std::string("final") : "step-" + std::to_string(res.steps)));
    nlohmann::json summary = {{"event", "done"}, {"status", res.status}, {"steps", res.steps}, {"skipped", res.skipped}, {"run_dir", dir}};
    for (const auto& [k, v] : res.last_metrics) summary[k] = v;
    if (json) std::printf("%s\n", summary.dump().c_str());
    else std::fprintf(stderr, "\n%s\n", summary.dump().c_str());
    return res.status == "stopped_nonfinite" ? 1 : 0;
}

}  // namespace

int cmd_train(const Args& a) {
    if (!a.has("--spec")) throw Error("needs --spec RUN.json", "train");
    RunSpec spec = RunSpec::load(a.value("--spec"));
    // Continue from an exported delta (or train another method) without editing the spec.
    if (a.has("--delta")) spec.set_delta(absolute(a.value("--delta")), ".", "--delta");
    const std::string dir = absolute(a.has("--out") ? a.value("--out") : spec.output_dir);
    if (dir.empty()) throw Error("no output folder", a.value("--spec") + ": output_dir", "set output_dir or pass --out DIR");
    if (path_exists(dir + "/checkpoints"))
        throw Error("the run folder already holds a run", dir, "resume it with 'deltatune resume " + dir + "' or choose another folder");
    PreparedRun p = prepare_run(spec);
    ::mkdir(dir.c_str(), 0755);
    if (!path_exists(dir)) throw Error("cannot create the run folder", dir);
    nlohmann::json saved = spec.resolved_json();
    saved["output_dir"] = dir;
    write_file_atomic(dir + "/spec.json", saved.dump(2) + "\n");
    return run_training(p, dir, "", a.has("--json"));
}

int cmd_resume(const Args& a) {
    if (a.positional.size() != 1) throw Error("needs RUN_DIR", "resume");
    const std::string dir = absolute(a.positional[0]);
    RunSpec spec = RunSpec::load(dir + "/spec.json");
    const std::string latest = dir + "/checkpoints/latest";
    std::string name = json::read_text_file(latest, 4096);
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    if (!is_plain_file_name(name)) throw Error("does not name a checkpoint folder", latest);
    if (name == "final") throw Error("the run already finished", dir);
    PreparedRun p = prepare_run(spec);
    return run_training(p, dir, dir + "/checkpoints/" + name, a.has("--json"));
}

int cmd_eval(const Args& a) {
    if (!a.has("--spec")) throw Error("needs --spec RUN.json", "eval");
    RunSpec spec = RunSpec::load(a.value("--spec"));
    if (a.has("--delta") && a.has("--checkpoint"))
        throw Error("--delta and --checkpoint both name the delta to evaluate", "eval", "pass one of them");
    if (a.has("--delta")) spec.set_delta(absolute(a.value("--delta")), ".", "--delta");
    PreparedRun p = prepare_run(std::move(spec));
    for (const auto& w : p.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (p.spec.validation_file.empty()) throw Error("the spec has no validation file", a.value("--spec") + ": task.validation");
    Trainer t(*p.model.model, p.train, &p.valid, p.spec.training);
    if (a.has("--checkpoint")) t.load_checkpoint(a.value("--checkpoint"));
    nlohmann::json j = t.evaluate(p.valid);
    std::printf("%s\n", j.dump().c_str());
    return 0;
}

}  // namespace dt::cli
