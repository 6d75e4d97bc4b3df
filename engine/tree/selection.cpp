#include "tree/selection.h"

#include "core/error.h"
#include "tree/module_tree.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <regex>

namespace dt {
namespace {

bool list_match(const std::string& path, const std::vector<std::string>& names) {
    for (const auto& t : names) {
        if (path == t) return true;
        if (path.size() > t.size() && path.compare(path.size() - t.size(), t.size(), t) == 0 &&
            path[path.size() - t.size() - 1] == '.')
            return true;
    }
    return false;
}

std::regex compile(const std::string& re, const char* field) {
    try {
        return std::regex(re, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        throw Error("invalid regular expression '" + re + "': " + e.what(), field);
    }
}

std::vector<std::string> string_list(const nlohmann::json& v, const std::string& field, const std::string& where) {
    std::vector<std::string> out;
    for (const auto& e : v) {
        if (!e.is_string()) throw Error("'" + field + "' entries must be strings", where);
        out.push_back(e.get<std::string>());
    }
    return out;
}

}  // namespace

SelectionSpec SelectionSpec::from_json(const nlohmann::json& j, const std::string& where) {
    SelectionSpec s;
    if (!j.is_object()) throw Error("selection must be a JSON object", where);
    if (j.contains("target_modules")) {
        const auto& t = j["target_modules"];
        if (t.is_string()) {
            if (t.get<std::string>() == "all-linear") s.all_linear = true;
            else s.target_regex = t.get<std::string>();
        } else if (t.is_array()) {
            s.targets = string_list(t, "target_modules", where);
        } else {
            throw Error("'target_modules' must be a string (regex) or a list of names", where);
        }
    }
    if (j.contains("exclude_modules") && !j["exclude_modules"].is_null()) {
        const auto& t = j["exclude_modules"];
        if (t.is_string()) s.exclude_regex = t.get<std::string>();
        else if (t.is_array()) s.exclude = string_list(t, "exclude_modules", where);
        else throw Error("'exclude_modules' must be a string (regex) or a list of names", where);
    }
    if (j.contains("layers_to_transform") && !j["layers_to_transform"].is_null()) {
        const auto& l = j["layers_to_transform"];
        if (l.is_number_integer()) s.layers.push_back(l.get<int>());
        else if (l.is_array()) {
            for (const auto& e : l) {
                if (!e.is_number_integer()) throw Error("'layers_to_transform' entries must be integers", where);
                s.layers.push_back(e.get<int>());
            }
        } else throw Error("'layers_to_transform' must be an integer or a list of integers", where);
    }
    if (j.contains("layers_pattern") && !j["layers_pattern"].is_null()) {
        const auto& p = j["layers_pattern"];
        if (p.is_string()) s.layers_pattern.push_back(p.get<std::string>());
        else if (p.is_array()) s.layers_pattern = string_list(p, "layers_pattern", where);
        else throw Error("'layers_pattern' must be a string or a list of strings", where);
    }
    return s;
}

int layer_index_of(const std::string& path, const std::vector<std::string>& patterns) {
    // PEFT: re.match(r".*\.[^.]*\.(\d+)\.", key) or, per pattern, r".*\.{pattern}\.(\d+)\." (greedy: last hit).
    std::smatch m;
    if (patterns.empty()) {
        static const std::regex generic(R"(^.*\.[^.]*\.(\d+)\..*$)");
        if (std::regex_match(path, m, generic)) return std::stoi(m[1].str());
        return -1;
    }
    for (const auto& p : patterns) {
        std::regex re("^.*\\." + p + "\\.(\\d+)\\..*$");
        if (std::regex_match(path, m, re)) return std::stoi(m[1].str());
    }
    return -1;
}

bool matches_target(const std::string& path, const SelectionSpec& spec) {
    if (spec.target_regex) return std::regex_match(path, compile(*spec.target_regex, "target_modules"));
    return list_match(path, spec.targets);
}

std::vector<std::string> select_modules(const ModuleTree& tree, const SelectionSpec& spec) {
    if (!spec.all_linear && !spec.target_regex && spec.targets.empty())
        throw Error("no targets given", "target_modules", "name modules, give a regex, or use all-linear");
    std::optional<std::regex> target_re, exclude_re;
    if (spec.target_regex) target_re = compile(*spec.target_regex, "target_modules");
    if (spec.exclude_regex) exclude_re = compile(*spec.exclude_regex, "exclude_modules");
    const auto& heads = tree.output_head_paths();
    std::vector<std::string> out;
    for (std::size_t i = 1; i < tree.nodes().size(); ++i) {
        const auto& n = tree.nodes()[i];
        bool hit;
        if (spec.all_linear) {
            hit = n.is_linear() && std::find(heads.begin(), heads.end(), n.path) == heads.end();
        } else if (target_re) {
            hit = std::regex_match(n.path, *target_re);
        } else {
            hit = list_match(n.path, spec.targets);
        }
        if (!hit) continue;
        if (spec.linear_only && !n.is_linear()) continue;
        if (exclude_re ? std::regex_match(n.path, *exclude_re) : list_match(n.path, spec.exclude)) continue;
        if (!spec.layers.empty()) {
            const int li = layer_index_of(n.path, spec.layers_pattern);
            if (li < 0 || std::find(spec.layers.begin(), spec.layers.end(), li) == spec.layers.end()) continue;
        }
        out.push_back(n.path);
    }
    return out;
}

namespace {

template <typename T>
void sort_unique(std::vector<T>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

// The last name of each ticked path (the whole path when it has no dot), sorted and unique.
std::vector<std::string> short_names_of(const std::vector<std::string>& ticked) {
    std::vector<std::string> names;
    for (const auto& p : ticked) names.push_back(p.substr(p.find_last_of('.') + 1));  // npos + 1: the whole path
    sort_unique(names);
    return names;
}

// Whether `sel` selects exactly the ticked paths.
bool selects_exactly(const ModuleTree& tree, const SelectionSpec& sel, std::vector<std::string> ticked) {
    std::vector<std::string> selected = select_modules(tree, sel);
    std::sort(selected.begin(), selected.end());
    std::sort(ticked.begin(), ticked.end());
    return selected == ticked;
}

}  // namespace

std::vector<std::string> target_modules_for(const ModuleTree& tree, const std::vector<std::string>& ticked, bool linear_only) {
    if (ticked.empty()) return {};
    SelectionSpec sel;
    sel.targets = short_names_of(ticked);
    sel.linear_only = linear_only;
    return selects_exactly(tree, sel, ticked) ? sel.targets : ticked;
}

std::pair<std::vector<std::string>, std::vector<int>> targets_and_layers_for(const ModuleTree& tree, const std::vector<std::string>& ticked,
                                                                             bool linear_only) {
    if (ticked.empty()) return {};
    SelectionSpec sel;
    for (const auto& p : ticked) {
        const int layer = layer_index_of(p, {});
        if (layer < 0) return {};  // a module outside the blocks: no layer list can say it
        sel.layers.push_back(layer);
    }
    sort_unique(sel.layers);
    sel.targets = short_names_of(ticked);
    sel.linear_only = linear_only;
    if (!selects_exactly(tree, sel, ticked)) return {};
    return {sel.targets, sel.layers};
}

}  // namespace dt
