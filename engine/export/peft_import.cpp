#include "export/peft_import.h"

#include "core/error.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "models/model.h"

#include <torch/torch.h>

#include <map>

#include <sys/stat.h>

namespace dt {

std::string peft_type_method(const std::string& peft_type) {
    static const std::map<std::string, std::string> types = {{"LORA", "lora"},       {"ADALORA", "adalora"}, {"LOHA", "loha"},
                                                             {"LOKR", "lokr"},       {"OFT", "oft"},         {"VERA", "vera"},
                                                             {"IA3", "ia3"},         {"PREFIX_TUNING", "prefix"},
                                                             {"PROMPT_TUNING", "prompt"}, {"P_TUNING", "ptuning"}};
    auto it = types.find(peft_type);
    return it == types.end() ? std::string() : it->second;
}

std::string method_peft_type(const std::string& method) {
    for (const char* t : {"LORA", "ADALORA", "LOHA", "LOKR", "OFT", "VERA", "IA3", "PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING"})
        if (peft_type_method(t) == method) return t;
    return {};
}

bool is_peft_folder(const std::string& dir) {
    struct stat st {};
    return ::stat((dir + "/adapter_config.json").c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

DeltaSpec spec_from_peft_config(const std::string& path) {
    const nlohmann::json c = json::load_file(path);
    const std::string type = json::get_string(c, "peft_type", path);
    nlohmann::json m;
    auto copy = [&](const char* from, const char* to) {
        if (c.contains(from) && !c[from].is_null()) m[to] = c[from];
    };
    if (type == "LORA") {
        // fan_in_fan_out (GPT-2's Conv1D layers) changes only how PEFT merges: lora_A is (r, in) and
        // lora_B (out, r) either way, and the engine keeps those layers as (out, in) Linears.
        m["method"] = "lora";
        copy("r", "r");
        copy("lora_alpha", "lora_alpha");
        copy("lora_dropout", "lora_dropout");
        copy("use_rslora", "use_rslora");
        copy("use_dora", "use_dora");
        copy("target_modules", "target_modules");
        copy("layers_to_transform", "layers_to_transform");
        copy("layers_pattern", "layers_pattern");
        if (c.contains("rank_pattern") && c["rank_pattern"].is_object() && !c["rank_pattern"].empty()) m["rank_pattern"] = c["rank_pattern"];
        if (c.contains("alpha_pattern") && c["alpha_pattern"].is_object() && !c["alpha_pattern"].empty()) m["alpha_pattern"] = c["alpha_pattern"];
        const std::string bias = c.value("bias", std::string("none"));
        if (bias != "none") m["bias"] = bias;
    } else if (type == "IA3") {
        m["method"] = "ia3";
        copy("target_modules", "target_modules");
        copy("feedforward_modules", "feedforward_modules");
    } else if (type == "PREFIX_TUNING") {
        m["method"] = "prefix";  // PEFT saves the prefixes after its projection MLP, so they load as plain tables
        copy("num_virtual_tokens", "num_virtual_tokens");
    } else if (type == "PROMPT_TUNING") {
        m["method"] = "prompt";
        copy("num_virtual_tokens", "num_virtual_tokens");
    } else if (const std::string method = peft_type_method(type); !method.empty()) {
        // Every option the method declares with a PEFT name is read from that field.
        m["method"] = method;
        for (const auto& o : find_method(method, path).options) {
            if (o.peft.empty() || !c.contains(o.peft) || c[o.peft].is_null()) continue;
            if (c[o.peft].is_object() && c[o.peft].empty()) continue;  // {} rank/alpha patterns
            m[o.name] = c[o.peft];
        }
        if (method == "ptuning") m["folded"] = true;  // PEFT saves the encoder's output, not the encoder
    } else {
        throw Error("PEFT type '" + type + "' is not supported", path + ": peft_type",
                    "LORA, ADALORA, LOHA, LOKR, OFT, VERA, IA3, PREFIX_TUNING, PROMPT_TUNING and P_TUNING are");
    }
    nlohmann::json spec = {{"methods", {m}}};
    if (c.contains("modules_to_save") && c["modules_to_save"].is_array() && !c["modules_to_save"].empty())
        spec["modules_to_save"] = c["modules_to_save"];
    return DeltaSpec::from_json(spec, path);
}

DeltaSet import_peft(TransformerModel& model, const std::string& dir) {
    const std::string cfg_path = dir + "/adapter_config.json", file = dir + "/adapter_model.safetensors";
    DeltaSpec spec = spec_from_peft_config(cfg_path);
    auto f = st::File::open(file);
    const nlohmann::json cfg = json::load_file(cfg_path);
    const std::string type = cfg.value("peft_type", std::string());
    // SEQ_CLS: peft trains and saves the classification head; train/load it as modules_to_save.
    bool head = false;
    for (const auto& t : f->tensors())
        if (t.name.find("classifier") != std::string::npos || t.name.find(".score.") != std::string::npos) head = true;
    if (head && spec.modules_to_save.empty()) {
        for (const auto& p : model.output_head_paths())
            if (p.rfind("classifier", 0) == 0) spec.modules_to_save.push_back("classifier");
        if (spec.modules_to_save.empty()) spec.modules_to_save.push_back("classifier");
        spec.modules_to_save.resize(1);
    }
    DeltaSet set = DeltaSet::apply(model, spec);
    try {
        auto params = model.named_parameters(true);
        std::vector<std::pair<at::Tensor, std::string>> plan;  // destination, source name
        // Encoder-decoders (num_transformer_submodules 2) save 2P prompt rows; peft 0.7.1 reads P.
        const bool two_tables = (type == "PROMPT_TUNING" || type == "P_TUNING") && cfg.value("num_transformer_submodules", 1) == 2;
        for (const auto& t : f->tensors()) {
            std::string name = t.name;
            for (const char* prefix : {"base_model.model.", "base_model."})
                if (name.rfind(prefix, 0) == 0) {
                    name = name.substr(std::string(prefix).size());
                    break;
                }
            for (const char* shared : {"vera_A", "vera_B"})  // VeRA's projections, saved once for the model
                if (name == shared || name == std::string(shared) + ".default") name = std::string("vera.") + shared;
            if (name == "prompt_embeddings")
                name = type == "PREFIX_TUNING" ? "prefix_encoder.embedding.weight" : "prompt_encoder.embedding.weight";
            // Biases trained with bias="all" are saved under the wrapped layer's name.
            for (const std::string wrapped : {".base_layer.bias", ".base_layer.weight"}) {
                const auto p = name.find(wrapped);
                if (p != std::string::npos) name = name.substr(0, p) + wrapped.substr(std::string(".base_layer").size());
            }
            auto* dst = params.find(name);
            if (!dst)
                throw Error("tensor '" + t.name + "' has no place in " + model.name() + " with this adapter", file,
                            "maybe the adapter was trained on another base model?");
            const bool first_half = two_tables && name == "prompt_encoder.embedding.weight" && t.shape.size() == 2 &&
                                    t.shape[0] == 2 * dst->size(0) && t.shape[1] == dst->size(1);
            if (!first_half && c10::IntArrayRef(t.shape) != dst->sizes())
                throw Error("tensor '" + t.name + "' has shape " + c10::str(c10::IntArrayRef(t.shape)) + " but the model expects " +
                                c10::str(dst->sizes()),
                            file, "maybe the adapter was trained on another base model?");
            plan.emplace_back(*dst, t.name);
        }
        for (const auto& m : set.methods())
            for (const auto& added : m->added()) {
                bool found = false;
                for (const auto& [dst, src] : plan) found = found || dst.is_same(params[added]);
                if (!found) throw Error("the adapter has no tensor for '" + added + "'", file, "the file and adapter_config.json disagree");
            }
        torch::NoGradGuard ng;
        for (auto& [dst, src] : plan) {
            const at::Tensor t = f->tensor(src);
            // NaN or infinity in a trained tensor would poison every output (and make OFT's Cayley
            // inverse fail in the first forward): refused here, naming the tensor.
            if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
                throw Error("tensor '" + src + "' holds NaN or infinite values", file, "the adapter is corrupt; export it again");
            dst.copy_(t.dim() == 0 || t.size(0) == dst.size(0) ? t : t.narrow(0, 0, dst.size(0)));
        }
    } catch (...) {
        set.remove(model);
        throw;
    }
    return set;
}

}  // namespace dt
