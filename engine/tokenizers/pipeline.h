// The stages around the model: normalizers, pre-tokenizers, the post-processing template, decoders
// and added tokens, each read from its tokenizer.json section; and Tokenizer::Impl, which holds them.
// Internal to engine/tokenizers.
#pragma once

#include "tokenizers/models.h"
#include "tokenizers/text_ops.h"
#include "tokenizers/tokenizer.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dt::tok::detail {

// normalizers.cpp
struct NormOp {
    std::string kind;  // bert | prepend | replace | runs | nfc | nfd | nfkc | nfkd | lowercase | strip | strip_accents | nmt
    BertNorm bert;
    bool strip_left = true, strip_right = true;
    std::u32string from, to;
    char32_t run_char = 0;
    std::size_t run_min = 0;
};
std::vector<NormOp> parse_normalizers(const nlohmann::json& v, const std::string& where);
NString normalize(const NormOp& op, const NString& ns);

// pre_tokenizers.cpp
struct PreOp {
    std::string kind;  // bert | gpt2 (ByteLevel) | llama3 | metaspace | whitespace_split | split
    char32_t repl = 0x2581;
    std::string scheme = "always";
    bool split = true;
    bool prefix_space = false;  // ByteLevel add_prefix_space: a space before each piece not starting with one
    bool regex = true;          // ByteLevel use_regex: GPT-2's split (false: the piece stays whole)
    // kind "split": what matches (punct | digits | literal | words | spaces), what happens to
    // the matches (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous), and whether
    // the matches and the rest trade places (invert).
    std::string match, behavior = "Isolated";
    std::u32string literal;
    bool invert = false;
};
struct PreTokenizers {
    std::vector<PreOp> ops;
    bool byte_level = false;  // words are mapped to GPT-2's byte characters before the model
};
PreTokenizers parse_pre_tokenizers(const nlohmann::json& v, const std::string& where);
std::vector<NString> pre_tokenize(const PreOp& op, const NString& w);

// Post-processing (read in tokenizer_json.cpp, applied in tokenizer.cpp): a template of sequences and
// special tokens, and the offset trimming of RoBERTa / ByteLevel processing.
struct TItem {
    bool special;
    int seq;  // 0 = A, 1 = B
    std::int64_t type;
    std::vector<std::int64_t> ids;
    std::vector<std::string> toks;
};
struct PostProcessor {
    std::vector<TItem> single, pair;
    bool trim_offsets = false, add_prefix_space = false;
};

// decoders.cpp
struct DecOp {
    std::string kind;  // wordpiece | bytelevel | replace | byte_fallback | fuse | strip | metaspace
    std::string a, b;
    int start = 0, stop = 0;
    bool cleanup = true;
};
std::vector<DecOp> parse_decoders(const nlohmann::json& v, const std::string& where);
// Runs the decoder chain over the tokens and joins the result (no decoders: joined with spaces).
std::string decode_tokens(const std::vector<DecOp>& ops, std::vector<std::string> toks);

struct AddedToken {
    std::u32string content;
    std::int64_t id;
    bool special, lstrip, rstrip;
    // Matched in the normalized text (as the reference does for "normalized": true, the default of
    // non-special added tokens), else in the raw text before normalization.
    bool normalized = false;
};

}  // namespace dt::tok::detail

namespace dt::tok {

struct Tokenizer::Impl {
    std::unique_ptr<detail::Model> model;  // null only in a default-constructed Tokenizer
    std::vector<detail::NormOp> norms;
    std::vector<detail::PreOp> pretoks;
    bool byte_level = false;
    detail::PostProcessor post;
    std::vector<detail::DecOp> decoders;
    std::vector<detail::AddedToken> added;

    const detail::Vocab& vocab() const;
    // One sequence: added tokens matched in the raw text split out first, the rest normalized, then
    // added tokens matched in the normalized text split out, the rest pre-tokenized and modelled.
    std::vector<detail::Piece> run(const std::u32string& text) const;
    void run_segment(const std::u32string& text, std::size_t a, std::size_t b, std::vector<detail::Piece>& out) const;
    void model_words(detail::NString ns, std::vector<detail::Piece>& out) const;
    void trim(std::vector<detail::Piece>& ps) const;
};

}  // namespace dt::tok
