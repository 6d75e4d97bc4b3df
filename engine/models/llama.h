// Llama-family decoders (LlamaModel, LlamaForCausalLM): RMSNorm, rotary position embeddings
// (rotate_half), grouped-query attention, SwiGLU MLP; HF names (model.layers.N.self_attn.q_proj, ...).
#pragma once

#include "models/model.h"

#include <memory>
#include <string>

namespace dt {

// `family` picks the variant: "Llama" (attention_bias on q/k/v/o, head_dim, rope_scaling linear /
// dynamic / llama3, tied heads), "Mistral" (Llama plus sliding_window), "Qwen2" (q/k/v biases,
// none on o; a window only with use_sliding_window).
std::shared_ptr<TransformerModel> make_llama(const ModelConfig& cfg, bool with_lm_head, const std::string& family = "Llama");

const RoleTable& llama_roles();

}  // namespace dt
