// ModelConfig: the architecture-neutral part of a Hugging Face config.json. Each architecture parses
// its own typed view from `raw` (see bert.cpp), so new families add fields without touching this.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace dt {

struct ModelConfig {
    nlohmann::json raw;        // config.json as read
    std::string source;        // the file it came from, or "builtin:<name>"
    std::string architecture;  // architectures[0], e.g. "BertForMaskedLM"; empty if absent
    std::string model_type;    // "bert", "roberta", ...
    std::vector<std::string> id2label;

    static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
    static ModelConfig load(const std::string& config_path);

    // Typed accessors that name `source` and the field in their errors.
    std::int64_t get_int(const std::string& field) const;
    std::int64_t get_int_or(const std::string& field, std::int64_t fallback) const;
    double get_number_or(const std::string& field, double fallback) const;
    std::string get_string_or(const std::string& field, const std::string& fallback) const;
    // A positive integer field; throws naming the field otherwise.
    std::int64_t get_positive(const std::string& field) const;
    std::int64_t num_labels() const;
};

}  // namespace dt
