// The Unigram model (T5, SentencePiece unigram): Viterbi over the scored pieces; an unknown
// character scores the lowest piece score minus 10, and consecutive unknown spans are fused into one
// unk piece, as the reference does.
#include "tokenizers/models.h"

#include "core/error.h"
#include "io/limits.h"
#include "tokenizers/tokenizer_json.h"
#include "tokenizers/unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>

namespace dt::tok::detail {

std::unique_ptr<Model> Unigram::from_json(const nlohmann::json& m, const std::string& where) {
    auto u = std::make_unique<Unigram>();
    if (!m.contains("vocab") || !m["vocab"].is_array()) throw Error("model.vocab must be a list of [piece, score]", where);
    if (m["vocab"].size() > limits::kVocabEntries)
        throw Error("model.vocab has " + std::to_string(m["vocab"].size()) + " entries", where, limits::describe("vocab_entries", limits::kVocabEntries));
    double min_score = 0;
    std::int64_t id = 0;
    for (const auto& e : m["vocab"]) {
        if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
            throw Error("model.vocab[" + std::to_string(id) + "] must be [piece, score]", where);
        const auto piece = e[0].get<std::string>();
        const double score = e[1].get<double>();
        std::uint32_t node = 0;
        for (const char32_t c : utf8_to_u32(piece)) {
            const auto it = u->trie_[node].next.find(c);
            if (it != u->trie_[node].next.end()) {
                node = it->second;
            } else {
                const auto child = static_cast<std::uint32_t>(u->trie_.size());
                u->trie_[node].next.emplace(c, child);
                u->trie_.emplace_back();
                node = child;
            }
        }
        if (node != 0) u->trie_[node].id = id, u->trie_[node].score = score;  // a duplicate piece: the last one, as before
        u->vocab_.ids[piece] = id;
        u->vocab_.tokens[id] = piece;
        min_score = std::min(min_score, score);
        ++id;
    }
    u->unk_id_ = m.value("unk_id", static_cast<std::int64_t>(-1));
    if (u->unk_id_ < 0 || u->unk_id_ >= id) throw Error("model.unk_id must index the vocabulary", where);
    u->unk_score_ = min_score - 10.0;
    if (m.value("byte_fallback", false)) unsupported("model option", "byte_fallback (Unigram)", where);
    return u;
}

void Unigram::tokenize(const NString& w, std::vector<Piece>& out) const {
    // Lattice: best[e] is the best score of w[0, e), reached by a piece w[from[e], e) with id ids[e].
    const std::size_t n = w.size();
    std::vector<double> best(n + 1, 0.0);
    std::vector<std::size_t> from(n + 1, SIZE_MAX);
    std::vector<std::int64_t> ids(n + 1, -1);
    auto offer = [&](std::size_t start, std::size_t end, double score, std::int64_t id) {
        const double cand = best[start] + score;
        if (from[end] == SIZE_MAX || cand > best[end]) best[end] = cand, from[end] = start, ids[end] = id;
    };
    from[0] = 0;
    for (std::size_t start = 0; start < n; ++start) {
        if (from[start] == SIZE_MAX) continue;
        bool single = false;
        std::uint32_t node = 0;
        for (std::size_t len = 1; start + len <= n; ++len) {
            const auto it = trie_[node].next.find(w[start + len - 1].c);
            if (it == trie_[node].next.end()) break;
            node = it->second;
            if (trie_[node].id < 0) continue;
            offer(start, start + len, trie_[node].score, trie_[node].id);
            if (len == 1) single = true;
        }
        if (!single) offer(start, start + 1, unk_score_, unk_id_);
    }
    std::vector<std::pair<std::size_t, std::size_t>> spans;  // [start, end)
    std::vector<std::int64_t> span_ids;
    for (std::size_t e = n; e > 0; e = from[e]) spans.emplace_back(from[e], e), span_ids.push_back(ids[e]);
    std::reverse(spans.begin(), spans.end());
    std::reverse(span_ids.begin(), span_ids.end());
    for (std::size_t k = 0; k < spans.size(); ++k) {
        auto [a, b] = spans[k];
        const auto id = span_ids[k];
        while (id == unk_id_ && k + 1 < spans.size() && span_ids[k + 1] == unk_id_) b = spans[++k].second;
        std::string text;
        for (std::size_t q = a; q < b; ++q) append_utf8(w[q].c, text);
        out.push_back({id, text, w[a].orig, w[b - 1].stop()});
    }
}

}  // namespace dt::tok::detail
