#include "delta/util.h"

#include "core/error.h"
#include "models/model.h"
#include "tree/module_tree.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>

namespace dt::delta {

std::shared_ptr<torch::nn::Module> module_at(TransformerModel& model, const std::string& path) {
    if (path.empty()) return nullptr;
    std::shared_ptr<torch::nn::Module> cur;
    torch::nn::Module* at = &model;
    std::size_t start = 0;
    while (start <= path.size()) {
        const auto dot = path.find('.', start);
        const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        auto children = at->named_children();
        auto* found = children.find(part);
        if (!found) return nullptr;
        cur = *found;
        at = cur.get();
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return cur;
}

LinearImpl& linear_at(TransformerModel& model, const std::string& path, const std::string& where) {
    auto m = module_at(model, path);
    auto* lin = m ? dynamic_cast<LinearImpl*>(m.get()) : nullptr;
    if (!lin) throw Error("module '" + path + "' is not a Linear layer", where, "target projections, e.g. query or value");
    return *lin;
}

std::string join(const std::string& path, const std::string& local) { return path.empty() ? local : path + "." + local; }

void check_fields(const nlohmann::json& spec, const std::vector<std::string>& allowed, const std::string& where) {
    if (!spec.is_object()) throw Error("a method must be a JSON object", where);
    for (auto it = spec.begin(); it != spec.end(); ++it) {
        if (it.key() == "method") continue;
        if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
            std::string list;
            for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
            throw Error("unknown field '" + it.key() + "'", where, "accepted: " + (list.empty() ? "none" : list));
        }
    }
}

std::int64_t int_field(const nlohmann::json& spec, const std::string& key, std::int64_t fallback, const std::string& where,
                       std::int64_t min_value) {
    if (!spec.contains(key) || spec[key].is_null()) return fallback;
    const auto& v = spec[key];
    if (!v.is_number_integer()) throw Error("field '" + key + "' must be an integer, got " + v.dump(), where);
    const auto n = v.get<std::int64_t>();
    if (n < min_value)
        throw Error("field '" + key + "' must be at least " + std::to_string(min_value) + ", got " + std::to_string(n), where);
    return n;
}

double number_field(const nlohmann::json& spec, const std::string& key, double fallback, const std::string& where) {
    if (!spec.contains(key) || spec[key].is_null()) return fallback;
    if (!spec[key].is_number()) throw Error("field '" + key + "' must be a number, got " + spec[key].dump(), where);
    return spec[key].get<double>();
}

std::string string_field(const nlohmann::json& spec, const std::string& key, const std::string& fallback,
                         const std::string& where, const std::vector<std::string>& choices) {
    if (!spec.contains(key) || spec[key].is_null()) return fallback;
    if (!spec[key].is_string()) throw Error("field '" + key + "' must be a string, got " + spec[key].dump(), where);
    const auto s = spec[key].get<std::string>();
    if (!choices.empty() && std::find(choices.begin(), choices.end(), s) == choices.end()) {
        std::string list;
        for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
        throw Error("field '" + key + "' is '" + s + "'", where, "choose one of: " + list);
    }
    return s;
}

bool bool_field(const nlohmann::json& spec, const std::string& key, bool fallback, const std::string& where) {
    if (!spec.contains(key) || spec[key].is_null()) return fallback;
    if (!spec[key].is_boolean()) throw Error("field '" + key + "' must be true or false, got " + spec[key].dump(), where);
    return spec[key].get<bool>();
}

std::vector<std::string> select_targets(const AttachContext& ctx, const nlohmann::json& spec,
                                        const std::vector<std::string>& default_targets, bool linear_only) {
    SelectionSpec sel;
    try {
        sel = SelectionSpec::from_json(spec, ctx.where);
    } catch (const Error& e) {
        throw e;
    }
    if (!spec.contains("target_modules")) {
        if (default_targets.size() == 1 && default_targets[0] == "all-linear") sel.all_linear = true;
        else sel.targets = default_targets;
    }
    sel.linear_only = linear_only;
    std::vector<std::string> out;
    try {
        out = select_modules(ctx.tree, sel);
    } catch (const Error& e) {
        throw Error(e.message(), ctx.where + ": target_modules", e.hint());
    }
    if (out.empty())
        throw Error(std::string("target_modules matched no ") + (linear_only ? "Linear " : "") + "module of " +
                        ctx.tree.architecture(),
                    ctx.where + ": target_modules", "list the modules with 'deltatune inspect MODEL'");
    return out;
}

void unfreeze_param(AttachContext& ctx, const std::string& full_name, const std::string& owner,
                    std::vector<std::string>& unfrozen) {
    ctx.claims.claim(full_name, owner);
    unfrozen.push_back(ctx.claims.canonical(full_name));
}

void unfreeze_module(AttachContext& ctx, const std::string& path, const std::string& owner,
                     std::vector<std::string>& unfrozen) {
    torch::nn::Module* m = path.empty() ? static_cast<torch::nn::Module*>(&ctx.model) : module_at(ctx.model, path).get();
    if (!m) throw Error("no module '" + path + "'", ctx.where);
    std::set<std::string> done;  // a tied tensor appears under two names: claim it once
    for (const auto& p : m->named_parameters(true)) {
        const std::string full = join(path, p.key());
        if (!ctx.claims.is_base(full)) continue;  // never another method's tensors
        if (done.insert(ctx.claims.canonical(full)).second) unfreeze_param(ctx, full, owner, unfrozen);
    }
}

at::Generator make_generator(std::uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

}  // namespace dt::delta
