#include "export/merge_deltas.h"

#include "core/error.h"
#include "delta/hosted.h"
#include "delta/util.h"
#include "export/delta_format.h"
#include "export/export_run.h"
#include "io/atomic_file.h"
#include "models/model.h"
#include "train/run_folder.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <set>

#include <unistd.h>

namespace dt {
namespace {

using J = nlohmann::json;

const std::vector<std::string> kCombinations = {"linear", "cat", "svd", "ties", "dare_linear", "dare_ties", "magnitude_prune"};

// One source's tensors and per-target LoRA scaling, read by attaching it to the model.
struct Source {
    std::string dir, method;
    J spec;                                  // the method's spec
    std::map<std::string, at::Tensor> t;     // full name -> tensor (detached copies)
    std::map<std::string, double> scaling;   // LoRA: target path -> s
    std::map<std::string, std::int64_t> rank;
    std::vector<std::string> targets;
};

bool is_run_folder(const std::string& dir) { return path_exists(run_folder::spec_path(dir)) && path_exists(run_folder::checkpoints_path(dir)); }

void remove_temp(const std::string& tmp) {
    if (tmp.empty()) return;
    if (path_exists(tmp + "/delta")) remove_flat_folder(tmp + "/delta");
    ::rmdir(tmp.c_str());
}

Source read_source(TransformerModel& model, const std::string& dir) {
    Source s;
    s.dir = dir;
    std::string folder = dir, tmp;
    if (!is_exported_delta(dir) && is_run_folder(dir)) {  // a run: its best (else final) checkpoint, via a DeltaTune export
        char templ[] = "/tmp/deltatune-merge-XXXXXX";
        if (!::mkdtemp(templ)) throw Error("cannot create a temporary folder", dir);
        tmp = templ;
        folder = tmp + "/delta";
        export_run(dir, "deltatune", folder, "");
    }
    try {
        DeltaImport imp = import_exported_delta(model, folder);
        if (imp.deltas.methods().size() != 1)
            throw Error("a merged source holds one method; this one has " + std::to_string(imp.deltas.methods().size()), dir);
        const DeltaMethod& m = *imp.deltas.methods().front();
        s.method = m.name();
        s.spec = m.spec();
        s.targets = m.targets();
        if (m.can_fold()) throw Error("the delta still has a training-time encoder", dir, "export it first (PEFT format folds it)");
        auto params = model.named_parameters(true);
        for (const auto& name : m.added()) s.t[name] = params[name].detach().clone();
        if (s.method == "lora") {
            const J o = resolve_options("lora", s.spec, dir);
            if (o["use_dora"].get<bool>() || (o["init_lora_weights"] != "kaiming" && o["init_lora_weights"] != "gaussian"))
                throw Error("DoRA, PiSSA and OLoRA deltas cannot be merged this way", dir, "export them to PEFT's format first");
            const J rp = s.spec.value("rank_pattern", J()), ap = s.spec.value("alpha_pattern", J());
            for (const auto& p : s.targets) {
                const double r = delta::pattern_number(rp, p, o["r"].get<double>(), dir, "rank_pattern");
                const double alpha = delta::pattern_number(ap, p, o["lora_alpha"].get<double>(), dir, "alpha_pattern");
                s.rank[p] = static_cast<std::int64_t>(r);
                s.scaling[p] = o["use_rslora"].get<bool>() ? alpha / std::sqrt(r) : alpha / r;
            }
        }
        imp.deltas.remove(model);
    } catch (...) {
        remove_temp(tmp);
        throw;
    }
    remove_temp(tmp);
    return s;
}

at::Tensor magnitude_prune_one(const at::Tensor& t, double density) {
    if (density >= 1) return t;
    const auto k = static_cast<std::int64_t>(density * static_cast<double>(t.numel()));
    at::Tensor mask = torch::zeros({t.numel()}, t.options());
    if (k > 0) mask.index_fill_(0, std::get<1>(t.abs().reshape(-1).topk(k)), 1.0);
    return t * mask.view(t.sizes());
}

at::Tensor random_prune_one(const at::Tensor& t, double density, at::Generator& gen) {
    if (density >= 1) return t;
    at::Tensor keep = torch::empty_like(t).uniform_(0.0, 1.0, gen).lt(density).to(t.scalar_type());
    return t * keep / density;  // DARE rescales the kept entries (peft 0.9.0 computed but dropped this division)
}

// PEFT's merge_utils on a stack of same-shaped tensors with weights (one per tensor).
at::Tensor combine_tensors(const std::vector<at::Tensor>& ts, const std::vector<double>& w, const MergeOptions& o, at::Generator& gen) {
    std::vector<at::Tensor> pruned;
    for (const auto& t : ts) {
        if (o.combination == "ties" || o.combination == "magnitude_prune") pruned.push_back(magnitude_prune_one(t, o.density));
        else if (o.combination == "dare_linear" || o.combination == "dare_ties") pruned.push_back(random_prune_one(t, o.density, gen));
        else pruned.push_back(t);
    }
    const at::Tensor stack = torch::stack(pruned);
    std::vector<std::int64_t> shape(static_cast<std::size_t>(stack.dim()), 1);
    shape[0] = static_cast<std::int64_t>(w.size());
    const at::Tensor weights = torch::tensor(w, stack.options()).view(shape);
    const at::Tensor weighted = stack * weights;
    if (o.combination == "ties" || o.combination == "dare_ties") {
        const at::Tensor sign = stack.sign();
        const at::Tensor magnitude = o.majority_sign == "total" ? stack.sum(0) : sign.sum(0);
        const at::Tensor majority = torch::where(magnitude >= 0, torch::ones_like(magnitude), -torch::ones_like(magnitude));
        const at::Tensor agree = (sign == majority).to(stack.scalar_type());
        return (weighted * agree).sum(0) / agree.sum(0).clamp_min(1.0);
    }
    return weighted.sum(0);
}

// A regex selecting exactly `paths` (PEFT's full-match rule).
std::string exact_regex(const std::vector<std::string>& paths) {
    std::string re;
    for (const auto& p : paths) {
        std::string e;
        for (char c : p) e += (c == '.') ? std::string("\\.") : std::string(1, c);
        re += (re.empty() ? "" : "|") + e;
    }
    return "(" + re + ")";
}

}  // namespace

DeltaSet merge_deltas(TransformerModel& model, const MergeOptions& o) {
    if (o.sources.size() < 2) throw Error("merging needs at least two deltas", "merge-deltas");
    if (o.weights.size() != o.sources.size())
        throw Error(std::to_string(o.sources.size()) + " deltas but " + std::to_string(o.weights.size()) + " weights", "--weights",
                    "give one weight per delta");
    if (std::find(kCombinations.begin(), kCombinations.end(), o.combination) == kCombinations.end())
        throw Error("unknown combination '" + o.combination + "'", "--combination", "linear, cat, svd, ties, dare_linear, dare_ties or magnitude_prune");
    if (!(o.density > 0 && o.density <= 1)) throw Error("must be in (0, 1]", "--density");
    if (o.majority_sign != "total" && o.majority_sign != "frequency") throw Error("must be total or frequency", "--majority-sign");
    std::vector<Source> src;
    for (const auto& d : o.sources) src.push_back(read_source(model, d));
    for (const auto& s : src)
        if (s.method != src[0].method)
            throw Error("cannot merge " + src[0].method + " (" + src[0].dir + ") with " + s.method, s.dir, "merge deltas of one method");
    const std::string method = src[0].method;
    auto gen = delta::make_generator(o.seed);
    torch::NoGradGuard ng;

    if (method != "lora") {
        if (method != "ia3" && method != "prompt" && method != "ptuning" && method != "prefix")
            throw Error("'" + method + "' deltas cannot be merged", src[0].dir, "lora, ia3 and prompt tables (prompt, ptuning, prefix) can");
        if (o.combination != "linear") throw Error(method + " deltas merge linearly only", "--combination", "use --combination linear");
        for (const auto& s : src)
            if (s.t.size() != src[0].t.size() || s.targets != src[0].targets)
                throw Error("its " + method + " targets differ from " + src[0].dir + "'s", s.dir, "merge deltas with the same targets");
        DeltaSet set = DeltaSet::apply(model, DeltaSpec::from_json({{"methods", {src[0].spec}}}, "merged delta"));
        auto params = model.named_parameters(true);
        for (const auto& [name, t0] : src[0].t) {
            at::Tensor sum = torch::zeros_like(t0);
            for (std::size_t i = 0; i < src.size(); ++i) {
                auto it = src[i].t.find(name);
                if (it == src[i].t.end() || it->second.sizes() != t0.sizes()) throw Error("tensor '" + name + "' differs", src[i].dir);
                sum += it->second * o.weights[i];
            }
            params[name].copy_(sum);
        }
        return set;
    }

    // LoRA: the union of targets, in the first source's order then the others'.
    std::vector<std::string> targets;
    std::set<std::string> seen;
    std::set<std::int64_t> ranks;
    for (const auto& s : src)
        for (const auto& p : s.targets) {
            if (seen.insert(p).second) targets.push_back(p);
            ranks.insert(s.rank.at(p));
        }
    std::int64_t new_rank = 0;
    if (o.combination == "cat") {
        for (const auto& p : targets) {
            std::int64_t sum = 0;
            for (const auto& s : src) sum += s.rank.count(p) ? s.rank.at(p) : 0;
            new_rank = std::max(new_rank, sum);
        }
        std::int64_t configured = 0;  // PEFT sums the sources' configured ranks
        for (const auto& s : src) configured += resolve_options("lora", s.spec, s.dir)["r"].get<std::int64_t>();
        new_rank = std::max(new_rank, configured);
    } else if (o.combination == "svd") {
        new_rank = o.svd_rank > 0 ? o.svd_rank : *ranks.rbegin();
    } else {
        if (ranks.size() != 1)
            throw Error("the deltas' ranks differ", "--combination " + o.combination, "use cat or svd for deltas of different ranks");
        new_rank = *ranks.begin();
    }
    const J spec = {{"method", "lora"}, {"r", new_rank}, {"lora_alpha", new_rank}, {"target_modules", exact_regex(targets)}};
    DeltaSet set = DeltaSet::apply(model, DeltaSpec::from_json({{"methods", {spec}}}, "merged delta"));
    auto params = model.named_parameters(true);
    for (const auto& p : targets) {
        at::Tensor& A = params[p + ".lora_A.weight"];
        at::Tensor& B = params[p + ".lora_B.weight"];
        A.zero_();
        B.zero_();
        std::vector<at::Tensor> As, Bs;
        std::vector<double> w, sc;
        for (std::size_t i = 0; i < src.size(); ++i) {
            if (!src[i].scaling.count(p)) continue;
            As.push_back(src[i].t.at(p + ".lora_A.weight"));
            Bs.push_back(src[i].t.at(p + ".lora_B.weight"));
            w.push_back(o.weights[i]);
            sc.push_back(src[i].scaling.at(p));
        }
        if (o.combination == "linear") {
            for (std::size_t i = 0; i < As.size(); ++i) {
                A += As[i] * (std::sqrt(w[i]) * sc[i]);
                B += Bs[i] * std::sqrt(w[i]);
            }
        } else if (o.combination == "cat") {
            std::int64_t at_row = 0;
            for (std::size_t i = 0; i < As.size(); ++i) {
                const std::int64_t r = As[i].size(0);
                A.narrow(0, at_row, r).copy_(As[i] * (w[i] * sc[i]));
                B.narrow(1, at_row, r).copy_(Bs[i]);
                at_row += r;
            }
        } else if (o.combination == "svd") {
            at::Tensor delta = torch::zeros_like(B.matmul(A));
            for (std::size_t i = 0; i < As.size(); ++i) delta += torch::matmul(Bs[i], As[i]) * (w[i] * sc[i]);
            auto [U, S, Vh] = torch::linalg_svd(delta, false);
            const std::int64_t k = std::min<std::int64_t>(new_rank, S.size(0));
            B.narrow(1, 0, k).copy_(U.narrow(1, 0, k) * S.narrow(0, 0, k).unsqueeze(0));
            A.narrow(0, 0, k).copy_(Vh.narrow(0, 0, k));
        } else {
            std::vector<double> ws;
            for (std::size_t i = 0; i < As.size(); ++i) ws.push_back(std::sqrt(w[i] * sc[i]));
            A.copy_(combine_tensors(As, ws, o, gen));
            B.copy_(combine_tensors(Bs, ws, o, gen));
        }
    }
    return set;
}

}  // namespace dt
