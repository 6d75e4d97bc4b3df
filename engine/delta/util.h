// Helpers shared by the delta methods: module lookup by HF path, spec fields with errors that name
// the field, and target selection that fails when nothing matches.
#pragma once

#include "delta/delta_set.h"
#include "models/layers.h"
#include "tree/selection.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace dt::delta {

std::shared_ptr<torch::nn::Module> module_at(TransformerModel& model, const std::string& path);
LinearImpl& linear_at(TransformerModel& model, const std::string& path, const std::string& where);
std::string join(const std::string& path, const std::string& local);

// Rejects fields not in `allowed` (plus "method"), naming the first unknown one.
void check_fields(const nlohmann::json& spec, const std::vector<std::string>& allowed, const std::string& where);
std::int64_t int_field(const nlohmann::json& spec, const std::string& key, std::int64_t fallback, const std::string& where,
                       std::int64_t min_value);
double number_field(const nlohmann::json& spec, const std::string& key, double fallback, const std::string& where);
std::string string_field(const nlohmann::json& spec, const std::string& key, const std::string& fallback,
                         const std::string& where, const std::vector<std::string>& choices = {});
bool bool_field(const nlohmann::json& spec, const std::string& key, bool fallback, const std::string& where);

// target_modules / exclude_modules / layers_to_transform / layers_pattern from the spec; when the
// spec has no target_modules, `default_targets` is used. Throws naming target_modules when nothing
// matches.
std::vector<std::string> select_targets(const AttachContext& ctx, const nlohmann::json& spec,
                                        const std::vector<std::string>& default_targets, bool linear_only);

// Makes every parameter of the module at `path` (recursively) trainable under `owner`.
void unfreeze_module(AttachContext& ctx, const std::string& path, const std::string& owner,
                     std::vector<std::string>& unfrozen);
void unfreeze_param(AttachContext& ctx, const std::string& full_name, const std::string& owner,
                    std::vector<std::string>& unfrozen);

// A seeded CPU generator for reproducible inits.
at::Generator make_generator(std::uint64_t seed);

}  // namespace dt::delta
