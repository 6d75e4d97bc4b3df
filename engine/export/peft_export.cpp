#include "export/peft_export.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "delta/method.h"
#include "export/peft_import.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "tree/module_tree.h"
#include "tree/selection.h"

#include <torch/torch.h>

#include <cstdio>
#include <set>

namespace dt {
namespace {

// For each wanted path the shortest dot-suffix that matches no other path of `pool` (PEFT's list
// rule), so the list selects exactly `wanted`, e.g. {"key", "value", "output.dense"} on BERT.
std::vector<std::string> short_names(const std::vector<std::string>& wanted, const std::vector<std::string>& pool) {
    const std::set<std::string> want(wanted.begin(), wanted.end());
    std::set<std::string> names;
    for (const auto& p : wanted) {
        std::string chosen = p;
        for (std::size_t pos = p.rfind('.'); pos != std::string::npos; pos = pos == 0 ? std::string::npos : p.rfind('.', pos - 1)) {
            SelectionSpec s;
            s.targets = {p.substr(pos + 1)};
            bool clean = true;
            for (const auto& q : pool) clean = clean && (want.count(q) || !matches_target(q, s));
            if (clean) {
                chosen = s.targets[0];
                break;
            }
        }
        names.insert(chosen);
    }
    return {names.begin(), names.end()};
}

std::string task_type_of(const TransformerModel& m) {
    const std::string n = m.name();
    if (n.find("SequenceClassification") != std::string::npos) return "SEQ_CLS";
    if (n.find("CausalLM") != std::string::npos) return "CAUSAL_LM";
    if (n.find("ConditionalGeneration") != std::string::npos) return "SEQ_2_SEQ_LM";
    return "FEATURE_EXTRACTION";
}

// PEFT reads the head count under each family's config name.
std::int64_t attention_heads(const ModelConfig& c) {
    for (const char* f : {"num_attention_heads", "num_heads", "n_head", "n_heads"})
        if (c.raw.contains(f) && c.raw[f].is_number_integer()) return c.raw[f].get<std::int64_t>();
    return 0;
}

}  // namespace

void export_peft(TransformerModel& model, const DeltaSet& deltas, const std::string& out_dir, const std::string& base_name) {
    if (deltas.methods().size() != 1)
        throw Error("PEFT adapters hold one method; this delta has " + std::to_string(deltas.methods().size()), out_dir,
                    "export the methods one at a time");
    const DeltaMethod& m = *deltas.methods().front();
    const std::string method = m.name();
    if (method_peft_type(method).empty())
        throw Error("PEFT has no format for '" + method + "'", out_dir,
                    "PEFT exports cover lora, adalora, loha, lokr, oft, vera, ia3, prefix, prompt and ptuning; use the DeltaTune format");
    if (m.merged()) throw Error("the delta is merged into the base weights", out_dir, "unmerge it before exporting");
    const std::string task = task_type_of(model);
    const auto params = model.named_parameters(true);
    const nlohmann::json& spec = m.spec();
    nlohmann::json cfg = {{"auto_mapping", nullptr}, {"base_model_name_or_path", base_name}, {"inference_mode", true},
                          {"revision", nullptr}, {"task_type", task}};
    st::NamedTensors tensors;
    const bool prompt_learning = method == "prefix" || method == "prompt" || method == "ptuning";
    const std::string head_prefix = prompt_learning ? "base_model." : "base_model.model.";
    std::vector<std::string> linear_pool;
    const ModuleTree tree = ModuleTree::build(model);  // kept alive: nodes() refers into it
    for (const auto& n : tree.nodes())
        if (n.is_linear()) linear_pool.push_back(n.path);
    if (method == "lora" || method == "ia3") {
        cfg["peft_type"] = method == "lora" ? "LORA" : "IA3";
        bool conv1d = false;  // GPT-2's layers store (in, out): PEFT marks their adapters fan_in_fan_out
        for (const auto& t : m.targets()) conv1d |= model.stored_transposed(t + ".weight");
        cfg["fan_in_fan_out"] = conv1d;
        cfg["modules_to_save"] = nullptr;
        cfg["target_modules"] = short_names(m.targets(), linear_pool);
        for (const auto& [name, t] : m.saved_tensors(model)) tensors.emplace_back("base_model.model." + name, t);
        if (method == "lora") {
            // The method's declared options (with their defaults) under their PEFT names.
            const nlohmann::json o = resolve_options("lora", spec, out_dir);
            const MethodInfo& info = find_method("lora", out_dir);
            for (const char* f : {"r", "lora_alpha", "lora_dropout", "bias", "rank_pattern", "alpha_pattern"})
                cfg[info.option(f).peft] = o[f];
            cfg.update({{"init_lora_weights", true}, {"layers_pattern", nullptr}, {"layers_to_transform", nullptr}});
            // only when in use: peft < 0.8 rejects the fields
            for (const char* f : {"use_rslora", "use_dora"})
                if (o[f].get<bool>()) cfg[info.option(f).peft] = true;
            // PiSSA / OLoRA: saved converted for the original base (rank and alpha scaled).
            if (const nlohmann::json st = m.status(); st.is_object() && st.contains("peft_conversion")) {
                const double rf = st["peft_conversion"]["rank_factor"].get<double>(), af = st["peft_conversion"]["alpha_factor"].get<double>();
                cfg["r"] = static_cast<std::int64_t>(o["r"].get<double>() * rf);
                cfg["lora_alpha"] = o["lora_alpha"].get<double>() * af;
                for (auto& [k, v] : cfg["rank_pattern"].items()) v = static_cast<std::int64_t>(v.get<double>() * rf);
                for (auto& [k, v] : cfg["alpha_pattern"].items()) v = v.get<double>() * af;
            }
        } else {
            std::vector<std::string> ff;
            for (const auto& t : m.targets())
                if (params[t + ".ia3_l"].size(0) == 1) ff.push_back(t);
            cfg["init_ia3_weights"] = true;
            cfg["feedforward_modules"] = ff.empty() ? std::vector<std::string>{} : short_names(ff, linear_pool);
        }
    } else if (!prompt_learning) {
        // AdaLoRA, LoHa, LoKr, OFT, VeRA: every option the method declares under a PEFT name, with
        // the fields PEFT's config classes expect beside them (and none they would reject).
        cfg["peft_type"] = method_peft_type(method);
        const nlohmann::json o = resolve_options(method, spec, out_dir);
        for (const auto& opt : find_method(method, out_dir).options)
            if (!opt.peft.empty() && opt.name != "exclude_modules") cfg[opt.peft] = o.contains(opt.name) ? o[opt.name] : nlohmann::json();
        cfg["target_modules"] = short_names(m.targets(), linear_pool);
        cfg["modules_to_save"] = nullptr;
        if (method == "adalora") {
            cfg["rank_pattern"] = m.status()["rank_pattern"];
            cfg.update({{"r", 8}, {"bias", "none"}, {"fan_in_fan_out", false}, {"init_lora_weights", true}, {"alpha_pattern", nlohmann::json::object()}});
        } else if (method == "vera") {
            cfg.update({{"save_projection", true}, {"fan_in_fan_out", false}, {"bias", "none"}, {"init_weights", true}});
        } else {
            cfg["init_weights"] = true;
            if (method != "oft") cfg["use_effective_conv2d"] = false;
            else cfg.update({{"rank_pattern", nlohmann::json::object()}, {"alpha_pattern", nlohmann::json::object()}});
        }
        for (const auto& [name, t] : m.saved_tensors(model))
            tensors.emplace_back(name.rfind("vera.", 0) == 0 ? "base_model." + name.substr(5) : "base_model.model." + name, t);
    } else {
        const auto& atts = model.attentions();
        // PEFT gives encoder-decoders two "transformer submodules": a prompt table of 2P rows, of
        // which peft 0.7.1's T5 forward reads the first P (we repeat them).
        const int submodules = model.is_encoder_decoder() ? 2 : 1;
        cfg.update({{"num_virtual_tokens", resolve_options(method, spec, out_dir)["num_virtual_tokens"]}, {"num_layers", model.num_layers()},
                    {"num_transformer_submodules", submodules}});
        if (method == "prefix") {
            if (m.can_fold()) throw Error("the prefix still has its projection MLP", out_dir, "fold() it before exporting");
            const std::int64_t token_dim = atts.front().num_heads * atts.front().head_dim;  // per key/value head
            cfg.update({{"peft_type", "PREFIX_TUNING"}, {"token_dim", token_dim}, {"num_attention_heads", atts.front().num_heads},
                        {"encoder_hidden_size", token_dim}, {"prefix_projection", false}});
            tensors.emplace_back("prompt_embeddings", params["prefix_encoder.embedding.weight"].detach());
        } else if (method == "ptuning") {
            if (m.can_fold()) throw Error("the P-tuning encoder is not folded", out_dir, "fold() it before exporting");
            const nlohmann::json o = resolve_options(method, spec, out_dir);
            cfg.update({{"peft_type", "P_TUNING"}, {"token_dim", model.hidden_size()}, {"num_attention_heads", attention_heads(model.config())},
                        {"encoder_reparameterization_type", o["encoder_reparameterization_type"]},
                        {"encoder_hidden_size", o.contains("encoder_hidden_size") ? o["encoder_hidden_size"] : nlohmann::json(model.hidden_size())},
                        {"encoder_num_layers", o["encoder_num_layers"]}, {"encoder_dropout", o["encoder_dropout"]}});
            const at::Tensor rows = params["prompt_encoder.embedding.weight"].detach();
            tensors.emplace_back("prompt_embeddings", submodules == 2 ? torch::cat({rows, rows}, 0) : rows);
        } else {
            cfg.update({{"peft_type", "PROMPT_TUNING"}, {"token_dim", model.hidden_size()},
                        {"num_attention_heads", attention_heads(model.config())}, {"prompt_tuning_init", "RANDOM"},
                        {"prompt_tuning_init_text", nullptr}, {"tokenizer_name_or_path", nullptr}, {"tokenizer_kwargs", nullptr}});
            const at::Tensor rows = params["prompt_encoder.embedding.weight"].detach();
            tensors.emplace_back("prompt_embeddings", submodules == 2 ? torch::cat({rows, rows}, 0) : rows);
        }
    }
    // A head trained in full (PEFT's modules_to_save for SEQ_CLS) is saved under its own name.
    for (const auto& p : model.named_parameters(true)) {
        const auto& k = p.key();
        if (p.value().requires_grad() && k.rfind("classifier.", 0) == 0) tensors.emplace_back(head_prefix + k, p.value().detach());
    }
    write_folder_atomic(out_dir, [&](const std::string& staging) {
        st::save(staging + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
        write_file_atomic(staging + "/adapter_config.json", cfg.dump(2) + "\n");
    });
}

}  // namespace dt
