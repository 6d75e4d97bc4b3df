// JSON helpers: strict parsing (valid UTF-8, no duplicate keys) and typed field access whose
// errors name the file and the field.
#pragma once

#include "io/limits.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <exception>
#include <string>

namespace dt::json {

// Reads a whole text file; throws dt::Error naming `path` if it is missing, unreadable or too big.
std::string read_text_file(const std::string& path, std::uint64_t max_bytes = limits::kJsonFileBytes);

// Parses `text`; `where` names the source in errors. Duplicate keys in any object are rejected.
// The text of a nlohmann exception without its "[json.exception.x.N] " prefix.
std::string exception_text(const std::exception& e);

nlohmann::json parse_strict(const std::string& text, const std::string& where);

nlohmann::json load_file(const std::string& path);

// Typed getters: `where` is the file, `field` the key. Missing or wrong-typed fields throw dt::Error.
std::int64_t get_int(const nlohmann::json& obj, const std::string& field, const std::string& where);
std::int64_t get_int_or(const nlohmann::json& obj, const std::string& field, std::int64_t fallback,
                        const std::string& where);
double get_number_or(const nlohmann::json& obj, const std::string& field, double fallback, const std::string& where);
std::string get_string(const nlohmann::json& obj, const std::string& field, const std::string& where);
std::string get_string_or(const nlohmann::json& obj, const std::string& field, const std::string& fallback,
                          const std::string& where);

}  // namespace dt::json
