#include "delta/delta_set.h"
#include "models/quantize.h"

#include "core/error.h"
#include "delta/util.h"
#include "io/json_util.h"
#include "models/model.h"
#include "tree/module_tree.h"

#include <torch/torch.h>

#include <cstdio>
#include <set>

namespace dt {

// ---- DeltaSpec ----

DeltaSpec DeltaSpec::from_json(const nlohmann::json& j, const std::string& source) {
    DeltaSpec s;
    s.source = source;
    if (!j.is_object()) throw Error("a delta spec must be a JSON object", source);
    if (j.contains("method")) {
        if (!j["method"].is_string()) throw Error("field 'method' must be a method name such as \"lora\", got " + j["method"].dump(), source);
        s.methods.push_back(j);
        return s;
    }
    for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key() != "methods" && it.key() != "modules_to_save" && it.key() != "name")
            throw Error("unknown field '" + it.key() + "'", source, "a spec has 'methods', 'modules_to_save' and 'name'");
    if (!j.contains("methods") || !j["methods"].is_array() || j["methods"].empty())
        throw Error("field 'methods' must be a non-empty list of method objects", source);
    for (std::size_t i = 0; i < j["methods"].size(); ++i) {
        const auto& m = j["methods"][i];
        if (!m.is_object() || !m.contains("method") || !m["method"].is_string())
            throw Error("methods[" + std::to_string(i) + "] needs a string field 'method'", source);
        s.methods.push_back(m);
    }
    if (j.contains("modules_to_save")) {
        const auto& m = j["modules_to_save"];
        if (!m.is_array()) throw Error("field 'modules_to_save' must be a list of module names", source);
        for (const auto& e : m) {
            if (!e.is_string()) throw Error("'modules_to_save' entries must be strings", source);
            s.modules_to_save.push_back(e.get<std::string>());
        }
    }
    return s;
}

DeltaSpec DeltaSpec::load(const std::string& path) { return from_json(json::load_file(path), path); }

nlohmann::json DeltaSpec::to_json() const {
    nlohmann::json j;
    j["methods"] = methods;
    if (!modules_to_save.empty()) j["modules_to_save"] = modules_to_save;
    return j;
}

// ---- ParamClaims ----

ParamClaims::ParamClaims(const TransformerModel& model) : model_(model), tied_(model.tied_parameters()) {
    for (const auto& p : model.named_parameters(true))
        if (!tied_.count(p.key())) base_.insert(p.key());
}

std::string ParamClaims::canonical(const std::string& param) const {
    auto it = tied_.find(param);
    return it == tied_.end() ? param : it->second;
}

void ParamClaims::claim(const std::string& param, const std::string& owner) {
    const std::string c = canonical(param);
    auto [it, inserted] = claims_.emplace(c, owner);
    if (!inserted)
        throw Error("parameter '" + c + "' is claimed by both " + it->second + " and " + owner, "delta spec",
                    "remove one of the overlapping methods or narrow its targets");
    auto params = model_.named_parameters(true);
    auto* t = params.find(c);
    if (!t) throw Error("no parameter '" + c + "'", "delta spec");
    t->set_requires_grad(true);
}

// ---- DeltaSet ----

std::vector<std::pair<std::string, at::Tensor>> DeltaMethod::saved_tensors(TransformerModel& model) const {
    std::vector<std::pair<std::string, at::Tensor>> v;
    auto params = model.named_parameters(true);
    for (const auto& name : added_) v.emplace_back(name, params[name].detach());
    return v;
}

DeltaSet::~DeltaSet() = default;
DeltaSet::DeltaSet(DeltaSet&&) noexcept = default;
DeltaSet& DeltaSet::operator=(DeltaSet&&) noexcept = default;

