// Parameter budgets (see budget.h).
#include "delta/budget.h"

#include "experiments/inspection.h"
#include "models/model.h"
#include "train/defaults.h"
#include "tree/module_tree.h"

#include <torch/torch.h>

#include <map>
#include <set>

namespace dt {
namespace {

// The tree node holding parameter `name`: the longest module path that prefixes it.
int node_of(const ModuleTree& tree, std::string path) {
    int node = -1;
    while (node < 0 && !path.empty()) {
        const auto dot = path.find_last_of('.');
        path = dot == std::string::npos ? std::string() : path.substr(0, dot);
        node = tree.find(path);
    }
    return node < 0 ? 0 : node;
}

void count_per_node(const ModuleTree& tree, const std::map<std::string, std::int64_t>& numel, Budget& b) {
    b.per_node.assign(tree.nodes().size(), 0);
    for (const auto& [name, n] : numel)
        for (int node = node_of(tree, name); node >= 0; node = tree.nodes()[static_cast<std::size_t>(node)].parent)
            b.per_node[static_cast<std::size_t>(node)] += n;
}

void count_per_layer(const DeltaSet& set, std::int64_t layers, const std::map<std::string, std::int64_t>& numel, Budget& b) {
    for (std::int64_t l = 0; l < layers; ++l) b.columns.push_back(std::to_string(l));
    b.columns.push_back("other");
    std::set<std::string> claimed;
    auto add = [&](const std::string& row_name, const std::vector<std::string>& names, bool spread) {
        std::vector<double> row(b.columns.size(), 0.0);
        for (const auto& n : names) {
            const auto it = numel.find(n);
            if (it == numel.end() || !claimed.insert(n).second) continue;
            const int layer = layer_and_module(n).first;
            if (layer < 0 && spread && layers > 0) {  // e.g. prefix tuning's table: an equal share per layer
                for (std::int64_t l = 0; l < layers; ++l) row[static_cast<std::size_t>(l)] += static_cast<double>(it->second) / static_cast<double>(layers);
                continue;
            }
            row[layer >= 0 && layer < layers ? static_cast<std::size_t>(layer) : static_cast<std::size_t>(layers)] += static_cast<double>(it->second);
        }
        b.rows.push_back(row_name);
        b.counts.push_back(std::move(row));
    };
    for (const auto& m : set.methods()) {
        std::vector<std::string> names = m->added();
        names.insert(names.end(), m->unfrozen().begin(), m->unfrozen().end());
        add(m->name(), names, m->spans_layers());
    }
    std::vector<std::string> rest;
    for (const auto& [n, c] : numel)
        if (!claimed.count(n)) rest.push_back(n);
    if (!rest.empty()) add("modules_to_save", rest, false);
}

}  // namespace

Budget budget(TransformerModel& model, const ModuleTree& tree, const DeltaSpec& spec) {
    DeltaSet set = DeltaSet::apply(model, spec);
    Budget b;
    try {
        b.accounting = set.accounting(model);
        std::map<std::string, std::int64_t> numel;  // trainable, each tensor once
        for (const auto& [name, t] : named_trainable_parameters(model)) numel[name] = t.numel();
        count_per_node(tree, numel, b);
        count_per_layer(set, model.num_layers(), numel, b);
        std::int64_t virtual_tokens = 0;  // soft prompts lengthen every sequence
        for (const auto& m : set.methods()) virtual_tokens += m->extra_tokens();
        b.virtual_tokens = virtual_tokens;
        b.activation_batch = TrainingDefaults::batch_size;
        b.activation_tokens = 128 + virtual_tokens;
        b.activation_bytes = estimate_activation_bytes(model, b.activation_batch, b.activation_tokens);
    } catch (...) {
        set.remove(model);
        throw;
    }
    set.remove(model);
    return b;
}

}  // namespace dt
