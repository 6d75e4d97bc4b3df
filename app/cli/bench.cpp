// `deltatune bench load MODEL`: load time from the page cache against `cat FILES > /dev/null` on the
// same files, interleaved in one run, medians reported. The figure of merit is the ratio.
#include "cli.h"

#include "core/error.h"
#include "core/process_usage.h"
#include "delta/delta_set.h"
#include "train/run.h"
#include "train/run_spec.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>
#include "io/weight_set.h"
#include "models/loader.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace dt::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double time_cat(const std::vector<std::string>& files) {
    std::vector<char*> argv;
    std::string cat = "cat";
    argv.push_back(cat.data());
    std::vector<std::string> copies = files;
    for (auto& f : copies) argv.push_back(f.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    auto t0 = std::chrono::steady_clock::now();
    pid_t pid = 0;
    if (posix_spawnp(&pid, "cat", &fa, nullptr, argv.data(), environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        throw Error("cannot run cat", "bench");
    }
    int status = 0;
    waitpid(pid, &status, 0);
    const double dt = seconds_since(t0);
    posix_spawn_file_actions_destroy(&fa);
    return dt;
}

}  // namespace

int cmd_bench_step(const Args& a);

// `deltatune bench memory --spec RUN.json [--batch B]`: one real training step of the run spec at
// batch B (the spec's by default), then the process's memory as JSON: the resident set after loading
// and the peak (loading included). The workbench's "Will it fit" runs it in a child process per batch.
static int cmd_bench_memory(const Args& a) {
    if (!a.has("--spec")) throw Error("needs --spec RUN.json", "bench memory", "deltatune bench memory --spec RUN.json --batch 16");
    RunSpec spec = RunSpec::load(a.value("--spec"));
    if (a.has("--batch")) {
        spec.training.batch_size = a.int_value("--batch", 0);
        if (spec.training.batch_size <= 0) throw Error("must be a positive integer", "--batch");
    }
    spec.training.max_steps = 1;
    spec.training.grad_accum = 1;
    spec.training.eval_every = 0;
    spec.training.checkpoint_every = 0;
    spec.training.save_best = false;
    PreparedRun p = prepare_run(spec);
    const ProcessUsage loaded = process_usage();
    TrainConfig cfg = p.spec.training;
    cfg.run_dir.clear();
    Trainer t(*p.model.model, p.train, nullptr, cfg);
    const TrainResult res = t.run();
    const ProcessUsage after = process_usage();
    // The budget's estimate of what a step adds (gradients, AdamW state, activations) beside what the
    // step added to the resident set, for the batch and the longest example it can hold.
    const Accounting acc = p.deltas.accounting(*p.model.model);
    std::size_t longest = 1;
    for (const auto& ex : p.train.examples) longest = std::max(longest, ex.ids.size());
    const auto seq = static_cast<std::int64_t>(p.spec.text.max_length > 0 ? std::min(longest, p.spec.text.max_length) : longest);
    // 4 bytes a value whatever the precision, as the budget counts: CPU bf16 autocast keeps the fp32
    // activations beside their bf16 copies (measured: a 2-byte count misses half of the step).
    const std::int64_t activations = estimate_activation_bytes(*p.model.model, cfg.batch_size, seq, 4);
    const std::int64_t estimate = acc.gradient_bytes + acc.adamw_bytes + activations;
    const std::int64_t measured = after.peak_rss_bytes - loaded.rss_bytes;
    const nlohmann::json out = {{"batch", cfg.batch_size},
                                {"max_length", p.spec.text.max_length},
                                {"seq_len", seq},
                                {"status", res.status},
                                {"rss_after_load_bytes", loaded.rss_bytes},
                                {"peak_rss_bytes", after.peak_rss_bytes},
                                {"step_measured_bytes", measured},
                                {"step_estimate_bytes", estimate},
                                {"activation_estimate_bytes", activations},
                                {"measured_over_estimate", estimate > 0 ? static_cast<double>(measured) / static_cast<double>(estimate) : 0.0}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

int cmd_bench(const Args& a) {
    if (a.positional.size() == 1 && a.positional[0] == "memory") return cmd_bench_memory(a);
    if (a.positional.size() == 2 && (a.positional[0] == "step" || a.positional[0] == "train")) return cmd_bench_step(a);
    if (!a.positional.empty() && a.positional[0] == "tokenize") return cmd_bench_tokenize(a);
    if (a.positional.size() != 2 || a.positional[0] != "load")
        throw Error("usage: deltatune bench load MODEL_DIR [--runs N] | bench step MODEL --delta SPEC...", "bench");
    const std::string dir = a.positional[1];
    const int runs = std::max(1, a.int_value("--runs", 7));
    std::vector<std::string> files;
    {
        WeightSet w = WeightSet::open_folder(dir);
        for (const auto& f : w.files()) files.push_back(f->path());
    }
    files.push_back(dir + "/config.json");
    std::uint64_t bytes = 0;
    { bytes = WeightSet::open_folder(dir).total_file_bytes(); }
    load_model(dir);  // warm the page cache
    time_cat(files);
    std::vector<double> t_load, t_cat;
    for (int r = 0; r < runs; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        auto m = load_model(dir);
        t_load.push_back(seconds_since(t0));
        t_cat.push_back(time_cat(files));
    }
    const double ml = median(t_load), mc = median(t_cat);
    std::printf("model: %s (%.1f MiB of weights, %zu file(s))\n", dir.c_str(), bytes / 1048576.0, files.size() - 1);
    std::printf("runs: %d, interleaved\n", runs);
    std::printf("load  median %8.1f ms  (min %.1f, max %.1f)  %.0f MiB/s\n", ml * 1e3,
                *std::min_element(t_load.begin(), t_load.end()) * 1e3,
                *std::max_element(t_load.begin(), t_load.end()) * 1e3, bytes / 1048576.0 / ml);
    std::printf("cat   median %8.1f ms  (min %.1f, max %.1f)  %.0f MiB/s\n", mc * 1e3,
                *std::min_element(t_cat.begin(), t_cat.end()) * 1e3,
                *std::max_element(t_cat.begin(), t_cat.end()) * 1e3, bytes / 1048576.0 / mc);
    std::printf("ratio load/cat: %.2f (goal <= 1.5)\n", ml / mc);
    return 0;
}

}  // namespace dt::cli