DeltaSet DeltaSet::apply(TransformerModel& model, const DeltaSpec& spec) {
    DeltaSet set;
    set.spec_ = spec;
    for (auto& p : model.parameters(true)) p.set_requires_grad(false);
    ParamClaims claims(model);
    try {
        for (std::size_t i = 0; i < spec.methods.size(); ++i) {
            const auto& m = spec.methods[i];
            const std::string name = m.value("method", std::string());
            const std::string where = spec.source + ": methods[" + std::to_string(i) + "] (" + name + ")";
            const MethodInfo& info = find_method(name, where);
            auto method = info.make(m, where);
            ModuleTree tree = ModuleTree::build(model);
            AttachContext ctx{model, tree, claims, where};
            method->attach(ctx);
            set.methods_.push_back(std::move(method));
            auto params = model.named_parameters(true);
            for (const auto& a : set.methods_.back()->added()) {
                const bool trainable = !params.find(a) || params[a].requires_grad();  // VeRA's shared projections stay frozen
                claims.claim(a, name);
                if (!trainable) params[a].set_requires_grad(false);
            }
        }
        if (!spec.modules_to_save.empty()) {
            ModuleTree tree = ModuleTree::build(model);
            AttachContext ctx{model, tree, claims, spec.source + ": modules_to_save"};
            nlohmann::json sel = {{"target_modules", spec.modules_to_save}};
            // A head trained in full overlaps harmlessly with, e.g., BitFit on its bias: what a
            // method already trains is left to it.
            for (const auto& path : delta::select_targets(ctx, sel, {}, false)) {
                auto mod = delta::module_at(model, path);
                for (const auto& p : mod->named_parameters(true)) {
                    const std::string full = delta::join(path, p.key());
                    const std::string c = claims.canonical(full);
                    if (claims.is_base(full) && !claims.claims().count(c)) {
                        delta::unfreeze_param(ctx, full, "modules_to_save", set.saved_);
                        set.saved_values_.push_back(p.value().detach().clone());  // what remove() gives back
                    }
                }
            }
        }
    } catch (...) {
        set.remove(model);
        throw;
    }
    return set;
}

void DeltaSet::remove(TransformerModel& model) {
    unmerge();
    for (auto it = methods_.rbegin(); it != methods_.rend(); ++it) (*it)->detach(model);
    methods_.clear();
    {
        // modules_to_save were trained (or imported) in place: the base's own values come back.
        torch::NoGradGuard ng;
        auto params = model.named_parameters(true);
        for (std::size_t i = 0; i < saved_.size() && i < saved_values_.size(); ++i)
            if (auto* t = params.find(saved_[i])) t->copy_(saved_values_[i]);
    }
    saved_.clear();
    saved_values_.clear();
    for (auto& p : model.parameters(true)) p.set_requires_grad(true);
}

int DeltaSet::merge() {
    int n = 0;
    for (auto& m : methods_)
        if (m->can_merge() && !m->merged()) {
            m->merge();
            ++n;
        }
    return n;
}

void DeltaSet::merge_and_unload(TransformerModel& model) {
    for (const auto& m : methods_)
        if (!m->can_merge() && !m->added().empty())
            throw Error("'" + m->name() + "' cannot be merged into the base weights", "delta",
                        "export the delta instead (--format deltatune, or peft for prefix and prompt tuning); the weight-update methods (lora, ia3, adalora, loha, lokr, oft, vera) and the methods that train base weights merge");
    merge();
    for (auto it = methods_.rbegin(); it != methods_.rend(); ++it) (*it)->detach(model);  // no unmerge: keep the folded weights
    methods_.clear();
    saved_.clear();
    saved_values_.clear();
}

int DeltaSet::unmerge() {
    int n = 0;
    for (auto it = methods_.rbegin(); it != methods_.rend(); ++it)
        if ((*it)->merged()) {
            (*it)->unmerge();
            ++n;
        }
    return n;
}

