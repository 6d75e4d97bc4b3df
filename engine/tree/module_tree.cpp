#include "tree/module_tree.h"

#include "io/safetensors.h"
#include "models/model.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>

namespace dt {
namespace {

std::string clean_type(std::string t) {
    const std::string ns = "torch::nn::";
    if (t.rfind(ns, 0) == 0) t = t.substr(ns.size());
    if (t.size() > 4 && t.compare(t.size() - 4, 4, "Impl") == 0) t.resize(t.size() - 4);
    return t;
}

bool is_index(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

std::string format_count(std::int64_t n) {
    char buf[32];
    if (n >= 1'000'000'000) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
    else if (n >= 1'000'000) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
    else if (n >= 10'000) std::snprintf(buf, sizeof buf, "%.1fK", n / 1e3);
    else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
    return buf;
}

std::string format_bytes(std::int64_t n) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    if (u == 0) std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(n));
    else std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
    return buf;
}

int ModuleTree::add_node(const torch::nn::Module& m, const std::string& path, const std::string& name, int parent,
                         std::vector<const void*>& seen) {
    const int idx = static_cast<int>(nodes_.size());
    nodes_.emplace_back();
    {
        ModuleNode& n = nodes_.back();
        n.path = path;
        n.name = name;
        n.type = clean_type(m.name());
        n.parent = parent;
        for (const auto& p : m.named_parameters(/*recurse=*/false)) {
            ParamEntry e;
            e.name = p.key();
            const auto& t = p.value();
            e.shape = t.sizes().vec();
            e.numel = t.numel();
            e.bytes = e.numel * static_cast<std::int64_t>(t.element_size());
            e.trainable = t.requires_grad();
            try {
                e.dtype = st::from_scalar_type(t.scalar_type());
            } catch (...) {
                e.dtype = c10::toString(t.scalar_type());
            }
            const void* key = t.unsafeGetTensorImpl();
            auto it = std::find(seen.begin(), seen.end(), key);
            if (it != seen.end()) {
                e.tied_to = "(shared)";
            } else {
                seen.push_back(key);
                n.own_params += e.numel;
                n.total_bytes += e.bytes;
                if (e.trainable) n.trainable_params += e.numel;
            }
            n.params.push_back(std::move(e));
        }
        n.total_params = n.own_params;
    }
    for (const auto& child : m.named_children()) {
        const std::string cp = path.empty() ? child.key() : path + "." + child.key();
        const int c = add_node(*child.value(), cp, child.key(), idx, seen);
        nodes_[idx].children.push_back(c);
        nodes_[idx].total_params += nodes_[c].total_params;
        nodes_[idx].total_bytes += nodes_[c].total_bytes;
        nodes_[idx].trainable_params += nodes_[c].trainable_params;
    }
    return idx;
}

ModuleTree ModuleTree::build(const torch::nn::Module& root) {
    ModuleTree t;
    std::vector<const void*> seen;
    t.add_node(root, "", "", -1, seen);
    t.architecture_ = t.nodes_.front().type;
    return t;
}

ModuleTree ModuleTree::build(const TransformerModel& model) {
    ModuleTree t = build(static_cast<const torch::nn::Module&>(model));
    t.head_paths_ = model.output_head_paths();
    for (const auto& [alias, canonical] : model.tied_parameters()) {
        auto dot = alias.rfind('.');
        int n = t.find(alias.substr(0, dot));
        if (n < 0) continue;
        for (auto& p : t.nodes_[n].params)
            if (p.name == alias.substr(dot + 1)) p.tied_to = canonical;
    }
    return t;
}

int ModuleTree::find(const std::string& path) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].path == path) return static_cast<int>(i);
    return -1;
}

std::string ModuleTree::structure_signature(int node) const {
    const auto& n = nodes_[node];
    std::string s = n.type + "(";
    for (const auto& p : n.params) {
        s += p.name + ":" + p.dtype + "[";
        for (auto d : p.shape) s += std::to_string(d) + ",";
        s += "]" + std::string(p.trainable ? "t" : "f") + ";";
    }
    for (int c : n.children) s += nodes_[c].name + "=" + structure_signature(c) + ";";
    return s + ")";
}

