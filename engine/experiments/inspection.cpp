#include "experiments/inspection.h"

#include "delta/delta_set.h"
#include "delta/method.h"
#include "delta/util.h"
#include "models/model.h"
#include "train/run.h"
#include "train/run_folder.h"

#include <torch/torch.h>

#include <regex>
#include <set>

namespace dt {
namespace {

bool is_delta_part(const std::string& c) {
    static const std::set<std::string> parts = {"weight", "bias", "lora_A", "lora_B", "lora_magnitude_vector", "ia3_l", "down", "up", "embedding"};
    return parts.count(c) != 0;
}

// The module a parameter belongs to, with the delta's own sub-modules folded into their host.
std::string owner_module(std::string name) {
    for (;;) {
        const auto dot = name.find_last_of('.');
        if (dot == std::string::npos) return name;
        const std::string last = name.substr(dot + 1);
        const std::string before = name.substr(0, dot);
        const bool seq_index = !last.empty() && std::isdigit(static_cast<unsigned char>(last[0])) &&
                               before.size() >= 10 && before.compare(before.size() - 10, 10, ".transform") == 0;
        if (is_delta_part(last) || seq_index || last == "transform") name = before;
        else return name;
    }
}

}  // namespace

std::map<std::string, at::Tensor> snapshot_trainable(const TransformerModel& model) {
    torch::NoGradGuard ng;
    std::map<std::string, at::Tensor> out;
    for (const auto& p : model.named_parameters(true))
        if (p.value().requires_grad()) out.emplace(p.key(), p.value().detach().clone());
    return out;
}

std::vector<NamedValue> delta_magnitudes(TransformerModel& model, const DeltaSet& deltas, const std::map<std::string, at::Tensor>& initial) {
    torch::NoGradGuard ng;
    std::vector<NamedValue> out;
    std::set<std::string> covered;
    for (const auto& m : deltas.methods()) {
        if (m->merged()) {
            for (const auto& n : m->added()) covered.insert(n);
            continue;
        }
        if (!m->can_merge()) continue;
        for (const auto& path : m->targets()) {
            LinearImpl& host = delta::linear_at(model, path, "delta inspection");
            const bool was_training = host.is_training();
            host.eval();  // no dropout in the probe
            // Probed in the activations' type, against the weight the products use (a bf16 or
            // quantized base computes with fp32 activations).
            const at::Tensor w = host.dense_weight();
            const auto opts = w.options();
            const at::Tensor probe = host.forward(torch::eye(host.in_features(), opts)) - host.forward(torch::zeros({1, host.in_features()}, opts));
            host.train(was_training);
            const at::Tensor dw = probe.t() - w;
            const double base = w.norm().item<double>();
            out.push_back({path, dw.norm().item<double>() / (base > 0 ? base : 1.0)});
        }
        for (const auto& n : m->added()) covered.insert(n);
    }
    // Everything else trainable, grouped by owning module in model order: the change relative to
    // the module's parameters at the start (frozen ones included, so a BitFit bias is measured
    // against its whole Linear, as LoRA's dW is against W).
    std::vector<std::string> order;
    struct Sums {
        double diff = 0, ref = 0;
        bool trained = false;
    };
    std::map<std::string, Sums> sums;
    std::set<const void*> seen;
    for (const auto& p : model.named_parameters(true)) {
        const at::Tensor& t = p.value();
        if (covered.count(p.key()) || !seen.insert(t.unsafeGetTensorImpl()).second) continue;
        const std::string mod = owner_module(p.key());
        auto& s = sums[mod];
        const auto it = initial.find(p.key());
        if (t.requires_grad() && it != initial.end() && it->second.sizes() == t.sizes()) {
            const at::Tensor t0 = it->second.to(t.device(), t.scalar_type());
            s.diff += (t - t0).pow(2).sum().item<double>();
            s.ref += t0.pow(2).sum().item<double>();
            if (!s.trained) order.push_back(mod);
            s.trained = true;
        } else if (!t.requires_grad()) {
            s.ref += t.pow(2).sum().item<double>();
        }
    }
    for (const auto& mod : order) {
        const auto& s = sums[mod];
        out.push_back({mod, s.ref > 0 ? std::sqrt(s.diff / s.ref) : std::sqrt(s.diff)});
    }
    return out;
}

std::pair<int, std::string> layer_and_module(const std::string& name) {
    static const std::regex block(R"(^(?:.*?\.)?(?:layer|layers|h|block)\.(\d+)\.(.+)$)");
    const std::string mod = owner_module(name);
    std::smatch m;
    if (std::regex_match(mod, m, block)) return {std::stoi(m[1].str()), m[2].str()};
    return {-1, mod};
}

ResultMatrix layer_module_grid(const std::vector<NamedValue>& values, std::int64_t num_layers, const std::string& kind,
                               const std::string& metric) {
    ResultMatrix r;
    r.kind = kind;
    r.metric = metric;
    std::map<std::string, std::size_t> col;
    std::map<std::pair<int, std::size_t>, double> sq;
    bool other = false;
    for (const auto& v : values) {
        auto [layer, mod] = layer_and_module(v.name);
        if (layer >= num_layers) layer = -1;
        if (layer < 0) {
            other = true;
            mod = v.name == mod ? mod : owner_module(v.name);
        }
        if (!col.count(mod)) {
            col[mod] = r.cols.size();
            r.cols.push_back(mod);
        }
        sq[{layer, col[mod]}] += v.value * v.value;
    }
    for (std::int64_t l = 0; l < num_layers; ++l) r.rows.push_back("layer " + std::to_string(l));
    if (other) r.rows.push_back("other");
    r.value.assign(r.rows.size(), std::vector<double>(r.cols.size(), NAN));
    r.note.assign(r.rows.size(), std::vector<std::string>(r.cols.size()));
    for (const auto& [key, s] : sq) {
        const std::size_t row = key.first < 0 ? static_cast<std::size_t>(num_layers) : static_cast<std::size_t>(key.first);
        r.value[row][key.second] = std::sqrt(s);
    }
    return r;
}

ResultMatrix inspect_run_delta(const std::string& run_dir, const std::string& checkpoint) {
    LoadedRun r = open_run(run_dir);
    const auto start = snapshot_trainable(*r.model.model);
    run_folder::load_trainable(*r.model.model, run_folder::checkpoint_path(run_dir, run_folder::pick_checkpoint(run_dir, checkpoint)));
    return layer_module_grid(delta_magnitudes(*r.model.model, r.deltas, start), r.model.model->num_layers(), "delta_magnitude",
                             "relative change");
}

}  // namespace dt
