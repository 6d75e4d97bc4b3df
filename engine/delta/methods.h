// Factories of the built-in delta methods (one file each) and the fields each accepts.
#pragma once

#include "delta/method.h"

namespace dt {

std::unique_ptr<DeltaMethod> make_lora(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_adapter(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_bitfit(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_prefix(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_prompt(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_ia3(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_layernorm(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_last_layers(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_selective(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_full(const nlohmann::json& spec, const std::string& where);

// PEFT's default target_modules for a method and model_type ("lora", "llama" -> q_proj, v_proj);
// `feedforward` gives IA3's feed-forward defaults.
std::vector<std::string> default_targets(const std::string& method, const std::string& model_type, bool feedforward = false);

// The spec fields `method` accepts (from the method table).
const std::vector<std::string>& method_fields(const std::string& method);

}  // namespace dt
