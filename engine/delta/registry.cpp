// The method table: names, the study's family, one-line summaries, parameter formulas, fields.
#include "core/error.h"
#include "delta/methods.h"

namespace dt {

namespace {
const std::vector<std::string> kSelect = {"target_modules", "exclude_modules", "layers_to_transform", "layers_pattern"};
std::vector<std::string> with_select(std::vector<std::string> v) {
    v.insert(v.end(), kSelect.begin(), kSelect.end());
    return v;
}
}  // namespace

const std::vector<MethodInfo>& method_table() {
    static const std::vector<MethodInfo> table = {
        {"lora", "reparameterization", "Low-rank update B·A beside each targeted projection",
         "r·(d_in + d_out) per target (+ d_out with DoRA)",
         with_select({"r", "lora_alpha", "lora_dropout", "use_rslora", "use_dora", "init_lora_weights", "bias",
                      "rank_pattern", "alpha_pattern", "seed"}),
         make_lora},
        {"adapter", "addition", "Bottleneck adapters (down, activation, up) at block sites",
         "2·m·d + d + m per site", {"size", "reduction_factor", "placement", "activation", "scaling", "layers_to_transform", "seed"}, make_adapter},
        {"bitfit", "specification", "Train only bias terms (all, or chosen groups)", "the chosen biases",
         {"groups"}, make_bitfit},
        {"prefix", "addition", "Trainable key/value prefixes in every attention layer",
         "P·2·L·H·D (+ P·d + d·k + k + k·2·L·H·D + 2·L·H·D with the projection MLP)",
         {"num_virtual_tokens", "prefix_projection", "encoder_hidden_size", "init_std", "seed"}, make_prefix},
        {"prompt", "addition", "Soft prompt vectors prepended to the input embeddings", "P·d",
         {"num_virtual_tokens", "prompt_tuning_init", "init_token_ids", "init_std", "seed"}, make_prompt},
        {"ia3", "reparameterization", "Learned rescaling of keys, values and the FFN input",
         "d_out per target (d_in for feed-forward targets)", with_select({"feedforward_modules"}), make_ia3},
        {"layernorm", "specification", "Train only normalisation weights and biases", "the norms' parameters", {}, make_layernorm},
        {"last_layers", "specification", "Train the last N blocks fully", "all parameters of the last N blocks",
         {"num_layers"}, make_last_layers},
        {"selective", "specification", "Train chosen modules fully, or K random ones from a seed",
         "the chosen modules' parameters", with_select({"k", "seed"}), make_selective},
        {"full", "baseline", "Full fine-tuning of every parameter", "all parameters", {}, make_full},
    };
    return table;
}

const MethodInfo& find_method(const std::string& name, const std::string& where) {
    for (const auto& m : method_table())
        if (m.name == name) return m;
    std::string list;
    for (const auto& m : method_table()) list += (list.empty() ? "" : ", ") + m.name;
    throw Error("unknown method '" + name + "'", where, "methods: " + list);
}

std::vector<std::string> default_targets(const std::string& method, const std::string& model_type, bool feedforward) {
    const bool llama = model_type == "llama";
    if (model_type == "gpt2") {  // PEFT's defaults for GPT-2
        if (method == "lora") return {"c_attn"};
        if (method == "ia3") return feedforward ? std::vector<std::string>{"mlp.c_proj"} : std::vector<std::string>{"c_attn", "mlp.c_proj"};
        return {};
    }
    if (method == "lora") return llama ? std::vector<std::string>{"q_proj", "v_proj"} : std::vector<std::string>{"query", "value"};
    if (method == "ia3") {
        if (feedforward) return llama ? std::vector<std::string>{"down_proj"} : std::vector<std::string>{"output.dense"};
        return llama ? std::vector<std::string>{"k_proj", "v_proj", "down_proj"} : std::vector<std::string>{"key", "value", "output.dense"};
    }
    return {};
}

const std::vector<std::string>& method_fields(const std::string& method) { return find_method(method, "").fields; }

}  // namespace dt
