// `deltatune transfer`, `ablate`, `compare` and `inspect-delta`: the engine's experiments with
// progress on stderr and the result on stdout at the end. Ctrl+C stops between cells, steps or
// methods; running the same command again continues where it stopped.
#include "cli.h"

#include "core/error.h"
#include "experiments/comparison.h"
#include "experiments/experiments.h"
#include "experiments/inspection.h"
#include "experiments/scale.h"
#include "io/atomic_file.h"
#include "io/weight_set.h"
#include "train/run_folder.h"

#include <algorithm>
#include <csignal>
#include <cstdio>

namespace dt::cli {
namespace {

TrainControl* g_exp_control = nullptr;
extern "C" void on_exp_sigint(int) {
    if (g_exp_control) g_exp_control->cancel = true;
}

// While alive, Ctrl+C asks `control` to stop (between cells, steps or methods) instead of killing.
struct SigintStops {
    explicit SigintStops(TrainControl& c) {
        g_exp_control = &c;
        std::signal(SIGINT, on_exp_sigint);
    }
    ~SigintStops() {
        std::signal(SIGINT, SIG_DFL);
        g_exp_control = nullptr;
    }
};

class Progress : public ExperimentObserver {
public:
    void on_status(const std::string& s) override { std::fprintf(stderr, "%s\n", s.c_str()); }
    void on_matrix(const ResultMatrix& m) override { m_ = m; }
    void on_cell(std::size_t r, std::size_t c, double v, const std::string& note) override {
        if (note.empty()) std::fprintf(stderr, "  %-14s on %-14s %s %.4f\n", m_.rows[r].c_str(), m_.cols[c].c_str(), m_.metric.c_str(), v);
        else std::fprintf(stderr, "  %-14s on %-14s (empty: %s)\n", m_.rows[r].c_str(), m_.cols[c].c_str(), note.c_str());
    }
    void on_train_step(const std::string& task, const StepEvent& e) override {
        if (e.step % 50 == 0) std::fprintf(stderr, "  %s: step %lld loss %.4f\n", task.c_str(), static_cast<long long>(e.step), e.loss);
    }

private:
    ResultMatrix m_;
};

void print_table(const ResultMatrix& m, const std::vector<std::vector<double>>* rel) {
    int w = 8;  // columns as wide as the longest label
    for (const auto& c : m.cols) w = std::max(w, static_cast<int>(c.size()));
    std::printf("%-16s", "");
    for (const auto& c : m.cols) std::printf(" %*s", w, c.c_str());
    std::printf("\n");
    for (std::size_t r = 0; r < m.rows.size(); ++r) {
        std::printf("%-16.16s", m.rows[r].c_str());
        for (std::size_t c = 0; c < m.cols.size(); ++c) {
            const double v = rel ? (*rel)[r][c] : m.value[r][c];
            if (std::isfinite(v)) std::printf(" %*.3f", w, v);
            else std::printf(" %*s", w, "-");
        }
        std::printf("\n");
    }
}

}  // namespace

int cmd_transfer(const Args& a) {
    if (!a.has("--spec")) throw Error("needs --spec TRANSFER.json", "transfer", "see docs/experiments.md");
    const auto spec = TransferSpec::load(a.value("--spec"));
    TrainControl control;
    Progress progress;
    const ResultMatrix m = [&] {
        SigintStops stops(control);
        return run_transfer(spec, &progress, &control);
    }();
    if (control.cancel) {
        std::fprintf(stderr, "stopped; run the same command again to continue (finished cells are kept in %s)\n", spec.output_dir.c_str());
        return 130;
    }
    std::printf("%s (raw):\n", m.metric.c_str());
    print_table(m, nullptr);
    const auto rel = m.relative();
    std::printf("\nrelative to the target task's own delta:\n");
    print_table(m, &rel);
    std::printf("\nwrote %s/matrix.json and matrix.csv\n", spec.output_dir.c_str());
    return 0;
}

int cmd_ablate(const Args& a) {
    if (!a.has("--spec") || !a.has("--checkpoint") || !a.has("--out"))
        throw Error("needs --spec RUN.json --checkpoint DIR --out DIR", "ablate");
    TrainControl control;
    Progress progress;
    const auto r = [&] {
        SigintStops stops(control);
        return run_layer_ablation(a.value("--spec"), a.value("--checkpoint"), a.value("--out"),
                                  static_cast<std::size_t>(a.int_value("--max-eval", 0)), &progress, &control);
    }();
    if (control.cancel) return 130;
    std::printf("%s with the delta: %.4f, without: %.4f; row i, column j: delta removed from layers i..j\n", r.matrix.metric.c_str(),
                r.with_delta, r.without_delta);
    if (r.outside_layers > 0)
        std::printf("%lld delta parameters are in no layer (%s%s) and stay in every cell\n", static_cast<long long>(r.outside_layers),
                    r.outside_layer_tensors.front().c_str(), r.outside_layer_tensors.size() > 1 ? ", ..." : "");
    print_table(r.matrix, nullptr);
    return 0;
}

namespace {

class CompareProgress : public ComparisonObserver {
public:
    void on_status(const std::string& s) override { std::fprintf(stderr, "%s\n", s.c_str()); }
    void on_point(const std::string& m, const CurvePoint& p) override {
        std::fprintf(stderr, "  %s step %lld (%.1f s): %.4f\n", m.c_str(), static_cast<long long>(p.step), p.elapsed_s, p.value);
    }
};

}  // namespace

int cmd_compare(const Args& a) {
    if (!a.has("--spec")) throw Error("needs --spec COMPARE.json", "compare", "see docs/experiments.md");
    const auto spec = CompareSpec::load(a.value("--spec"));
    TrainControl control;
    CompareProgress progress;
    const ComparisonResult r = [&] {
        SigintStops stops(control);
        return run_method_comparison(spec, &progress, &control);
    }();
    if (control.cancel) {
        std::fprintf(stderr, "stopped; run the same command again to continue (finished methods are kept in %s)\n", spec.output_dir.c_str());
        return 130;
    }
    std::printf("%-16s %12s %9s %10s %8s %s\n", "method", "trainable", "%", r.metric.c_str(), "seconds", "pareto");
    for (const auto& m : r.methods)
        std::printf("%-16s %12lld %9.4f %10.4f %8.1f %s\n", m.name.c_str(), static_cast<long long>(m.trainable_params),
                    m.total_params ? 100.0 * static_cast<double>(m.trainable_params) / static_cast<double>(m.total_params) : 0.0, m.value,
                    m.seconds, m.pareto ? "*" : "");
    std::printf("\nwrote %s/comparison.json and comparison.csv\n", spec.output_dir.c_str());
    return 0;
}

int cmd_inspect_delta(const Args& a) {
    if (a.positional.size() != 1) throw Error("needs RUN_DIR", "inspect-delta", "deltatune inspect-delta RUN_DIR [--checkpoint NAME] [--json]");
    const std::string run = a.positional[0];
    const ResultMatrix m = inspect_run_delta(run, a.value("--checkpoint", run_folder::kFinal));
    if (a.has("--json")) {
        std::printf("%s\n", m.to_json().dump().c_str());
        return 0;
    }
    std::printf("delta magnitude per layer and module (||dW|| / ||W|| for LoRA and IA3, relative change otherwise):\n");
    print_table(m, nullptr);
    return 0;
}

int cmd_scale(const Args& a) {
    if (!a.has("--spec")) throw Error("needs --spec SCALE.json", "scale", "see docs/experiments.md");
    const auto spec = ScaleSpec::load(a.value("--spec"));
    TrainControl control;
    CompareProgress progress;
    const ScaleResult r = [&] {
        SigintStops stops(control);
        return run_scale(spec, &progress, &control);
    }();
    if (control.cancel) {
        std::fprintf(stderr, "stopped; run the same command again to continue (finished pairs are kept in %s)\n", spec.compare.output_dir.c_str());
        return 130;
    }
    std::printf("%-16s %12s %-16s %12s %10s %8s\n", "model", "parameters", "method", "trainable", r.metric.c_str(), "seconds");
    for (const auto& s : r.sizes)
        for (const auto& m : s.methods.methods)
            std::printf("%-16s %12lld %-16s %12lld %10.4f %8.1f\n", s.name.c_str(), static_cast<long long>(s.parameters), m.name.c_str(),
                        static_cast<long long>(m.trainable_params), m.value, m.seconds);
    std::printf("\nwrote %s/scale.json, scale.csv and scale_curves.csv\n", spec.compare.output_dir.c_str());
    return 0;
}

}  // namespace dt::cli
