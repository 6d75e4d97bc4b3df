// `deltatune bench step MODEL --delta SPEC...`: forward + backward + AdamW update per method on a
// random batch, all methods in one process and interleaved step by step, medians reported, with
// the exact trainable parameter and optimizer-state bytes of each.
#include "cli.h"

#include "core/autocast.h"
#include "core/devices.h"
#include "core/error.h"
#include "core/process_usage.h"
#include "core/profiler.h"
#include "train/defaults.h"
#include "delta/delta_set.h"
#include "models/loader.h"
#include "models/quantize.h"
#include "tree/module_tree.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace dt::cli {
namespace {

struct Run {
    std::string label;
    LoadedModel model;
    DeltaSet deltas;
    std::unique_ptr<torch::optim::AdamW> opt;
    std::vector<double> times;
    Accounting acc;
};

at::Tensor loss_of(const ForwardOutputs& out, const at::Tensor& labels) {
    DT_PROFILE_REGION("loss");
    if (out.loss.defined()) return out.loss;  // --loss-only: the model's chunked LM loss
    if (out.logits.defined() && out.logits.dim() == 3) {
        const auto V = out.logits.size(2);
        // Prompt tuning prepends positions: score the last T (the real tokens).
        at::Tensor lg = out.logits.narrow(1, out.logits.size(1) - labels.size(1), labels.size(1));
        return torch::cross_entropy_loss(lg.reshape({-1, V}), labels.reshape({-1}));
    }
    if (out.logits.defined()) return torch::cross_entropy_loss(out.logits, labels.select(1, 0) % out.logits.size(1));
    return out.last_hidden_state.pow(2).mean();
}

}  // namespace

