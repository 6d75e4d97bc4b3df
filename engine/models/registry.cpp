#include "models/registry.h"

#include "core/error.h"
#include "models/bert.h"
#include "models/distilbert.h"
#include "models/gpt2.h"
#include "models/gpt_neox.h"
#include "models/llama.h"
#include "models/roles.h"
#include "models/t5.h"

#include <algorithm>
#include <torch/nn/module.h>

namespace dt {

namespace {
std::vector<ArchitectureEntry>& architecture_rows() {
    static std::vector<ArchitectureEntry> table = {
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
        {"DistilBertModel", "distilbert", "base", true, [](const ModelConfig& c) { return make_distilbert(c, EncoderHead::None); }},
        {"DistilBertForMaskedLM", "distilbert", "masked-lm", false,
         [](const ModelConfig& c) { return make_distilbert(c, EncoderHead::MaskedLM); }},
        {"DistilBertForSequenceClassification", "distilbert", "sequence-classification", false,
         [](const ModelConfig& c) { return make_distilbert(c, EncoderHead::SequenceClassification); }},
        {"LlamaModel", "llama", "base", true, [](const ModelConfig& c) { return make_llama(c, false); }},
        {"LlamaForCausalLM", "llama", "causal-lm", false, [](const ModelConfig& c) { return make_llama(c, true); }},
        {"MistralModel", "mistral", "base", true, [](const ModelConfig& c) { return make_llama(c, false, "Mistral"); }},
        {"MistralForCausalLM", "mistral", "causal-lm", false, [](const ModelConfig& c) { return make_llama(c, true, "Mistral"); }},
        {"Qwen2Model", "qwen2", "base", true, [](const ModelConfig& c) { return make_llama(c, false, "Qwen2"); }},
        {"Qwen2ForCausalLM", "qwen2", "causal-lm", false, [](const ModelConfig& c) { return make_llama(c, true, "Qwen2"); }},
        {"GPTNeoXModel", "gpt_neox", "base", true, [](const ModelConfig& c) { return make_gpt_neox(c, false); }},
        {"GPTNeoXForCausalLM", "gpt_neox", "causal-lm", false, [](const ModelConfig& c) { return make_gpt_neox(c, true); }},
        {"T5Model", "t5", "base", true, [](const ModelConfig& c) { return make_t5(c, T5Kind::Base); }},
        {"T5ForConditionalGeneration", "t5", "seq2seq-lm", false, [](const ModelConfig& c) { return make_t5(c, T5Kind::ConditionalGeneration); }},
        {"T5EncoderModel", "t5", "encoder", false, [](const ModelConfig& c) { return make_t5(c, T5Kind::EncoderOnly); }},
        {"GPT2Model", "gpt2", "base", true, [](const ModelConfig& c) { return make_gpt2(c, false); }},
        {"GPT2LMHeadModel", "gpt2", "causal-lm", false, [](const ModelConfig& c) { return make_gpt2(c, true); }},
    };
    return table;
}
}  // namespace

const std::vector<ArchitectureEntry>& architecture_table() { return architecture_rows(); }

void register_architecture(ArchitectureEntry entry) {
    for (const auto& e : architecture_rows())
        if (e.architecture == entry.architecture)
            throw Error("architecture '" + entry.architecture + "' is already registered", "register_architecture");
    if (!entry.make) throw Error("architecture '" + entry.architecture + "' has no factory", "register_architecture");
    architecture_rows().push_back(std::move(entry));
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

// Roles (models/roles.h) live here with the table they belong to.

namespace {
const std::vector<std::pair<Role, const char*>>& role_names() {
    static const std::vector<std::pair<Role, const char*>> names = {
        {Role::AttnQ, "attn_q"},   {Role::AttnK, "attn_k"},     {Role::AttnV, "attn_v"},     {Role::AttnQKV, "attn_qkv"},
        {Role::AttnOut, "attn_out"}, {Role::FfnUp, "ffn_up"},   {Role::FfnGate, "ffn_gate"}, {Role::FfnDown, "ffn_down"},
        {Role::Norm, "norm"},      {Role::Embed, "embed"},      {Role::Head, "head"},
    };
    return names;
}
}  // namespace

const char* role_name(Role r) {
    for (const auto& [role, name] : role_names())
        if (role == r) return name;
    return "?";
}

std::optional<Role> role_from_name(const std::string& name) {
    for (const auto& [role, n] : role_names())
        if (name == n) return role;
    return std::nullopt;
}

const std::vector<Role>& all_roles() {
    static const std::vector<Role> roles = [] {
        std::vector<Role> v;
        for (const auto& rn : role_names()) v.push_back(rn.first);
        return v;
    }();
    return roles;
}

bool name_matches(const std::string& path, const std::string& name) {
    if (path == name) return true;
    return path.size() > name.size() && path.compare(path.size() - name.size(), name.size(), name) == 0 &&
           path[path.size() - name.size() - 1] == '.';
}

RoleTable& RoleTable::set(Role r, std::vector<std::string> names) {
    for (auto& row : rows_)
        if (row.first == r) {
            row.second = std::move(names);
            return *this;
        }
    rows_.emplace_back(r, std::move(names));
    return *this;
}

const std::vector<std::string>& RoleTable::names(Role r) const {
    static const std::vector<std::string> none;
    for (const auto& row : rows_)
        if (row.first == r) return row.second;
    return none;
}

std::vector<std::string> RoleTable::targets(const std::vector<Role>& roles) const {
    std::vector<std::string> out;
    for (Role r : roles) {
        const bool part_of_qkv = r == Role::AttnQ || r == Role::AttnK || r == Role::AttnV;
        for (const auto& n : (part_of_qkv && !has(r)) ? names(Role::AttnQKV) : names(r))
            if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
    return out;
}

std::optional<Role> RoleTable::role_of(const std::string& path) const {
    std::optional<Role> best;
    std::size_t best_len = 0;
    for (const auto& [role, names] : rows_)
        for (const auto& n : names)
            if (n.size() > best_len && name_matches(path, n)) {
                best = role;
                best_len = n.size();
            }
    return best;
}

std::vector<std::string> RoleTable::find(const torch::nn::Module& root, Role r, bool linear_only) const {
    std::vector<std::string> out;
    for (const auto& m : root.named_modules("", /*include_self=*/false)) {
        if (linear_only && !dynamic_cast<const LinearImpl*>(m.value().get())) continue;
        if (role_of(m.key()) == r) out.push_back(m.key());
    }
    return out;
}

std::string TransformerModel::word_embeddings_path() const {
    const auto paths = roles().find(*this, Role::Embed);
    if (paths.empty())
        throw Error("the model has no module with the embed role", name(), "declare it in the architecture's role table");
    return paths.front();
}

}  // namespace dt
