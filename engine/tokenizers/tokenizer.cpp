// The Tokenizer: one sequence at a time through added-token splitting, normalizers, pre-tokenizers and
// the model; then truncation, the post-processing template and offset trimming; and decode().
// Reading tokenizer.json is in tokenizer_json.cpp, each stage in its own file.
#include "tokenizers/tokenizer.h"

#include "tokenizers/pipeline.h"
#include "tokenizers/unicode.h"

#include <algorithm>

namespace dt::tok {


Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

const detail::Vocab& Tokenizer::Impl::vocab() const {
    static const detail::Vocab empty;
    return model ? model->vocab() : empty;
}

namespace {

struct AddedHit {
    const detail::AddedToken* token;
    std::size_t start, end;  // the match, widened by the token's lstrip / rstrip
};

// The added tokens of one kind (matched in the normalized text, or in the raw text) in a sequence of
// n code points, at(k) the k-th: the longest match at each position (the first listed among equals),
// lstrip taking whitespace back to the previous hit at most, rstrip taking it forward.
template <class At>
std::vector<AddedHit> find_added(const std::vector<detail::AddedToken>& added, bool normalized, std::size_t n, At at) {
    std::vector<AddedHit> hits;
    if (std::none_of(added.begin(), added.end(), [&](const detail::AddedToken& t) { return t.normalized == normalized; })) return hits;
    std::size_t i = 0, seg = 0;
    while (i < n) {
        const detail::AddedToken* hit = nullptr;
        for (const auto& t : added) {
            if (t.normalized != normalized || t.content.empty() || t.content.size() > n - i || (hit && t.content.size() <= hit->content.size())) continue;
            std::size_t k = 0;
            while (k < t.content.size() && at(i + k) == t.content[k]) ++k;
            if (k == t.content.size()) hit = &t;
        }
        if (!hit) {
            ++i;
            continue;
        }
        std::size_t start = i, end = i + hit->content.size();
        if (hit->lstrip)
            while (start > seg && is_whitespace(at(start - 1))) --start;
        if (hit->rstrip)
            while (end < n && is_whitespace(at(end))) ++end;
        hits.push_back({hit, start, end});
        seg = i = end;
    }
    return hits;
}

}  // namespace

// text[a, b), which holds no added token matched in the raw text: normalized, then the added tokens
// matched in the normalized text split out, the stretches between them pre-tokenized and modelled.
void Tokenizer::Impl::run_segment(const std::u32string& text, std::size_t a, std::size_t b, std::vector<detail::Piece>& out) const {
    if (a >= b) return;
    detail::NString ns;
    for (std::size_t k = a; k < b; ++k) ns.push_back({text[k], static_cast<std::int32_t>(k), static_cast<std::int32_t>(k + 1)});
    for (const auto& op : norms) ns = detail::normalize(op, ns);
    std::size_t seg = 0;
    for (const auto& h : find_added(added, true, ns.size(), [&](std::size_t k) { return ns[k].c; })) {
        model_words(detail::NString(ns.begin() + static_cast<std::ptrdiff_t>(seg), ns.begin() + static_cast<std::ptrdiff_t>(h.start)), out);
        std::u32string matched;
        for (std::size_t k = h.start; k < h.end; ++k) matched.push_back(ns[k].c);
        out.push_back({h.token->id, u32_to_utf8(matched), ns[h.start].orig, ns[h.end - 1].stop()});
        seg = h.end;
    }
    model_words(seg == 0 ? std::move(ns) : detail::NString(ns.begin() + static_cast<std::ptrdiff_t>(seg), ns.end()), out);
}

// A normalized stretch without added tokens: pre-tokenized into words, each through the model.
void Tokenizer::Impl::model_words(detail::NString ns, std::vector<detail::Piece>& out) const {
    if (ns.empty()) return;
    std::vector<detail::NString> words{std::move(ns)};
    for (const auto& op : pretoks) {
        std::vector<detail::NString> next;
        for (const auto& w : words)
            for (auto& x : detail::pre_tokenize(op, w)) next.push_back(std::move(x));
        words.swap(next);
    }
    for (auto& w : words) {
        if (w.empty() || !model) continue;
        if (byte_level) w = detail::to_byte_chars(w);
        model->tokenize(w, out);
    }
}

std::vector<detail::Piece> Tokenizer::Impl::run(const std::u32string& text) const {
    std::vector<detail::Piece> out;
    std::size_t seg = 0;
    for (const auto& h : find_added(added, false, text.size(), [&](std::size_t k) { return text[k]; })) {
        run_segment(text, seg, h.start, out);
        // The token's text is what was matched, stripped whitespace included (as the reference reports it).
        out.push_back({h.token->id, u32_to_utf8(text.substr(h.start, h.end - h.start)), static_cast<std::int64_t>(h.start),
                       static_cast<std::int64_t>(h.end)});
        seg = h.end;
    }
    run_segment(text, seg, text.size(), out);
    return out;
}

// Offsets exclude leading and trailing spaces (RoBERTa / ByteLevel trim_offsets), except the one
// space add_prefix_space put before the first word.
void Tokenizer::Impl::trim(std::vector<detail::Piece>& ps) const {
    const char32_t space = detail::bytes_to_chars()[' '];
    auto blank = [&](char32_t c) { return c == space || is_whitespace(c); };
    for (std::size_t i = 0; i < ps.size(); ++i) {
        auto& p = ps[i];
        const std::u32string t = utf8_to_u32(p.token);
        std::int64_t lead = 0, trail = 0;
        while (lead < static_cast<std::int64_t>(t.size()) && blank(t[static_cast<std::size_t>(lead)])) ++lead;
        while (trail < static_cast<std::int64_t>(t.size()) && blank(t[t.size() - 1 - static_cast<std::size_t>(trail)])) ++trail;
        if (lead > 0) {
            const bool first = i == 0 || p.start == 0;
            if (first && post.add_prefix_space && lead == 1) lead = 0;
            p.start = std::min(p.start + lead, p.end);
        }
        if (trail > 0 && p.end >= trail) p.end = std::max(p.end - trail, p.start);
    }
}

Encoding Tokenizer::encode(const std::string& text, const std::string* pair, bool add_special, std::size_t max_length) const {
    const Impl& I = *impl_;
    std::vector<detail::Piece> a = I.run(utf8_to_u32(text)), b;
    if (pair) b = I.run(utf8_to_u32(*pair));
    const auto& tmpl = pair ? I.post.pair : I.post.single;
    if (max_length > 0) {
        std::size_t specials = 0;
        for (const auto& it : tmpl)
            if (it.special && add_special) specials += it.ids.size();
        const std::size_t budget = max_length > specials ? max_length - specials : 0;
        while (a.size() + b.size() > budget) (b.size() > a.size() ? b : a).pop_back();
    }
    if (I.post.trim_offsets) {
        I.trim(a);
        I.trim(b);
    }
    Encoding e;
    auto push = [&](std::int64_t id, const std::string& tok, std::int64_t s, std::int64_t en, std::int64_t type, bool sp) {
        e.ids.push_back(id);
        e.tokens.push_back(tok);
        e.type_ids.push_back(type);
        e.offsets.emplace_back(s, en);
        e.special.push_back(sp);
    };
    for (const auto& it : tmpl) {
        if (it.special) {
            if (!add_special) continue;
            for (std::size_t k = 0; k < it.ids.size(); ++k) push(it.ids[k], k < it.toks.size() ? it.toks[k] : "", 0, 0, it.type, true);
        } else {
            for (const auto& p : (it.seq == 0 ? a : b)) push(p.id, p.token, p.start, p.end, it.type, false);
        }
    }
    return e;
}

std::string Tokenizer::decode(const std::vector<std::int64_t>& ids, bool skip_special) const {
    const Impl& I = *impl_;
    const auto& tokens = I.vocab().tokens;
    std::vector<std::string> toks;
    for (auto id : ids) {
        bool special = false;
        for (const auto& a : I.added)
            if (a.id == id && a.special) special = true;
        if (skip_special && special) continue;
        auto it = tokens.find(id);
        if (it != tokens.end()) toks.push_back(it->second);
    }
    return detail::decode_tokens(I.decoders, std::move(toks));
}

std::int64_t Tokenizer::token_to_id(const std::string& token) const {
    const auto& ids = impl_->vocab().ids;
    auto it = ids.find(token);
    return it == ids.end() ? -1 : it->second;
}

std::string Tokenizer::id_to_token(std::int64_t id) const {
    const auto& tokens = impl_->vocab().tokens;
    auto it = tokens.find(id);
    return it == tokens.end() ? std::string() : it->second;
}

std::size_t Tokenizer::vocab_size() const { return impl_->vocab().tokens.size(); }

}  // namespace dt::tok