int cmd_bench_step(const Args& a) {
    const std::string model_arg = a.positional[1];
    auto specs = a.values("--delta");
    // `bench train` defaults to the reference setting: LoRA r=8 on query/value.
    if (specs.empty() && a.positional[0] == "train") specs.push_back("lora");
    if (specs.empty()) throw Error("needs --delta SPEC... (files or method names)", "bench step");
    const int B = std::max(1, a.int_value("--batch", 8)), T = std::max(1, a.int_value("--seq", 128));
    const int steps = std::max(1, a.int_value("--steps", 10));
    const std::string precision = a.value("--precision", "fp32");
    const c10::Device device = parse_device(a.value("--device", "cpu"));
    if (precision != "fp32" && precision != "bf16" && !(precision == "fp16" && device.is_cuda()))
        throw Error("expected fp32 or bf16 (fp16 on CUDA), got '" + precision + "'", "--precision");
    std::vector<Run> runs;
    for (const auto& s : specs) {
        Run r;
        r.label = s;
        r.model = load_model(model_arg);
        r.deltas = DeltaSet::apply(*r.model.model, delta_spec_arg(s));
        r.model.model->to(device);
        if (a.has("--base-dtype") && a.value("--base-dtype") != "fp32") {
            const std::string bd = a.value("--base-dtype");
            if (bd != "bf16" && !(bd == "fp16" && device.is_cuda())) throw Error("expected fp32 or bf16 (fp16 on CUDA), got '" + bd + "'", "--base-dtype");
            store_frozen_weights_as(*r.model.model, bd == "bf16" ? at::kBFloat16 : at::kHalf);
        }
        QuantKind qkind;
        if (parse_quantize(a.value("--quantize", "none"), &qkind, "--quantize"))
            quantize_frozen_linears(*r.model.model, qkind, a.has("--double-quant"));
        if (a.has("--checkpointing")) r.model.model->set_gradient_checkpointing(true);
        r.model.model->train();
        r.opt = std::make_unique<torch::optim::AdamW>(trainable_parameters(*r.model.model), torch::optim::AdamWOptions(TrainingDefaults::lr));
        r.acc = r.deltas.accounting(*r.model.model);
        runs.push_back(std::move(r));
    }
    const auto& cfg = runs.front().model.model->config();
    const auto vocab = cfg.get_int_or("vocab_size", 1000);
    torch::manual_seed(0);
    ForwardInputs in;
    in.input_ids = torch::randint(1, vocab, {B, T}, torch::kLong);
    at::Tensor labels = torch::randint(0, vocab, {B, T}, torch::kLong);
    runs.front().model.model->validate_inputs(in);
    in.input_ids = in.input_ids.to(device);
    labels = labels.to(device);
    // --loss-only: LM heads score the labels from the hidden states in chunks (no B x T x V logits).
    if (a.has("--loss-only")) {
        in.labels = labels;
        in.loss_only = true;
    }
    auto sync = [&] {
        if (device.is_cuda()) torch::cuda::synchronize();
    };
    // --profile: operator self times by phase and region, for one method (profiling several at once
    // would mix them), over the measured steps only.
    const bool profile = a.has("--profile");
    if (profile && runs.size() != 1) throw Error("profiles one method at a time", "--profile", "give one --delta");
    std::unique_ptr<OpProfiler> prof;
    using Clock = std::chrono::steady_clock;
    auto phase = [&](OpProfiler::Phase p, Clock::time_point& t) {  // closes the running phase, opens p
        sync();
        const auto now = Clock::now();
        if (prof) {
            prof->set_phase(p);
        }
        const double dt = std::chrono::duration<double>(now - t).count();
        t = now;
        return dt;
    };
    reset_device_memory_peak(device);
    for (int step = -2; step < steps; ++step) {  // two warm-up steps
        if (profile && step == 0) prof = std::make_unique<OpProfiler>();
        for (auto& r : runs) {
            sync();
            const auto t0 = Clock::now();
            auto t = t0;
            phase(OpProfiler::Phase::Other, t);
            r.opt->zero_grad();
            double t_zero = phase(OpProfiler::Phase::Forward, t);
            at::Tensor loss;
            {
                AutocastScope autocast(precision, device.type());
                loss = loss_of(r.model.model->forward(in), labels).to(torch::kFloat);
            }
            const double t_fwd = phase(OpProfiler::Phase::Backward, t);
            loss.backward();
            const double t_bwd = phase(OpProfiler::Phase::Optimizer, t);
            r.opt->step();
            const double t_opt = phase(OpProfiler::Phase::Other, t);
            const double dt = std::chrono::duration<double>(t - t0).count();
            if (step >= 0) r.times.push_back(dt);
            if (prof) {
                prof->add_wall(OpProfiler::Phase::Other, t_zero);
                prof->add_wall(OpProfiler::Phase::Forward, t_fwd);
                prof->add_wall(OpProfiler::Phase::Backward, t_bwd);
                prof->add_wall(OpProfiler::Phase::Optimizer, t_opt);
            }
        }
    }
    std::printf("model: %s, batch %d x %d tokens, %d steps after 2 warm-up, interleaved, %s, %d threads, %s\n", model_arg.c_str(), B,
                T, steps, device.str().c_str(), at::get_num_threads(), precision.c_str());
    std::printf("%-14s %12s %10s %10s %12s %12s\n", "method", "step ms", "vs full", "trainable", "trainable%", "grad+adam");
    double full = 0;
    for (const auto& r : runs)
        if (r.label == "full") full = median(r.times);
    for (const auto& r : runs) {
        const double m = median(r.times);
        char ratio[32] = "-";
        if (full > 0) std::snprintf(ratio, sizeof ratio, "%.2f", m / full);
        std::printf("%-14s %12.1f %10s %10lld %11.4f%% %12s\n", r.label.c_str(), m * 1e3, ratio,
                    static_cast<long long>(r.acc.trainable_params), r.acc.trainable_percent(),
                    format_bytes(r.acc.gradient_bytes + r.acc.adamw_bytes).c_str());
    }
    if (prof) {
        const auto report = prof->report();
        prof.reset();
        std::printf("\n%s", OpProfiler::format(report, steps).c_str());
    }
    struct rusage ru {};
    ::getrusage(RUSAGE_SELF, &ru);
    double tok = 0;
    for (const auto& r : runs) tok += static_cast<double>(B) * T / median(r.times);
    std::printf("tokens/s (mean over methods): %.0f; peak RSS of the process: %.0f MiB (loading included); resident now: %.0f MiB\n",
                tok / static_cast<double>(runs.size()), static_cast<double>(ru.ru_maxrss) / 1024.0,
                static_cast<double>(process_usage().rss_bytes) / 1048576.0);
    // Delta-tuning FLOPs per token: the forward (2 N) and the activation gradients (2 N) through the
    // frozen base's N parameters; the deltas' own weight gradients are negligible and not counted.
    const double n_base = static_cast<double>(runs.front().acc.total_params - runs.front().acc.trainable_params);
    const double achieved = 4.0 * n_base * tok / static_cast<double>(runs.size());
    std::printf("delta-tuning FLOPs (4 N per token, N = %.0f frozen parameters): %.2f TFLOP/s\n", n_base, achieved / 1e12);
    if (device.is_cuda())
        std::printf("peak device memory (allocated): %.0f MiB\n", static_cast<double>(device_memory_peak(device)) / 1048576.0);
    return 0;
}

}  // namespace dt::cli
