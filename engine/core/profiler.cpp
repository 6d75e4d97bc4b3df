#include "core/profiler.h"

#include "core/error.h"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

namespace dt {

namespace {

using Clock = std::chrono::steady_clock;

struct Frame {
    Clock::time_point start;
    double child_seconds = 0;
    const char* region = "layers";
};

}  // namespace

struct OpProfiler::State {
    std::atomic<int> phase{static_cast<int>(Phase::Other)};
    mutable std::mutex mu;
    Report report;
    std::unordered_map<std::int64_t, const char*> region_of_seq;  // forward op's sequence nr -> region
    std::set<std::string> region_names;  // owns the region strings (set nodes never move)
    const char* intern(const char* name) { return region_names.insert(name).first->c_str(); }
};

namespace {

std::shared_ptr<OpProfiler::State>& active() {
    static std::shared_ptr<OpProfiler::State> s;
    return s;
}
std::mutex& active_mu() {
    static std::mutex m;
    return m;
}

thread_local std::vector<Frame> t_stack;

struct Ctx : at::ObserverContext {};

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    std::shared_ptr<OpProfiler::State> s;
    {
        std::lock_guard<std::mutex> g(active_mu());
        s = active();
    }
    if (!s) return nullptr;
    Frame f;
    f.region = t_stack.empty() ? "layers" : t_stack.back().region;
    if (fn.scope() == at::RecordScope::USER_SCOPE) {
        std::lock_guard<std::mutex> g(s->mu);
        f.region = s->intern(fn.name());
    } else if (fn.scope() == at::RecordScope::BACKWARD_FUNCTION) {
        std::lock_guard<std::mutex> g(s->mu);
        auto it = s->region_of_seq.find(fn.seqNr());
        f.region = it == s->region_of_seq.end() ? "layers" : it->second;
    } else if (fn.seqNr() >= 0 && static_cast<OpProfiler::Phase>(s->phase.load()) != OpProfiler::Phase::Backward) {
        std::lock_guard<std::mutex> g(s->mu);
        s->region_of_seq[fn.seqNr()] = f.region;
    }
    f.start = Clock::now();
    t_stack.push_back(f);
    return std::make_unique<Ctx>();
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* ctx) {
    if (!ctx || t_stack.empty()) return;
    std::shared_ptr<OpProfiler::State> s;
    {
        std::lock_guard<std::mutex> g(active_mu());
        s = active();
    }
    const Frame f = t_stack.back();
    t_stack.pop_back();
    const double incl = std::chrono::duration<double>(Clock::now() - f.start).count();
    if (!t_stack.empty()) t_stack.back().child_seconds += incl;
    if (!s || fn.scope() == at::RecordScope::USER_SCOPE) return;
    const double self = std::max(0.0, incl - f.child_seconds);
    const auto phase = static_cast<OpProfiler::Phase>(s->phase.load());
    std::string name = fn.name();
    // Backward nodes ("MmBackward0") own only their bookkeeping; the work is in the aten ops they call.
    std::lock_guard<std::mutex> g(s->mu);
    auto& op = s->report.by_op[{phase, name}];
    op.seconds += self;
    op.calls += 1;
    auto& reg = s->report.by_region[{phase, f.region}];
    reg.seconds += self;
    reg.calls += 1;
}

}  // namespace

OpProfiler::OpProfiler() : state_(std::make_shared<State>()) {
    {
        std::lock_guard<std::mutex> g(active_mu());
        if (active()) throw Error("another profiler is already recording", "profile");
        active() = state_;
    }
    handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&on_start, &on_end)
                                        .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION,
                                                 at::RecordScope::USER_SCOPE}));
}

OpProfiler::~OpProfiler() {
    at::removeCallback(handle_);
    std::lock_guard<std::mutex> g(active_mu());
    active().reset();
}

void OpProfiler::set_phase(Phase p) { state_->phase = static_cast<int>(p); }

void OpProfiler::add_wall(Phase p, double seconds) {
    std::lock_guard<std::mutex> g(state_->mu);
    state_->report.wall[p] += seconds;
}

OpProfiler::Report OpProfiler::report() const {
    std::lock_guard<std::mutex> g(state_->mu);
    return state_->report;
}

std::string OpProfiler::op_class(const std::string& op) {
    auto has = [&](const char* s) { return op.find(s) != std::string::npos; };
    if (has("::mm") || has("addmm") || has("bmm") || has("matmul") || has("::linear") || has("addmv") || has("::mv"))
        return "matmul";
    if (has("scaled_dot_product") || has("flash")) return "fused attention";
    if (has("log_softmax") || has("nll_loss") || has("cross_entropy") || has("mse_loss")) return "loss";
    if (has("softmax")) return "softmax";
    if (has("layer_norm") || has("rms_norm")) return "norm";
    if (has("gelu") || has("silu") || has("relu") || has("tanh") || has("sigmoid") || has("threshold")) return "activation";
    if (has("dropout") || has("bernoulli")) return "dropout";
    if (has("embedding") || has("index_select") || has("gather") || has("index_add") || has("scatter")) return "embedding/index";
    if (has("copy_") || has("contiguous") || has("clone") || has("_to_copy") || has("::to") || has("cat") || has("empty") ||
        has("zeros") || has("fill_") || has("zero_"))
        return "copy/alloc";
    if (has("sum") || has("mean") || has("norm") || has("max") || has("min") || has("argmax")) return "reduction";
    if (has("::add") || has("::mul") || has("::div") || has("::sub") || has("::addc") || has("::sqrt") || has("::pow") ||
        has("::neg") || has("lerp") || has("::rsqrt") || has("::exp") || has("where") || has("masked_fill"))
        return "elementwise";
    if (has("Backward") || has("AccumulateGrad") || has("torch::autograd")) return "autograd nodes";
    if (has("::view") || has("reshape") || has("transpose") || has("permute") || has("expand") || has("narrow") || has("select") ||
        has("slice") || has("unsqueeze") || has("squeeze") || has("::t") || has("as_strided") || has("detach") || has("alias") ||
        has("split") || has("chunk") || has("unbind"))
        return "views";
    return "other";
}

