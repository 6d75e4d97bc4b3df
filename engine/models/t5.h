// T5 (T5Model, T5ForConditionalGeneration, T5EncoderModel) following transformers 4.35's
// modeling_t5.py: v1.0 (ReLU, head tied to `shared` with the d_model^-0.5 rescale) and v1.1 / Flan
// (gated-gelu, untied lm_head); relative position buckets (bidirectional in the encoder, causal in
// the decoder) computed in block 0 of each stack and shared; no 1/sqrt(d) in attention; T5's
// RMS LayerNorm; cross-attention; labels shifted right into decoder_input_ids. HF names
// (encoder.block.N.layer.0.SelfAttention.q, decoder.block.N.layer.1.EncDecAttention.k, ...).
#pragma once

#include "models/model.h"

#include <memory>

namespace dt {

enum class T5Kind { Base, ConditionalGeneration, EncoderOnly };

std::shared_ptr<TransformerModel> make_t5(const ModelConfig& cfg, T5Kind kind);

const RoleTable& t5_roles();

// transformers' _relative_position_bucket: relative positions (memory - query) to bucket ids.
at::Tensor t5_relative_bucket(const at::Tensor& relative_position, bool bidirectional, std::int64_t num_buckets, std::int64_t max_distance);

}  // namespace dt
