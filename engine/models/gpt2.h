// GPT-2 (GPT2Model, GPT2LMHeadModel) following transformers 4.35's modeling_gpt2.py (eager attention):
// learned positions, pre-LayerNorm blocks, fused query/key/value projection, tied LM head. HF names
// (transformer.h.N.attn.c_attn, ...). GPT-2's Conv1D stores its weight as (in, out): the engine keeps
// (out, in) Linears, and the loader and writer transpose those tensors (stored_transposed()).
#pragma once

#include "models/model.h"

#include <memory>

namespace dt {

std::shared_ptr<TransformerModel> make_gpt2(const ModelConfig& cfg, bool with_lm_head);

// GPT-2's roles: one fused attn_qkv (c_attn) instead of attn_q/k/v.
const RoleTable& gpt2_roles();

}  // namespace dt
