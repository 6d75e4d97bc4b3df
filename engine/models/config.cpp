#include "models/config.h"

#include "core/error.h"
#include "io/json_util.h"
#include "io/limits.h"

namespace dt {

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& source) {
    if (!j.is_object()) throw Error("config must be a JSON object", source);
    ModelConfig c;
    c.raw = j;
    c.source = source;
    c.model_type = json::get_string_or(j, "model_type", "", source);
    if (j.contains("architectures") && !j["architectures"].is_null()) {
        const auto& a = j["architectures"];
        if (!a.is_array() || a.empty() || !a[0].is_string())
            throw Error("field 'architectures' must be a non-empty list of class names", source);
        c.architecture = a[0].get<std::string>();
    }
    if (c.model_type.empty() && c.architecture.empty())
        throw Error("neither 'model_type' nor 'architectures' is set", source,
                    "is this a Hugging Face config.json?");
    // Size fields: within the named limits before anything is sized from them (each family reads
    // its own names; the checkpoint check in the loader then compares the whole with the weights).
    static const char* const dims[] = {"hidden_size", "n_embd", "d_model", "dim", "intermediate_size", "n_inner", "d_ff", "hidden_dim",
                                       "vocab_size", "max_position_embeddings", "n_positions", "n_ctx", "type_vocab_size",
                                       "num_attention_heads", "n_head", "num_heads", "n_heads", "num_key_value_heads", "head_dim", "d_kv",
                                       "relative_attention_num_buckets", "relative_attention_max_distance", "num_labels"};
    static const char* const layers[] = {"num_hidden_layers", "n_layer", "num_layers", "n_layers", "num_decoder_layers"};
    const auto check = [&](const char* field, std::int64_t limit, const char* name) {
        const auto it = j.find(field);
        if (it == j.end() || !it->is_number()) return;
        const double v = it->get<double>();
        if (v > static_cast<double>(limit))
            throw Error("field '" + std::string(field) + "' is " + it->dump() + ", above " + std::to_string(limit) + " (" +
                            limits::describe(name, static_cast<std::uint64_t>(limit)) + ")",
                        source, "use the config.json saved with the weights");
    };
    for (const char* f : dims) check(f, limits::kConfigDimension, "config_dimension");
    for (const char* f : layers) check(f, limits::kConfigLayers, "config_layers");
    if (j.contains("id2label") && j["id2label"].is_object()) {
        const auto& m = j["id2label"];
        c.id2label.resize(m.size());
        for (auto it = m.begin(); it != m.end(); ++it) {
            std::size_t idx = 0;
            try {
                std::size_t pos = 0;
                idx = std::stoul(it.key(), &pos);
                if (pos != it.key().size()) throw std::invalid_argument("x");
            } catch (const std::exception&) {
                throw Error("id2label key '" + it.key() + "' is not an integer", source);
            }
            if (idx >= m.size() || !it.value().is_string())
                throw Error("id2label must map 0..n-1 to label names", source);
            c.id2label[idx] = it.value().get<std::string>();
        }
    }
    return c;
}

ModelConfig ModelConfig::load(const std::string& config_path) {
    return from_json(json::load_file(config_path), config_path);
}

std::int64_t ModelConfig::get_int(const std::string& field) const { return json::get_int(raw, field, source); }
std::int64_t ModelConfig::get_int_or(const std::string& field, std::int64_t fallback) const {
    return json::get_int_or(raw, field, fallback, source);
}
double ModelConfig::get_number_or(const std::string& field, double fallback) const {
    return json::get_number_or(raw, field, fallback, source);
}
std::string ModelConfig::get_string_or(const std::string& field, const std::string& fallback) const {
    return json::get_string_or(raw, field, fallback, source);
}
std::int64_t ModelConfig::get_positive(const std::string& field) const {
    const auto v = get_int(field);
    if (v <= 0) throw Error("field '" + field + "' must be positive, got " + std::to_string(v), source);
    return v;
}
std::int64_t ModelConfig::num_labels() const {
    if (raw.contains("num_labels") && !raw["num_labels"].is_null()) return get_positive("num_labels");
    if (!id2label.empty()) return static_cast<std::int64_t>(id2label.size());
    return 2;  // transformers' default
}

}  // namespace dt
