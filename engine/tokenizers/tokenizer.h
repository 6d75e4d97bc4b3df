// Hugging Face tokenizer.json, read and run natively: normalizer, pre-tokenizer, model, post-processor
// and decoder, with added/special tokens and offsets in code points (as the reference bindings report).
// Supported now: BertNormalizer, BertPreTokenizer, ByteLevel (GPT-2 regex), WordPiece, BPE (both merge
// formats), BertProcessing, RobertaProcessing, ByteLevel post-processing, WordPiece and ByteLevel
// decoders. Anything else is refused with the JSON path of the unsupported component.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dt::tok {

struct Encoding {
    std::vector<std::int64_t> ids;
    std::vector<std::string> tokens;
    std::vector<std::int64_t> type_ids;
    std::vector<std::pair<std::int64_t, std::int64_t>> offsets;  // [start, end) in code points of its sequence
    std::vector<std::uint8_t> special;                           // 1 for tokens the post-processor added
};

class Tokenizer {
public:
    static Tokenizer from_file(const std::string& path);
    static Tokenizer from_json(const nlohmann::json& j, const std::string& where);
    Tokenizer();
    ~Tokenizer();
    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;

    // `text` and `pair` are UTF-8; invalid UTF-8 throws dt::Error. max_length > 0 truncates the longer
    // sequence first (the reference's longest_first) so the result, special tokens included, fits.
    Encoding encode(const std::string& text, const std::string* pair = nullptr, bool add_special_tokens = true,
                    std::size_t max_length = 0) const;
    std::string decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens = true) const;
    std::int64_t token_to_id(const std::string& token) const;  // -1 if absent
    std::string id_to_token(std::int64_t id) const;           // "" if absent
    std::size_t vocab_size() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace dt::tok
