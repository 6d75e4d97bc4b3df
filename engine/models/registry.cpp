#include "models/registry.h"

#include "core/error.h"
#include "models/bert.h"
#include "models/gpt2.h"
#include "models/llama.h"

namespace dt {

const std::vector<ArchitectureEntry>& architecture_table() {
    static const std::vector<ArchitectureEntry> table = {
        {"BertModel", "bert", "base", true, [](const ModelConfig& c) { return make_bert_family(c, EncoderHead::None); }},
        {"BertForMaskedLM", "bert", "masked-lm", false,
         [](const ModelConfig& c) { return make_bert_family(c, EncoderHead::MaskedLM); }},
        {"BertForSequenceClassification", "bert", "sequence-classification", false,
         [](const ModelConfig& c) { return make_bert_family(c, EncoderHead::SequenceClassification); }},
        {"RobertaModel", "roberta", "base", true,
         [](const ModelConfig& c) { return make_bert_family(c, EncoderHead::None); }},
        {"RobertaForMaskedLM", "roberta", "masked-lm", false,
         [](const ModelConfig& c) { return make_bert_family(c, EncoderHead::MaskedLM); }},
        {"RobertaForSequenceClassification", "roberta", "sequence-classification", false,
         [](const ModelConfig& c) { return make_bert_family(c, EncoderHead::SequenceClassification); }},
        {"LlamaModel", "llama", "base", true, [](const ModelConfig& c) { return make_llama(c, false); }},
        {"LlamaForCausalLM", "llama", "causal-lm", false, [](const ModelConfig& c) { return make_llama(c, true); }},
        {"GPT2Model", "gpt2", "base", true, [](const ModelConfig& c) { return make_gpt2(c, false); }},
        {"GPT2LMHeadModel", "gpt2", "causal-lm", false, [](const ModelConfig& c) { return make_gpt2(c, true); }},
    };
    return table;
}

std::string supported_architectures() {
    std::string s;
    for (const auto& e : architecture_table()) s += (s.empty() ? "" : ", ") + e.architecture;
    return s;
}

const ArchitectureEntry& find_architecture(const ModelConfig& cfg) {
    const auto& t = architecture_table();
    if (!cfg.architecture.empty()) {
        for (const auto& e : t)
            if (e.architecture == cfg.architecture) {
                if (!cfg.model_type.empty() && cfg.model_type != e.model_type)
                    throw Error("architecture '" + cfg.architecture + "' does not belong to model_type '" +
                                cfg.model_type + "'", cfg.source, "fix 'architectures' or 'model_type'");
                return e;
            }
        throw Error("unknown architecture '" + cfg.architecture + "'", cfg.source,
                    "supported: " + supported_architectures());
    }
    for (const auto& e : t)
        if (e.model_type == cfg.model_type && e.is_base_for_type) return e;
    throw Error("unknown model_type '" + cfg.model_type + "'", cfg.source, "supported: " + supported_architectures());
}

}  // namespace dt
