// Factories of the built-in delta methods (one file each) and the fields each accepts.
#pragma once

#include "delta/method.h"
#include "models/roles.h"

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
std::unique_ptr<DeltaMethod> make_ptuning(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_adalora(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_loha(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_lokr(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_oft(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<DeltaMethod> make_vera(const nlohmann::json& spec, const std::string& where);

// lycoris' factorization of a dimension into (m, n), m <= n, m·n = dim (LoKr's Kronecker shapes).
std::pair<std::int64_t, std::int64_t> lycoris_factorization(std::int64_t dim, std::int64_t factor);

// PEFT's default target_modules for a method, from the model's role table: LoRA attn_q + attn_v,
// IA3 attn_k + attn_v + ffn_down; `feedforward` gives IA3's feed-forward defaults (ffn_down).
std::vector<std::string> default_targets(const std::string& method, const RoleTable& roles, bool feedforward = false);

// The spec fields `method` accepts (from the method table).
std::vector<std::string> method_fields(const std::string& method);

// BitFit's bias groups, in the order the method panel lists them.
extern const std::vector<std::string> kBiasGroups;

}  // namespace dt
