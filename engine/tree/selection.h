// Module selection with Hugging Face PEFT's semantics:
// - a list of names: an entry matches a module path equal to it or ending in "." + entry;
// - a single string: a regular expression that must match the whole path;
// - "all-linear": every Linear except the output head;
// - layers_to_transform: keep only modules whose layer index (the number after `layers_pattern`,
//   or after the last "<name>.<n>." when no pattern is given) is listed;
// - exclude: the same two forms, removing matches.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <vector>

namespace dt {

class ModuleTree;

struct SelectionSpec {
    std::vector<std::string> targets;         // list form
    std::optional<std::string> target_regex;  // single-string form
    bool all_linear = false;
    std::vector<std::string> exclude;
    std::optional<std::string> exclude_regex;
    std::vector<int> layers;                  // layers_to_transform; empty = all
    std::vector<std::string> layers_pattern;  // empty = PEFT's generic rule
    bool linear_only = false;                 // keep only Linear modules among matches

    // From PEFT-style JSON keys: target_modules, exclude_modules, layers_to_transform, layers_pattern.
    static SelectionSpec from_json(const nlohmann::json& j, const std::string& where);
};

// Whether `path` is selected by the name part of the spec (ignores layers and module kind).
bool matches_target(const std::string& path, const SelectionSpec& spec);
// The layer index in `path` per PEFT's rule, or -1.
int layer_index_of(const std::string& path, const std::vector<std::string>& layers_pattern);

// Matched module paths in tree order. Throws dt::Error for an invalid regex or an empty spec.
std::vector<std::string> select_modules(const ModuleTree& tree, const SelectionSpec& spec);

// The shortest PEFT target_modules that selects exactly the `ticked` module paths: their last name
// components ("query") when those select exactly the ticks (only Linear modules when linear_only),
// else the full paths, each of which matches itself. Empty for no ticks.
std::vector<std::string> target_modules_for(const ModuleTree& tree, const std::vector<std::string>& ticked, bool linear_only);
// The ticks as PEFT's short target_modules plus layers_to_transform (e.g. ["value"] on layers [1]),
// when that pair selects exactly them; empty targets otherwise.
std::pair<std::vector<std::string>, std::vector<int>> targets_and_layers_for(const ModuleTree& tree, const std::vector<std::string>& ticked,
                                                                             bool linear_only);

}  // namespace dt
