// BERT-family encoders (BERT, RoBERTa) with HF's module and parameter names, and their heads:
// base model, masked LM, sequence classification. One code path; RoBERTa differs in position ids,
// its head names and the absence of a pooler in its head models.
#pragma once

#include "models/model.h"

#include <memory>

namespace dt {

enum class EncoderHead { None, MaskedLM, SequenceClassification };

std::shared_ptr<TransformerModel> make_bert_family(const ModelConfig& cfg, EncoderHead head);

// BERT's and RoBERTa's module roles (one table for both: their names differ only in the heads).
const RoleTable& bert_family_roles();

}  // namespace dt
