// The BPE model (GPT-2, RoBERTa, Llama): merges over vocabulary ids with a heap, a per-word cache,
// and for characters outside the vocabulary byte fallback (<0xNN> tokens) or unk_token (optionally fused).
#include "tokenizers/models.h"

#include "core/error.h"
#include "io/limits.h"
#include "tokenizers/tokenizer_json.h"
#include "tokenizers/unicode.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <functional>
#include <queue>

namespace dt::tok::detail {
namespace {

// Both merge formats: "a b" strings and [a, b] pairs; the first occurrence of a pair keeps its rank.
std::map<std::pair<std::string, std::string>, int> read_bpe_merges(const nlohmann::json& m, const std::string& where) {
    if (!m.contains("merges") || !m["merges"].is_array()) throw Error("model.merges must be a list", where);
    if (m["merges"].size() > limits::kMerges)
        throw Error("model.merges has " + std::to_string(m["merges"].size()) + " entries", where, limits::describe("merges", limits::kMerges));
    std::map<std::pair<std::string, std::string>, int> ranks;
    int rank = 0;
    for (const auto& mg : m["merges"]) {
        std::string a, b;
        if (mg.is_string()) {
            const auto s = mg.get<std::string>();
            const auto sp = s.find(' ');
            if (sp == std::string::npos) throw Error("merge '" + s + "' has no space", where);
            a = s.substr(0, sp), b = s.substr(sp + 1);
        } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
            a = mg[0].get<std::string>(), b = mg[1].get<std::string>();
        } else {
            throw Error("merges entries must be \"a b\" strings or [a, b] pairs", where);
        }
        ranks.emplace(std::make_pair(a, b), rank++);
    }
    return ranks;
}

std::uint64_t bpe_pair_key(std::int64_t left, std::int64_t right) {
    return (static_cast<std::uint64_t>(left) << 32) | static_cast<std::uint32_t>(right);
}

bool set_in(const nlohmann::json& m, const char* field) { return m.contains(field) && !m[field].is_null(); }

}  // namespace

std::unique_ptr<Model> Bpe::from_json(const nlohmann::json& m, const std::string& where) {
    auto bpe = std::make_unique<Bpe>();
    read_token_ids(m, where, bpe->vocab_, bpe->unk_token_);
    bpe->byte_fallback_ = m.value("byte_fallback", false);
    bpe->fuse_unk_ = m.value("fuse_unk", false);
    bpe->ignore_merges_ = m.value("ignore_merges", false);
    if (!bpe->unk_token_.empty() && !bpe->vocab_.ids.count(bpe->unk_token_))
        throw Error("unk_token '" + bpe->unk_token_ + "' is not in the vocabulary", where);
    if (set_in(m, "continuing_subword_prefix")) unsupported("model option", "continuing_subword_prefix (BPE)", where);
    if (set_in(m, "end_of_word_suffix")) unsupported("model option", "end_of_word_suffix", where);
    if (set_in(m, "dropout")) unsupported("model option", "dropout", where);
    bpe->build_merge_ids(read_bpe_merges(m, where));
    return bpe;
}

// Merges whose parts or result are not in the vocabulary can never apply and are dropped.
void Bpe::build_merge_ids(const std::map<std::pair<std::string, std::string>, int>& ranks) {
    const auto& v = vocab_.ids;
    for (const auto& [pr, rank] : ranks) {
        auto a = v.find(pr.first), b = v.find(pr.second), m = v.find(pr.first + pr.second);
        if (a == v.end() || b == v.end() || m == v.end()) continue;
        merge_ids_[bpe_pair_key(a->second, b->second)] = {rank, m->second};
    }
}

