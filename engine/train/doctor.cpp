#include "train/doctor.h"

#include "core/autocast.h"
#include "core/error.h"
#include "core/process_usage.h"
#include "data/dataset.h"
#include "delta/delta_set.h"
#include "export/delta_format.h"
#include "generate/generate.h"
#include "models/loader.h"
#include "models/model.h"
#include "train/trainer.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>

namespace dt {
namespace {

// Forward parity: the largest absolute difference over the largest absolute reference value. fp32
// on CPU agrees with float64 to ~1e-6. On CUDA, TF32 matmuls (when a user turns them on) keep 10
// mantissa bits, ~5e-4 relative per product; 1e-3 admits that and still catches a wrong kernel.
constexpr double kForwardTolerance = 1e-3;
// The models the forward check covers: one per architecture family with a built-in.
const char* const kForwardModels[] = {"tiny-bert", "tiny-llama", "tiny-t5", "tiny-gptneox"};
constexpr std::uint64_t kSeed = 7;

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string fmt(const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

double relative_error(const at::Tensor& got, const at::Tensor& ref) {
    const at::Tensor g = got.detach().to(at::kCPU, at::kDouble), r = ref.detach().to(at::kCPU, at::kDouble);
    if (g.sizes() != r.sizes()) return INFINITY;
    const double scale = std::max(r.abs().max().item<double>(), 1e-6);
    return (g - r).abs().max().item<double>() / scale;
}

bool all_finite(const at::Tensor& t) { return torch::isfinite(t.detach()).all().item<bool>(); }

// Seeded inputs for a built-in: two rows, the second padded at the end.
ForwardInputs parity_inputs(const TransformerModel& m, std::int64_t vocab) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(kSeed);
    ForwardInputs in;
    in.input_ids = torch::randint(3, vocab, {2, 12}, gen, torch::kLong);
    in.attention_mask = torch::ones({2, 12}, torch::kLong);
    in.attention_mask.index_put_({1, torch::indexing::Slice(9, torch::indexing::None)}, 0);
    if (m.is_encoder_decoder()) in.decoder_input_ids = torch::randint(3, vocab, {2, 6}, gen, torch::kLong);
    return in;
}

ForwardInputs inputs_to(ForwardInputs in, const c10::Device& d) {
    for (at::Tensor* t : {&in.input_ids, &in.attention_mask, &in.decoder_input_ids})
        if (t->defined()) *t = t->to(d);
    return in;
}

at::Tensor scored_output(const ForwardOutputs& o) { return o.logits.defined() ? o.logits : o.last_hidden_state; }

// The same seeded built-in twice in eval mode: a CPU reference and a copy on `device`.
struct TwinModels {
    ModelConfig cfg;
    std::shared_ptr<TransformerModel> ref, dev;
};
TwinModels twin_models(const std::string& name, const c10::Device& device) {
    TwinModels t{builtin_config(name), nullptr, nullptr};
    t.ref = create_model(t.cfg, kSeed);
    t.dev = create_model(t.cfg, kSeed);
    t.ref->eval();
    t.dev->eval();
    t.dev->to(device);
    return t;
}

// The checks leave DoctorCheck::name to run_doctor.
DoctorCheck check_forward(const std::string& name, const c10::Device& device, bool inject) {
    DoctorCheck c;
    torch::NoGradGuard no_grad;
    auto [cfg, ref, dev] = twin_models(name, device);
    ref->to(at::kDouble);
    const ForwardInputs in = parity_inputs(*ref, cfg.get_int_or("vocab_size", 1000));
    const at::Tensor want = scored_output(ref->forward(in));
    at::Tensor got = scored_output(dev->forward(inputs_to(in, device)));
    if (inject) got = got + 1.0;
    const double err = relative_error(got, want);
    c.ok = err <= kForwardTolerance;
    c.detail = "max error " + fmt("%.1e", err) + " of the largest value, " + device.str() + " float32 against CPU float64 (tolerance " +
               fmt("%.0e", kForwardTolerance) + ")";
    return c;
}

// Eight random sequences a LoRA on every linear layer of tiny-llama memorises: the loss must fall.
Dataset memorise_task() {
    Dataset d;
    d.source = "doctor";
    d.causal_lm = true;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(kSeed);
    const at::Tensor ids = torch::randint(3, 4096, {8, 24}, gen, torch::kLong);
    for (std::int64_t i = 0; i < ids.size(0); ++i) {
        Example e;
        const std::int64_t* p = ids[i].data_ptr<std::int64_t>();
        e.ids.assign(p, p + ids.size(1));
        e.lm_labels = e.ids;
        d.examples.push_back(std::move(e));
    }
    return d;
}

class StepTimes : public TrainObserver {
public:
    void on_step(const StepEvent& e) override {
        if (last_ >= 0) diffs.push_back(e.elapsed_s - last_);
        last_ = e.elapsed_s;
    }
    std::vector<double> diffs;

private:
    double last_ = -1;
};

DoctorCheck check_train(const std::string& precision, const c10::Device& device, bool inject, double& step_ms) {
    DoctorCheck c;
    auto model = create_model(builtin_config("tiny-llama"), kSeed);
    DeltaSet deltas = DeltaSet::apply(*model, DeltaSpec::from_json({{"method", "lora"}, {"r", 8}, {"lora_alpha", 16}, {"target_modules", "all-linear"}}, "<doctor>"));
    std::vector<std::pair<std::string, at::Tensor>> frozen;
    for (const auto& np : model->named_parameters())
        if (!np.value().requires_grad()) frozen.emplace_back(np.key(), np.value().detach().clone());
    const Dataset data = memorise_task();
    TrainConfig cfg;
    cfg.max_steps = 12;
    cfg.batch_size = 8;
    cfg.lr = inject ? 0.0 : 1e-2;
    cfg.schedule = "constant";
    cfg.warmup_ratio = 0;
    cfg.weight_decay = 0;
    cfg.precision = precision;
    cfg.device = device.str();
    cfg.save_best = false;
    cfg.seed = kSeed;
    StepTimes times;
    Trainer trainer(*model, data, nullptr, cfg, &times);
    const TrainResult res = trainer.run();
    std::vector<double> losses;
    for (double l : res.losses)
        if (std::isfinite(l)) losses.push_back(l);
    std::vector<std::string> problems;
    if (res.status != "finished") problems.push_back("training ended '" + res.status + "'");
    if (res.skipped > 0) problems.push_back(std::to_string(res.skipped) + " step(s) skipped for non-finite gradients");
    if (losses.size() < 6) problems.push_back("only " + std::to_string(losses.size()) + " finite losses in " + std::to_string(res.losses.size()) + " steps");
    double first = NAN, last = NAN;
    if (losses.size() >= 6) {
        first = (losses[0] + losses[1] + losses[2]) / 3;
        last = (losses[losses.size() - 1] + losses[losses.size() - 2] + losses[losses.size() - 3]) / 3;
        if (!(last < 0.98 * first)) problems.push_back("the loss did not fall (" + fmt("%.4f", first) + " -> " + fmt("%.4f", last) + ")");
    }
    for (const auto& np : named_trainable_parameters(*model)) {
        if (!all_finite(np.second)) problems.push_back("trainable " + np.first + " is not finite");
        else if (np.second.grad().defined() && !all_finite(np.second.grad())) problems.push_back("the gradient of " + np.first + " is not finite");
        if (problems.size() > 4) break;
    }
    const auto now = model->named_parameters();
    for (const auto& f : frozen) {
        const at::Tensor* t = now.find(f.first);
        if (!t || !torch::equal(t->detach().to(at::kCPU), f.second.to(at::kCPU))) {
            problems.push_back("frozen " + f.first + " changed");
            break;
        }
    }
    c.ok = problems.empty();
    if (!times.diffs.empty()) {
        std::vector<double> d = times.diffs;
        std::sort(d.begin(), d.end());
        step_ms = d[d.size() / 2] * 1e3;
    }
    std::string detail = "loss " + fmt("%.4f", first) + " -> " + fmt("%.4f", last) + " in " + std::to_string(res.steps) + " steps, " +
                         std::to_string(frozen.size()) + " frozen tensors unchanged";
    if (res.overflow_skips > 0) detail += ", " + std::to_string(res.overflow_skips) + " fp16 overflow step(s) while the loss scale adapted";
    if (!problems.empty()) {
        detail.clear();
        for (const auto& p : problems) detail += (detail.empty() ? "" : "; ") + p;
    }
    c.detail = detail;
    return c;
}

DoctorCheck check_generate(const std::string& name, const c10::Device& device, bool inject) {
    DoctorCheck c;
    torch::NoGradGuard no_grad;
    auto [cfg, ref, dev] = twin_models(name, device);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(kSeed + 1);
    const at::Tensor prompt = torch::randint(3, cfg.get_int_or("vocab_size", 1000), {2, 6}, gen, torch::kLong);
    GenerationOptions opts;
    opts.max_new_tokens = 10;
    opts.eos_token_ids = {};
    opts.pad_token_id = 0;
    opts.use_cache = false;
    const at::Tensor want = generate(*ref, prompt, {}, opts);
    opts.use_cache = true;
    at::Tensor got = generate(*dev, prompt.to(device), {}, opts).to(at::kCPU);
    if (inject) got.index_put_({0, -1}, (got.index({0, -1}) + 1) % cfg.get_int_or("vocab_size", 1000));
    c.ok = got.sizes() == want.sizes() && torch::equal(got, want);
    c.detail = c.ok ? std::to_string(want.size(0)) + " x " + std::to_string(opts.max_new_tokens) + " greedy tokens with the KV cache on " +
                          device.str() + " equal CPU recomputation without it"
                    : "the tokens differ from CPU recomputation without the KV cache";
    if (!c.ok && got.sizes() == want.sizes()) {
        const at::Tensor diff = got.ne(want).nonzero();
        if (diff.size(0) > 0)
            c.detail += " (first at row " + std::to_string(diff[0][0].item<std::int64_t>()) + ", position " +
                        std::to_string(diff[0][1].item<std::int64_t>()) + ")";
    }
    return c;
}

std::string make_temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string t = std::string(base && *base ? base : "/tmp") + "/deltatune-doctor-XXXXXX";
    if (!::mkdtemp(t.data())) throw Error("cannot create a temporary folder", t, "set TMPDIR to a writable folder");
    return t;
}

DoctorCheck check_save_load(const c10::Device& device, bool inject) {
    DoctorCheck c;
    const ModelConfig cfg = builtin_config("tiny-bert");
    const DeltaSpec spec = DeltaSpec::from_json({{"method", "lora"}, {"r", 4}, {"target_modules", {"query", "value"}}}, "<doctor>");
    auto a = create_model(cfg, kSeed);
    DeltaSet da = DeltaSet::apply(*a, spec);
    a->to(device);
    {
        torch::NoGradGuard no_grad;
        auto gen = at::make_generator<at::CPUGeneratorImpl>(kSeed + 2);
        for (auto& t : trainable_parameters(*a)) t.copy_(torch::randn(t.sizes(), gen, at::TensorOptions().dtype(at::kFloat)).mul(0.05));
    }
    const std::string dir = make_temp_dir();
    struct Cleanup {
        std::string d;
        ~Cleanup() {
            std::error_code ec;
            std::filesystem::remove_all(d, ec);
        }
    } cleanup{dir};
    export_deltatune(*a, da, dir + "/delta", "builtin:tiny-bert");
    auto b = create_model(cfg, kSeed);
    b->to(device);
    DeltaImport imp = import_exported_delta(*b, dir + "/delta");
    if (inject) {
        torch::NoGradGuard no_grad;
        for (auto& t : trainable_parameters(*b)) t.zero_();
    }
    torch::NoGradGuard no_grad;
    a->eval();
    b->eval();
    const ForwardInputs in = inputs_to(parity_inputs(*a, cfg.get_int_or("vocab_size", 1000)), device);
    const double err = relative_error(scored_output(b->forward(in)), scored_output(a->forward(in)));
    c.ok = err <= 1e-6 && imp.fingerprint_matches;
    c.detail = "a LoRA delta written to delta.safetensors and read back on " + device.str() + ": output error " + fmt("%.1e", err) +
               (imp.fingerprint_matches ? ", base fingerprint matches" : ", base fingerprint differs");
    return c;
}

std::vector<std::string> precisions(const c10::Device& d) {
    if (d.is_cuda()) return {"fp32", "bf16", "fp16"};
    return {"fp32", "bf16"};
}

}  // namespace

