// DistilBERT (DistilBertModel, DistilBertForMaskedLM, DistilBertForSequenceClassification) following
// transformers 4.35's modeling_distilbert.py: its own config names (dim, n_layers, n_heads,
// hidden_dim, activation), no token types, optional sinusoidal positions, post-LN blocks
// (sa_layer_norm, output_layer_norm), q scaled before q.k and masked by replacement, and a
// pre-classifier instead of a pooler. HF names (distilbert.transformer.layer.N.attention.q_lin, ...).
#pragma once

#include "models/bert.h"

#include <memory>

namespace dt {

std::shared_ptr<TransformerModel> make_distilbert(const ModelConfig& cfg, EncoderHead head);

const RoleTable& distilbert_roles();

}  // namespace dt