// Lowest rank first, leftmost among equals (a heap over adjacent pairs, O(n log n) per word); symbols
// form a linked list so merging is O(1). A character outside the vocabulary is id -1 and never merges.
void Bpe::merge(const NString& w, Parts& result) const {
    std::vector<std::int64_t> ids;
    std::vector<std::uint32_t> lens;
    std::string ch;
    for (const auto& nc : w) {
        ch.clear();
        append_utf8(nc.c, ch);
        auto it = vocab_.ids.find(ch);
        ids.push_back(it == vocab_.ids.end() ? -1 : it->second);
        lens.push_back(1);
    }
    const std::size_t n = ids.size();
    std::vector<std::ptrdiff_t> prev(n), next(n);
    for (std::size_t i = 0; i < n; ++i) prev[i] = static_cast<std::ptrdiff_t>(i) - 1, next[i] = i + 1 < n ? static_cast<std::ptrdiff_t>(i + 1) : -1;
    struct Cand {
        int rank;
        std::size_t pos;
        std::int64_t left, right, merged;
        bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto consider = [&](std::ptrdiff_t i) {
        if (i < 0 || next[static_cast<std::size_t>(i)] < 0) return;
        const auto l = ids[static_cast<std::size_t>(i)], r = ids[static_cast<std::size_t>(next[static_cast<std::size_t>(i)])];
        if (l < 0 || r < 0) return;
        auto it = merge_ids_.find(bpe_pair_key(l, r));
        if (it != merge_ids_.end()) heap.push({it->second.first, static_cast<std::size_t>(i), l, r, it->second.second});
    };
    for (std::size_t i = 0; i + 1 < n; ++i) consider(static_cast<std::ptrdiff_t>(i));
    std::vector<char> alive(n, 1);
    while (!heap.empty()) {
        const Cand c = heap.top();
        heap.pop();
        const std::size_t i = c.pos;
        const std::ptrdiff_t j = next[i];
        if (!alive[i] || j < 0 || ids[i] != c.left || ids[static_cast<std::size_t>(j)] != c.right) continue;  // stale
        const std::size_t jj = static_cast<std::size_t>(j);
        ids[i] = c.merged;
        lens[i] += lens[jj];
        alive[jj] = 0;
        next[i] = next[jj];
        if (next[jj] >= 0) prev[static_cast<std::size_t>(next[jj])] = static_cast<std::ptrdiff_t>(i);
        consider(prev[i]);
        consider(static_cast<std::ptrdiff_t>(i));
    }
    result.clear();
    for (std::ptrdiff_t i = n ? 0 : -1; i >= 0; i = next[static_cast<std::size_t>(i)])
        result.emplace_back(ids[static_cast<std::size_t>(i)], lens[static_cast<std::size_t>(i)]);
}

Bpe::Parts Bpe::cached_merge(const NString& w, const std::string& key) const {
    Parts parts;
    {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        auto it = cache_.find(key);
        if (it != cache_.end()) return it->second;
    }
    merge(w, parts);
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() > 100000) cache_.clear();
    cache_.emplace(key, parts);
    return parts;
}

// Byte fallback: the character's UTF-8 bytes as <0xNN> tokens, all of them or none.
bool Bpe::push_bytes(const std::string& text, std::int64_t start, std::int64_t end, std::vector<Piece>& out) const {
    std::vector<Piece> bytes;
    for (unsigned char b : text) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        auto bt = vocab_.ids.find(name);
        if (bt == vocab_.ids.end()) break;
        bytes.push_back({bt->second, name, start, end});
    }
    if (bytes.size() != text.size()) return false;
    out.insert(out.end(), bytes.begin(), bytes.end());
    return true;
}

void Bpe::tokenize(const NString& w, std::vector<Piece>& out) const {
    std::string key;
    for (const auto& nc : w) append_utf8(nc.c, key);
    if (ignore_merges_) {
        auto it = vocab_.ids.find(key);
        if (it != vocab_.ids.end()) {
            out.push_back({it->second, key, w.front().orig, w.back().stop()});
            return;
        }
    }
    std::size_t pos = 0;
    bool last_unk = false;
    for (const auto& [id, len] : cached_merge(w, key)) {
        const NChar& a = w[pos];
        const NChar& z = w[pos + len - 1];
        pos += len;
        if (id >= 0) {
            out.push_back({id, vocab_.tokens.at(id), a.orig, z.stop()});
            last_unk = false;
            continue;
        }
        std::string text;  // a character outside the vocabulary (len is 1)
        append_utf8(a.c, text);
        if (byte_fallback_ && push_bytes(text, a.orig, z.stop(), out)) {
            last_unk = false;
            continue;
        }
        if (unk_token_.empty()) continue;
        if (fuse_unk_ && last_unk) {
            out.back().end = z.stop();
            continue;
        }
        out.push_back({vocab_.ids.at(unk_token_), unk_token_, a.orig, z.stop()});
        last_unk = true;
    }
}

}  // namespace dt::tok::detail