bool DoctorReport::ok() const { return failed().empty(); }

std::vector<std::string> DoctorReport::failed() const {
    std::vector<std::string> out;
    for (const auto& c : checks)
        if (!c.ok) out.push_back(c.name);
    return out;
}

nlohmann::json DoctorReport::to_json() const {
    nlohmann::json gpus = nlohmann::json::array();
    for (const auto& g : probe.gpus)
        gpus.push_back({{"index", g.index}, {"name", g.name}, {"total_bytes", g.total_bytes},
                        {"compute_capability", std::to_string(g.major) + "." + std::to_string(g.minor)}, {"bf16", g.bf16}, {"fp16", true}});
    nlohmann::json cs = nlohmann::json::array();
    for (const auto& c : checks) cs.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}, {"seconds", c.seconds}});
    return {{"ok", ok()},
            {"device", device},
            {"libtorch", probe.torch_version},
            {"cuda_build", probe.cuda_build},
            {"cuda_headers", probe.cuda_headers},
            {"cuda_devices", gpus},
            {"cuda_reason", probe.cuda_reason},
            {"blas", probe.blas},
            {"blas_path", probe.blas_path},
            {"threads", probe.threads},
            {"cpu_capability", probe.cpu_capability},
            {"cpu_bf16_native", probe.cpu_bf16_native},
            {"checks", cs},
            {"failed", failed()},
            {"step_ms", step_ms},
            {"step_workload", step_workload},
            {"peak_device_bytes", peak_device_bytes},
            {"peak_rss_bytes", peak_rss_bytes},
            {"warnings", warnings}};
}

