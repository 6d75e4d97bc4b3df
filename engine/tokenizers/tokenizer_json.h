// Helpers for reading tokenizer.json, shared by the files that each read one of its sections.
// Internal to engine/tokenizers.
#pragma once

#include "tokenizers/models.h"

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace dt::tok::detail {

// The component's "type" ("" for null); throws if it has none.
std::string type_of(const nlohmann::json& v, const std::string& field, const std::string& where);
[[noreturn]] void unsupported(const std::string& field, const std::string& type, const std::string& where);
// Flattens {"type": "Sequence", "<key>": [...]} into its members.
std::vector<nlohmann::json> members(const nlohmann::json& v, const char* key);
// model.vocab as an object of token -> id, and model.unk_token (WordPiece and BPE).
void read_token_ids(const nlohmann::json& m, const std::string& where, Vocab& vocab, std::string& unk_token);

}  // namespace dt::tok::detail