std::vector<std::pair<std::string, at::Tensor>> named_trainable_parameters(const TransformerModel& model) {
    std::vector<std::pair<std::string, at::Tensor>> out;
    std::set<const void*> seen;
    for (const auto& p : model.named_parameters(true))
        if (p.value().requires_grad() && seen.insert(p.value().unsafeGetTensorImpl()).second) out.emplace_back(p.key(), p.value());
    return out;
}

std::vector<at::Tensor> trainable_parameters(const TransformerModel& model) {
    std::vector<at::Tensor> out;
    for (auto& [name, t] : named_trainable_parameters(model)) out.push_back(t);
    return out;
}

std::int64_t estimate_activation_bytes(const TransformerModel& model, std::int64_t batch, std::int64_t seq, int bytes_per_value) {
    const double h = static_cast<double>(model.hidden_size()), s = static_cast<double>(seq), b = static_cast<double>(batch);
    const double a = static_cast<double>(model.config().get_int_or("num_attention_heads", 1));
    const double per_layer_16bit = s * b * h * (34.0 + 5.0 * a * s / h);
    return static_cast<std::int64_t>(per_layer_16bit * static_cast<double>(model.num_layers()) * static_cast<double>(bytes_per_value) / 2.0);
}

Accounting DeltaSet::accounting(const TransformerModel& model) const {
    Accounting a;
    std::set<const void*> seen;
    std::set<std::string> added;
    for (const auto& m : methods_) added.insert(m->added().begin(), m->added().end());
    const auto tied = model.tied_parameters();
    for (const auto& p : model.named_parameters(true)) {
        const auto& t = p.value();
        if (!seen.insert(t.unsafeGetTensorImpl()).second) continue;
        const std::int64_t n = t.numel();
        // A quantized weight's parameter is a broadcast placeholder: its bytes are the codes' (below).
        const std::int64_t bytes = std::min<std::int64_t>(n * static_cast<std::int64_t>(t.element_size()),
                                                          static_cast<std::int64_t>(t.storage().nbytes()));
        a.total_params += n;
        a.weight_bytes += bytes;
        if (added.count(p.key())) a.delta_params += n;
        else a.base_params += n;
        if (t.requires_grad()) {
            a.trainable_params += n;
            a.gradient_bytes += bytes;
            a.adamw_bytes += 2 * n * 4;  // exp_avg and exp_avg_sq kept in float32
        }
    }
    for (const auto& m : model.modules(/*include_self=*/false))
        if (auto* lin = dynamic_cast<const LinearImpl*>(m.get()); lin && lin->quantized()) a.weight_bytes += lin->quantized()->bytes();
    auto numel_of = [&](const std::vector<std::string>& names) {
        std::int64_t s = 0;
        auto params = model.named_parameters(true);
        for (const auto& n : names)
            if (auto* t = params.find(n)) s += t->numel();
        return s;
    };
    for (const auto& m : methods_) a.per_method.push_back({m->name(), numel_of(m->added()), numel_of(m->unfrozen())});
    if (!saved_.empty()) a.per_method.push_back({"modules_to_save", 0, numel_of(saved_)});
    return a;
}

nlohmann::json Accounting::to_json() const {
    nlohmann::json per = nlohmann::json::array();
    for (const auto& m : per_method) per.push_back({{"method", m.method}, {"added_params", m.added}, {"unfrozen_params", m.unfrozen}});
    return {{"base_params", base_params},       {"delta_params", delta_params},     {"total_params", total_params},
            {"trainable_params", trainable_params}, {"trainable_percent", trainable_percent()},
            {"weight_bytes", weight_bytes},     {"gradient_bytes", gradient_bytes}, {"adamw_bytes", adamw_bytes},
            {"methods", per}};
}

std::string Accounting::summary() const {
    char buf[256];
    std::snprintf(buf, sizeof buf, "trainable params: %lld || all params: %lld || trainable%%: %.4f",
                  static_cast<long long>(trainable_params), static_cast<long long>(total_params), trainable_percent());
    return buf;
}

}  // namespace dt
