// The tokenizer models behind one interface: WordPiece, BPE and Unigram each turn one pre-tokenized
// word into vocabulary pieces. Internal to engine/tokenizers.
#pragma once

#include "tokenizers/text_ops.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dt::tok::detail {

struct Piece {  // a model output token before post-processing
    std::int64_t id;
    std::string token;
    std::int64_t start, end;  // original code points
};

// token -> id and id -> token. The added tokens join it after the model is read, and the models look
// them up like any other token.
struct Vocab {
    std::unordered_map<std::string, std::int64_t> ids;
    std::unordered_map<std::int64_t, std::string> tokens;
};

class Model {
public:
    virtual ~Model() = default;
    // Appends the pieces of one word (already normalized, pre-tokenized and, for ByteLevel, byte-mapped).
    virtual void tokenize(const NString& word, std::vector<Piece>& out) const = 0;
    Vocab& vocab() { return vocab_; }
    const Vocab& vocab() const { return vocab_; }

protected:
    Vocab vocab_;
};

// Greedy longest-match-first over the vocabulary; continuation pieces carry `prefix`.
class WordPiece : public Model {
public:
    static std::unique_ptr<Model> from_json(const nlohmann::json& m, const std::string& where);
    void tokenize(const NString& word, std::vector<Piece>& out) const override;

private:
    std::string unk_token_, prefix_ = "##";
    std::size_t max_chars_ = 100;
};

// Byte-pair merges over vocabulary ids, lowest rank first; finished words are cached.
class Bpe : public Model {
public:
    static std::unique_ptr<Model> from_json(const nlohmann::json& m, const std::string& where);
    void tokenize(const NString& word, std::vector<Piece>& out) const override;

private:
    using Parts = std::vector<std::pair<std::int64_t, std::uint32_t>>;  // (id or -1, length in characters)
    void build_merge_ids(const std::map<std::pair<std::string, std::string>, int>& ranks);
    void merge(const NString& w, Parts& result) const;
    Parts cached_merge(const NString& w, const std::string& key) const;
    bool push_bytes(const std::string& text, std::int64_t start, std::int64_t end, std::vector<Piece>& out) const;

    std::string unk_token_;
    bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
    // (left id, right id) -> (rank, merged id)
    std::unordered_map<std::uint64_t, std::pair<int, std::int64_t>> merge_ids_;
    mutable std::unordered_map<std::string, Parts> cache_;
    mutable std::mutex cache_mutex_;
};

// One vocabulary entry per word, or unk_token (WordLevel).
class WordLevel : public Model {
public:
    static std::unique_ptr<Model> from_json(const nlohmann::json& m, const std::string& where);
    void tokenize(const NString& word, std::vector<Piece>& out) const override;

private:
    std::string unk_token_ = "<unk>", where_;
};

// Viterbi over scored pieces (best total log-probability).
class Unigram : public Model {
public:
    static std::unique_ptr<Model> from_json(const nlohmann::json& m, const std::string& where);
    void tokenize(const NString& word, std::vector<Piece>& out) const override;

private:
    // The pieces in a trie over code points: the lattice walks it from each position and stops where
    // no piece continues, so the work is linear in the text times the longest match there, never the
    // text times the longest piece squared (a hash lookup per prefix did that).
    struct TrieNode {
        std::int64_t id = -1;  // the piece ending here, if any
        double score = 0;
        std::unordered_map<char32_t, std::uint32_t> next;
    };
    std::vector<TrieNode> trie_{1};
    double unk_score_ = 0;
    std::int64_t unk_id_ = -1;
};

}  // namespace dt::tok::detail
