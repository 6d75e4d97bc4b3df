// Llama-family decoders (LlamaModel, LlamaForCausalLM): RMSNorm, rotary position embeddings
// (rotate_half), grouped-query attention, SwiGLU MLP; HF names (model.layers.N.self_attn.q_proj, ...).
#pragma once

#include "models/model.h"

#include <memory>

namespace dt {

std::shared_ptr<TransformerModel> make_llama(const ModelConfig& cfg, bool with_lm_head);

const RoleTable& llama_roles();

}  // namespace dt