std::vector<std::string> doctor_check_names(const std::string& device) {
    const c10::Device d = parse_device(device);
    std::vector<std::string> out;
    for (const char* m : kForwardModels) out.push_back(std::string("forward:") + m);
    for (const auto& p : precisions(d)) out.push_back("train:" + p);
    out.push_back("generate:tiny-llama");
    out.push_back("generate:tiny-t5");
    out.push_back("save-load");
    return out;
}

DoctorReport run_doctor(const DoctorOptions& o, const std::function<void(const DoctorCheck&)>& progress) {
    DoctorReport r;
    r.probe = probe_devices();
    const c10::Device device = parse_device(o.device);
    r.device = device.str();
    const std::vector<std::string> names = doctor_check_names(o.device);
    if (!o.inject_failure.empty() && std::find(names.begin(), names.end(), o.inject_failure) == names.end()) {
        std::string all;
        for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
        throw Error("no check named '" + o.inject_failure + "' on " + r.device, "--inject-failure", all);
    }
    if (r.probe.blas_slow)
        r.warnings.push_back("LibTorch runs on the reference BLAS (" + r.probe.blas_path +
                             "): linear layers run many times slower; install libopenblas0-openmp");
    reset_device_memory_peak(device);
    r.step_workload = "tiny-llama, LoRA r=8 on every linear layer, batch 8 x 24 tokens";
    for (const auto& name : names) {
        const bool inject = name == o.inject_failure;
        const auto t0 = std::chrono::steady_clock::now();
        DoctorCheck c;
        try {
            if (name.rfind("forward:", 0) == 0) c = check_forward(name.substr(8), device, inject);
            else if (name.rfind("train:", 0) == 0) {
                double ms = 0;
                c = check_train(name.substr(6), device, inject, ms);
                if (ms > 0) r.step_ms[name.substr(6)] = ms;
            } else if (name.rfind("generate:", 0) == 0) c = check_generate(name.substr(9), device, inject);
            else c = check_save_load(device, inject);
        } catch (const std::exception& e) {
            c.ok = false;
            std::string what = e.what();
            if (what.size() > 400) what = what.substr(0, 400) + "...";
            c.detail = "threw: " + what;
        }
        c.name = name;
        c.seconds = seconds_since(t0);
        r.checks.push_back(c);
        if (progress) progress(c);
    }
    r.peak_device_bytes = device_memory_peak(device);
    r.peak_rss_bytes = process_usage().peak_rss_bytes;
    return r;
}

}  // namespace dt