namespace {

const char* phase_name(OpProfiler::Phase p) {
    switch (p) {
        case OpProfiler::Phase::Forward: return "forward";
        case OpProfiler::Phase::Backward: return "backward";
        case OpProfiler::Phase::Optimizer: return "optimizer";
        case OpProfiler::Phase::Other: break;
    }
    return "other";
}

void append(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void append(std::string& out, const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    out += buf;
}

}  // namespace

std::string OpProfiler::format(const Report& r, int steps) {
    const double per = 1e3 / std::max(1, steps);
    const OpProfiler::Phase phases[] = {Phase::Forward, Phase::Backward, Phase::Optimizer, Phase::Other};
    std::string out;
    double wall_total = 0, self_total = 0;
    std::map<Phase, double> self_by_phase;
    for (const auto& [k, c] : r.by_op) self_by_phase[k.first] += c.seconds;
    for (const auto& [p, s] : r.wall) wall_total += s;
    for (const auto& [p, s] : self_by_phase) self_total += s;
    append(out, "profile: ms per step over %d steps (operator self time; 'wall' is measured around each phase)\n", steps);
    append(out, "%-22s %10s %10s %8s\n", "phase", "wall", "in ops", "share");
    for (Phase p : phases) {
        const double w = r.wall.count(p) ? r.wall.at(p) : 0.0, s = self_by_phase.count(p) ? self_by_phase.at(p) : 0.0;
        if (w == 0 && s == 0) continue;
        append(out, "%-22s %10.1f %10.1f %7.1f%%\n", phase_name(p), w * per, s * per, wall_total > 0 ? 100.0 * w / wall_total : 0.0);
    }
    append(out, "%-22s %10.1f %10.1f\n", "step", wall_total * per, self_total * per);

    // Regions: forward and backward columns.
    std::map<std::string, std::pair<double, double>> regions;
    for (const auto& [k, c] : r.by_region) {
        if (k.first == Phase::Forward) regions[k.second].first += c.seconds;
        else if (k.first == Phase::Backward) regions[k.second].second += c.seconds;
    }
    std::vector<std::pair<std::string, std::pair<double, double>>> rv(regions.begin(), regions.end());
    std::sort(rv.begin(), rv.end(), [](const auto& a, const auto& b) { return a.second.first + a.second.second > b.second.first + b.second.second; });
    append(out, "\n%-22s %10s %10s %10s\n", "region", "forward", "backward", "total");
    for (const auto& [name, fb] : rv)
        append(out, "%-22s %10.1f %10.1f %10.1f\n", name.c_str(), fb.first * per, fb.second * per, (fb.first + fb.second) * per);

    std::map<std::string, std::pair<double, double>> classes;
    for (const auto& [k, c] : r.by_op) {
        const std::string cls = k.first == Phase::Optimizer ? std::string("optimizer") : op_class(k.second);
        if (k.first == Phase::Backward) classes[cls].second += c.seconds;
        else classes[cls].first += c.seconds;
    }
    std::vector<std::pair<std::string, std::pair<double, double>>> cv(classes.begin(), classes.end());
    std::sort(cv.begin(), cv.end(), [](const auto& a, const auto& b) { return a.second.first + a.second.second > b.second.first + b.second.second; });
    append(out, "\n%-22s %10s %10s %10s\n", "operator class", "forward*", "backward", "total");
    for (const auto& [name, fb] : cv)
        append(out, "%-22s %10.1f %10.1f %10.1f\n", name.c_str(), fb.first * per, fb.second * per, (fb.first + fb.second) * per);
    append(out, "(* forward, loss and optimizer phases)\n");

    std::vector<std::pair<std::pair<Phase, std::string>, Cell>> ops(r.by_op.begin(), r.by_op.end());
    std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
    append(out, "\n%-10s %-36s %10s %8s\n", "phase", "top operators", "ms", "calls");
    for (std::size_t i = 0; i < ops.size() && i < 15; ++i)
        append(out, "%-10s %-36s %10.1f %8lld\n", phase_name(ops[i].first.first), ops[i].first.second.c_str(), ops[i].second.seconds * per,
               static_cast<long long>(ops[i].second.calls / std::max(1, steps)));
    return out;
}

}  // namespace dt
