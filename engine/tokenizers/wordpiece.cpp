// The WordPiece model (BERT): greedy longest-match-first pieces, continuation pieces prefixed
// ("##"), and the whole word as unk_token when any part of it cannot be matched. And WordLevel: the
// whole word or unk_token.
#include "tokenizers/models.h"

#include "core/error.h"
#include "tokenizers/tokenizer_json.h"
#include "tokenizers/unicode.h"

#include <nlohmann/json.hpp>

namespace dt::tok::detail {

std::unique_ptr<Model> WordPiece::from_json(const nlohmann::json& m, const std::string& where) {
    auto wp = std::make_unique<WordPiece>();
    read_token_ids(m, where, wp->vocab_, wp->unk_token_);
    wp->prefix_ = m.value("continuing_subword_prefix", std::string("##"));
    wp->max_chars_ = m.value("max_input_chars_per_word", 100);
    if (!wp->vocab_.ids.count(wp->unk_token_)) throw Error("unk_token '" + wp->unk_token_ + "' is not in the vocabulary", where);
    return wp;
}

void WordPiece::tokenize(const NString& w, std::vector<Piece>& out) const {
    auto orig_range = [&](std::size_t a, std::size_t b) {
        return std::make_pair(static_cast<std::int64_t>(w[a].orig), static_cast<std::int64_t>(w[b - 1].stop()));
    };
    auto push_unknown = [&] {
        auto r = orig_range(0, w.size());
        out.push_back({vocab_.ids.at(unk_token_), unk_token_, r.first, r.second});
    };
    if (w.size() > max_chars_) return push_unknown();
    std::vector<Piece> pieces;
    std::size_t start = 0;
    while (start < w.size()) {
        std::size_t end = w.size();
        bool found = false;
        while (start < end) {
            std::string sub = start > 0 ? prefix_ : std::string();
            for (std::size_t k = start; k < end; ++k) append_utf8(w[k].c, sub);
            auto it = vocab_.ids.find(sub);
            if (it != vocab_.ids.end()) {
                auto r = orig_range(start, end);
                pieces.push_back({it->second, sub, r.first, r.second});
                found = true;
                break;
            }
            --end;
        }
        if (!found) return push_unknown();
        start = end;
    }
    out.insert(out.end(), pieces.begin(), pieces.end());
}

std::unique_ptr<Model> WordLevel::from_json(const nlohmann::json& m, const std::string& where) {
    auto wl = std::make_unique<WordLevel>();
    read_token_ids(m, where, wl->vocab_, wl->unk_token_);
    wl->where_ = where;
    return wl;
}

void WordLevel::tokenize(const NString& w, std::vector<Piece>& out) const {
    if (w.empty()) return;
    std::string word;
    for (const auto& c : w) append_utf8(c.c, word);
    const auto start = static_cast<std::int64_t>(w.front().orig), end = static_cast<std::int64_t>(w.back().stop());
    if (auto it = vocab_.ids.find(word); it != vocab_.ids.end()) {
        out.push_back({it->second, word, start, end});
        return;
    }
    const auto unk = vocab_.ids.find(unk_token_);
    if (unk == vocab_.ids.end())
        throw Error("the word '" + word + "' is not in the WordLevel vocabulary, which has no unk_token '" + unk_token_ + "'",
                    where_, "add the unk_token to model.vocab");
    out.push_back({unk->second, unk_token_, start, end});
}

}  // namespace dt::tok::detail
