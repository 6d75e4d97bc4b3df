// GPT-NeoX / Pythia (GPTNeoXModel, GPTNeoXForCausalLM) following transformers 4.35's
// modeling_gpt_neox.py (eager attention): a fused query_key_value laid out per head
// ([q_h, k_h, v_h] for each head h), partial rotary embeddings (rotary_pct), parallel or sequential
// residual (use_parallel_residual), untied embed_out. HF names (gpt_neox.layers.N.attention.dense, ...).
#pragma once

#include "models/model.h"

#include <memory>

namespace dt {

std::shared_ptr<TransformerModel> make_gpt_neox(const ModelConfig& cfg, bool with_lm_head);

// GPT-NeoX's roles: one fused attn_qkv (query_key_value), as PEFT's default target.
const RoleTable& gpt_neox_roles();

}  // namespace dt