std::vector<FoldedLine> ModuleTree::folded() const {
    std::vector<FoldedLine> out;
    // A ModuleList whose children are all numbered gets no line of its own: its runs print as
    // "layer.0-11" at its depth.
    auto is_list = [&](int idx) {
        const auto& n = nodes_[idx];
        return !n.children.empty() && n.params.empty() &&
               std::all_of(n.children.begin(), n.children.end(), [&](int c) { return is_index(nodes_[c].name); });
    };
    std::function<void(int, int, const std::string&)> walk = [&](int idx, int depth, const std::string& label_prefix) {
        const auto& n = nodes_[idx];
        std::size_t i = 0;
        while (i < n.children.size()) {
            const int c = n.children[i];
            if (is_list(c)) {
                walk(c, depth, label_prefix + nodes_[c].name + ".");
                ++i;
                continue;
            }
            std::size_t j = i + 1;
            if (is_index(nodes_[c].name)) {
                const std::string sig = structure_signature(c);
                while (j < n.children.size() && is_index(nodes_[n.children[j]].name) &&
                       std::stoll(nodes_[n.children[j]].name) == std::stoll(nodes_[n.children[j - 1]].name) + 1 &&
                       structure_signature(n.children[j]) == sig)
                    ++j;
            }
            FoldedLine line;
            line.node = c;
            line.depth = depth;
            line.count = static_cast<int>(j - i);
            std::string label = nodes_[c].name;
            if (line.count > 1) label += "-" + nodes_[n.children[j - 1]].name;
            line.label = label_prefix + label;
            line.path = n.path.empty() ? label : n.path + "." + label;
            out.push_back(line);
            walk(c, depth + 1, "");
            i = j;
        }
    };
    walk(0, 0, "");
    return out;
}

std::string ModuleTree::to_text() const {
    std::ostringstream os;
    const auto& r = root();
    os << architecture_ << "  " << format_count(r.total_params) << " params (" << r.total_params << "), "
       << format_bytes(r.total_bytes) << "\n";
    const bool partial = r.trainable_params != r.total_params;
    for (const auto& line : folded()) {
        const auto& n = nodes_[line.node];
        os << std::string(2 * (line.depth + 1), ' ') << line.label << "  " << n.type;
        if (line.count > 1) os << " x" << line.count;
        if (n.total_params > 0) {
            os << "  " << format_count(n.total_params) << " (" << format_bytes(n.total_bytes) << ")";
            if (line.count > 1) os << " each";
            if (partial && n.trainable_params > 0) os << "  [trainable " << format_count(n.trainable_params) << "]";
        }
        for (const auto& p : n.params) {
            os << "  " << p.name << "[";
            for (std::size_t k = 0; k < p.shape.size(); ++k) os << (k ? "x" : "") << p.shape[k];
            os << "] " << p.dtype;
            if (!p.tied_to.empty()) os << " tied->" << p.tied_to;
        }
        os << "\n";
    }
    return os.str();
}

std::string ModuleTree::to_json() const {
    nlohmann::ordered_json j;
    j["architecture"] = architecture_;
    j["total_params"] = root().total_params;
    j["total_bytes"] = root().total_bytes;
    j["trainable_params"] = root().trainable_params;
    nlohmann::ordered_json mods = nlohmann::ordered_json::array();
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
        const auto& n = nodes_[i];
        nlohmann::ordered_json m;
        m["path"] = n.path;
        m["type"] = n.type;
        m["params"] = n.own_params;
        m["total_params"] = n.total_params;
        m["bytes"] = n.total_bytes;
        m["trainable"] = n.trainable_params;
        nlohmann::ordered_json ps = nlohmann::ordered_json::array();
        for (const auto& p : n.params) {
            nlohmann::ordered_json pj{{"name", p.name}, {"shape", p.shape}, {"dtype", p.dtype}, {"numel", p.numel}};
            if (!p.tied_to.empty()) pj["tied_to"] = p.tied_to;
            ps.push_back(pj);
        }
        m["parameters"] = ps;
        mods.push_back(m);
    }
    j["modules"] = mods;
    nlohmann::ordered_json fold = nlohmann::ordered_json::array();
    for (const auto& line : folded())
        fold.push_back({{"path", line.path}, {"type", nodes_[line.node].type}, {"count", line.count},
                        {"total_params", nodes_[line.node].total_params}});
    j["folded"] = fold;
    j["output_head"] = head_paths_;
    return j.dump(2);
}

}  // namespace dt
