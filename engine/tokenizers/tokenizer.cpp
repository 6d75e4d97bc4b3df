#include "tokenizers/tokenizer.h"

#include "core/error.h"
#include "io/json_util.h"
#include "tokenizers/unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <mutex>

namespace dt::tok {
namespace {

// A normalized character and the original code point it came from.
struct NChar {
    char32_t c;
    std::int32_t orig;
};
using NString = std::vector<NChar>;

struct Piece {  // a model output token before post-processing
    std::int64_t id;
    std::string token;
    std::int64_t start, end;  // original code points
};

bool is_chinese(char32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest to 256 + n.
const std::vector<char32_t>& bytes_to_chars() {
    static const std::vector<char32_t> table = [] {
        std::vector<char32_t> t(256);
        int n = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            t[static_cast<std::size_t>(b)] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
        }
        return t;
    }();
    return table;
}

const std::unordered_map<char32_t, unsigned char>& chars_to_bytes() {
    static const std::unordered_map<char32_t, unsigned char> m = [] {
        std::unordered_map<char32_t, unsigned char> r;
        const auto& t = bytes_to_chars();
        for (int b = 0; b < 256; ++b) r[t[static_cast<std::size_t>(b)]] = static_cast<unsigned char>(b);
        return r;
    }();
    return m;
}

// ---- normalizer ----

struct BertNorm {
    bool clean = true, chinese = true, strip = false, lower = true;
    NString apply(const NString& in) const {
        NString out;
        out.reserve(in.size());
        std::u32string buf;
        for (const auto& nc : in) {
            char32_t c = nc.c;
            if (clean) {
                if (c == 0 || c == 0xFFFD || (c != '\t' && c != '\n' && c != '\r' && is_other(c))) continue;
                if (c == '\t' || c == '\n' || c == '\r' || is_whitespace(c)) c = ' ';
            }
            if (chinese && is_chinese(c)) {
                out.push_back({' ', nc.orig});
                out.push_back({c, nc.orig});
                out.push_back({' ', nc.orig});
                continue;
            }
            buf.clear();
            if (strip) {
                std::u32string d;
                append_nfd(c, d);
                for (char32_t x : d)
                    if (!is_mark_nonspacing(x)) buf.push_back(x);
            } else {
                buf.push_back(c);
            }
            for (char32_t x : buf) {
                if (lower) {
                    std::u32string l;
                    append_lower(x, l);
                    for (char32_t y : l) out.push_back({y, nc.orig});
                } else {
                    out.push_back({x, nc.orig});
                }
            }
        }
        return out;
    }
};

// ---- pre-tokenizers ----

enum class PreTok { None, Bert, ByteLevel };

std::vector<NString> bert_split(const NString& s) {
    std::vector<NString> words;
    NString cur;
    auto flush = [&] {
        if (!cur.empty()) words.push_back(std::move(cur)), cur.clear();
    };
    for (const auto& nc : s) {
        if (is_whitespace(nc.c)) {
            flush();
        } else if ((nc.c < 128 && std::ispunct(static_cast<int>(nc.c))) || is_punctuation(nc.c)) {
            flush();
            words.push_back({nc});
        } else {
            cur.push_back(nc);
        }
    }
    flush();
    return words;
}

// GPT-2's pattern: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<NString> gpt2_split(const NString& s) {
    std::vector<NString> out;
    const std::size_t n = s.size();
    auto ws = [&](std::size_t i) { return i < n && is_whitespace(s[i].c); };
    auto letter = [&](std::size_t i) { return i < n && is_letter(s[i].c); };
    auto number = [&](std::size_t i) { return i < n && is_number(s[i].c); };
    auto other = [&](std::size_t i) { return i < n && !is_whitespace(s[i].c) && !is_letter(s[i].c) && !is_number(s[i].c); };
    std::size_t i = 0;
    while (i < n) {
        std::size_t j = i;
        const char32_t c = s[i].c;
        if (c == '\'' && i + 1 < n) {
            const char32_t a = s[i + 1].c, b = i + 2 < n ? s[i + 2].c : 0;
            if (a == 's' || a == 't' || a == 'm' || a == 'd') j = i + 2;
            else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) j = i + 3;
        }
        if (j == i) {
            const std::size_t k = (c == ' ') ? i + 1 : i;
            if (letter(k)) {
                j = k;
                while (letter(j)) ++j;
            } else if (number(k)) {
                j = k;
                while (number(j)) ++j;
            } else if (other(k)) {
                j = k;
                while (other(j)) ++j;
            } else if (ws(i)) {
                j = i;
                while (ws(j)) ++j;
                if (j < n && j - i > 1) --j;  // \s+(?!\S): leave the last space to the next token
            } else {
                j = i + 1;
            }
        }
        out.emplace_back(s.begin() + static_cast<std::ptrdiff_t>(i), s.begin() + static_cast<std::ptrdiff_t>(j));
        i = j;
    }
    return out;
}

// Bytes of a word as byte-level characters, each tied to the original code point it encodes.
NString to_byte_chars(const NString& w) {
    NString out;
    const auto& table = bytes_to_chars();
    std::string tmp;
    for (const auto& nc : w) {
        tmp.clear();
        append_utf8(nc.c, tmp);
        for (unsigned char b : tmp) out.push_back({table[b], nc.orig});
    }
    return out;
}

}  // namespace

// ---- models ----

struct Tokenizer::Impl {
    std::string where;
    std::string model_type;  // WordPiece | BPE
    std::unordered_map<std::string, std::int64_t> vocab;
    std::unordered_map<std::int64_t, std::string> inverse;
    // WordPiece
    std::string unk_token, prefix = "##";
    std::size_t max_chars = 100;
    // BPE
    std::map<std::pair<std::string, std::string>, int> ranks;
    // pipeline
    bool has_norm = false;
    BertNorm norm;
    PreTok pretok = PreTok::None;
    bool byte_level = false;
    std::string post = "none";  // none | bert | roberta | bytelevel
    std::pair<std::string, std::int64_t> cls, sep;
    bool trim_offsets = false, add_prefix_space = false;
    std::string decoder = "none";  // none | wordpiece | bytelevel
    bool cleanup = true;
    struct Added {
        std::u32string content;
        std::int64_t id;
        bool special, lstrip, rstrip;
    };
    std::vector<Added> added;

    void wordpiece(const NString& w, std::vector<Piece>& out) const {
        auto orig_range = [&](std::size_t a, std::size_t b) {
            return std::make_pair(static_cast<std::int64_t>(w[a].orig), static_cast<std::int64_t>(w[b - 1].orig) + 1);
        };
        if (w.size() > max_chars) {
            auto r = orig_range(0, w.size());
            out.push_back({vocab.at(unk_token), unk_token, r.first, r.second});
            return;
        }
        std::vector<Piece> pieces;
        std::size_t start = 0;
        while (start < w.size()) {
            std::size_t end = w.size();
            bool found = false;
            while (start < end) {
                std::string sub = start > 0 ? prefix : std::string();
                for (std::size_t k = start; k < end; ++k) append_utf8(w[k].c, sub);
                auto it = vocab.find(sub);
                if (it != vocab.end()) {
                    auto r = orig_range(start, end);
                    pieces.push_back({it->second, sub, r.first, r.second});
                    found = true;
                    break;
                }
                --end;
            }
            if (!found) {
                auto r = orig_range(0, w.size());
                out.push_back({vocab.at(unk_token), unk_token, r.first, r.second});
                return;
            }
            start = end;
        }
        out.insert(out.end(), pieces.begin(), pieces.end());
    }

    // BPE over vocabulary ids: merges are keyed by (left id, right id) -> (rank, merged id), and
    // finished words are cached, as the reference implementation does.
    std::unordered_map<std::uint64_t, std::pair<int, std::int64_t>> merge_ids;
    mutable std::unordered_map<std::string, std::vector<std::pair<std::int64_t, std::uint32_t>>> cache;
    mutable std::mutex cache_mutex;

    void build_merge_ids() {
        for (const auto& [pr, rank] : ranks) {
            auto a = vocab.find(pr.first), b = vocab.find(pr.second), m = vocab.find(pr.first + pr.second);
            if (a == vocab.end() || b == vocab.end() || m == vocab.end()) continue;
            merge_ids[(static_cast<std::uint64_t>(a->second) << 32) | static_cast<std::uint32_t>(b->second)] = {rank, m->second};
        }
    }

    bool bpe_ids(const NString& w, std::vector<std::pair<std::int64_t, std::uint32_t>>& result) const {
        std::vector<std::int64_t> ids;
        std::vector<std::uint32_t> lens;
        std::string ch;
        for (const auto& nc : w) {
            ch.clear();
            append_utf8(nc.c, ch);
            auto it = vocab.find(ch);
            if (it == vocab.end()) return false;  // needs the unknown-token path
            ids.push_back(it->second);
            lens.push_back(1);
        }
        while (ids.size() > 1) {
            int best = INT_MAX;
            std::int64_t best_id = -1, left = -1, right = -1;
            for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
                auto it = merge_ids.find((static_cast<std::uint64_t>(ids[i]) << 32) | static_cast<std::uint32_t>(ids[i + 1]));
                if (it != merge_ids.end() && it->second.first < best) {
                    best = it->second.first;
                    best_id = it->second.second;
                    left = ids[i];
                    right = ids[i + 1];
                }
            }
            if (best == INT_MAX) break;
            std::size_t o = 0;
            for (std::size_t i = 0; i < ids.size(); ++i, ++o) {
                if (i + 1 < ids.size() && ids[i] == left && ids[i + 1] == right) {
                    ids[o] = best_id;
                    lens[o] = lens[i] + lens[i + 1];
                    ++i;
                } else {
                    ids[o] = ids[i];
                    lens[o] = lens[i];
                }
            }
            ids.resize(o);
            lens.resize(o);
        }
        result.clear();
        for (std::size_t i = 0; i < ids.size(); ++i) result.emplace_back(ids[i], lens[i]);
        return true;
    }

    void bpe(const NString& w, std::vector<Piece>& out) const {
        std::string key;
        for (const auto& nc : w) append_utf8(nc.c, key);
        std::vector<std::pair<std::int64_t, std::uint32_t>> parts;
        bool cached = false;
        {
            std::lock_guard<std::mutex> lock(cache_mutex);
            auto it = cache.find(key);
            if (it != cache.end()) parts = it->second, cached = true;
        }
        if (!cached) {
            if (!bpe_ids(w, parts)) {
                bpe_strings(w, out);
                return;
            }
            std::lock_guard<std::mutex> lock(cache_mutex);
            if (cache.size() > 100000) cache.clear();
            cache.emplace(key, parts);
        }
        std::size_t pos = 0;
        for (const auto& [id, len] : parts) {
            out.push_back({id, inverse.at(id), w[pos].orig, static_cast<std::int64_t>(w[pos + len - 1].orig) + 1});
            pos += len;
        }
    }

    void bpe_strings(const NString& w, std::vector<Piece>& out) const {
        struct Sym {
            std::string s;
            std::int32_t first, last;  // original code points covered
        };
        std::vector<Sym> syms;
        for (const auto& nc : w) {
            std::string s;
            append_utf8(nc.c, s);
            syms.push_back({s, nc.orig, nc.orig});
        }
        while (syms.size() > 1) {
            int best = INT_MAX;
            std::size_t at = 0;
            for (std::size_t i = 0; i + 1 < syms.size(); ++i) {
                auto it = ranks.find({syms[i].s, syms[i + 1].s});
                if (it != ranks.end() && it->second < best) best = it->second, at = i;
            }
            if (best == INT_MAX) break;
            const std::string a = syms[at].s, b = syms[at + 1].s;
            std::vector<Sym> next;
            for (std::size_t i = 0; i < syms.size(); ++i) {
                if (i + 1 < syms.size() && syms[i].s == a && syms[i + 1].s == b) {
                    next.push_back({a + b, syms[i].first, syms[i + 1].last});
                    ++i;
                } else {
                    next.push_back(syms[i]);
                }
            }
            syms.swap(next);
        }
        for (const auto& s : syms) {
            auto it = vocab.find(s.s);
            if (it == vocab.end()) {
                if (unk_token.empty()) continue;
                out.push_back({vocab.at(unk_token), unk_token, s.first, s.last + 1});
            } else {
                out.push_back({it->second, s.s, s.first, s.last + 1});
            }
        }
    }

    // One sequence: added tokens split out first, the rest normalized, pre-tokenized and modelled.
    std::vector<Piece> run(const std::u32string& text) const {
        std::vector<Piece> out;
        std::size_t i = 0, seg = 0;
        auto process = [&](std::size_t a, std::size_t b) {
            if (a >= b) return;
            NString ns;
            for (std::size_t k = a; k < b; ++k) ns.push_back({text[k], static_cast<std::int32_t>(k)});
            if (has_norm) ns = norm.apply(ns);
            std::vector<NString> words;
            if (pretok == PreTok::Bert) words = bert_split(ns);
            else if (pretok == PreTok::ByteLevel) words = gpt2_split(ns);
            else words.push_back(ns);
            for (auto& w : words) {
                if (w.empty()) continue;
                if (byte_level) w = to_byte_chars(w);
                if (model_type == "WordPiece") wordpiece(w, out);
                else bpe(w, out);
            }
        };
        while (i < text.size()) {
            const Added* hit = nullptr;
            for (const auto& a : added)  // longest match at this position
                if (!a.content.empty() && text.compare(i, a.content.size(), a.content) == 0 && (!hit || a.content.size() > hit->content.size()))
                    hit = &a;
            if (!hit) {
                ++i;
                continue;
            }
            std::size_t start = i, end = i + hit->content.size();
            if (hit->lstrip)
                while (start > seg && is_whitespace(text[start - 1])) --start;
            if (hit->rstrip)
                while (end < text.size() && is_whitespace(text[end])) ++end;
            process(seg, start);
            // The token's text is what was matched, stripped whitespace included (as the reference reports it).
            out.push_back({hit->id, u32_to_utf8(text.substr(start, end - start)), static_cast<std::int64_t>(start),
                           static_cast<std::int64_t>(end)});
            seg = i = end;
        }
        process(seg, text.size());
        return out;
    }

    void trim(std::vector<Piece>& ps) const {
        const char32_t space = bytes_to_chars()[' '];
        for (std::size_t i = 0; i < ps.size(); ++i) {
            auto& p = ps[i];
            const std::u32string t = utf8_to_u32(p.token);
            std::int64_t lead = 0, trail = 0;
            while (lead < static_cast<std::int64_t>(t.size()) && (t[static_cast<std::size_t>(lead)] == space || is_whitespace(t[static_cast<std::size_t>(lead)]))) ++lead;
            while (trail < static_cast<std::int64_t>(t.size()) &&
                   (t[t.size() - 1 - static_cast<std::size_t>(trail)] == space || is_whitespace(t[t.size() - 1 - static_cast<std::size_t>(trail)])))
                ++trail;
            if (lead > 0) {
                const bool first = i == 0 || p.start == 0;
                if (first && add_prefix_space && lead == 1) lead = 0;
                p.start = std::min(p.start + lead, p.end);
            }
            if (trail > 0 && p.end >= trail) p.end = std::max(p.end - trail, p.start);
        }
    }
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_file(const std::string& path) { return from_json(json::load_file(path), path); }

Tokenizer Tokenizer::from_json(const nlohmann::json& j, const std::string& where) {
    Tokenizer t;
    Impl& I = *t.impl_;
    I.where = where;
    auto type_of = [&](const nlohmann::json& v, const std::string& field) -> std::string {
        if (v.is_null()) return "";
        if (!v.is_object() || !v.contains("type") || !v["type"].is_string()) throw Error("'" + field + "' needs a string 'type'", where);
        return v["type"].get<std::string>();
    };
    auto unsupported = [&](const std::string& field, const std::string& type) {
        throw Error("unsupported " + field + " type '" + type + "'", where,
                    "supported: BertNormalizer, BertPreTokenizer, ByteLevel, WordPiece, BPE, BertProcessing, RobertaProcessing");
    };
    if (!j.is_object() || !j.contains("model")) throw Error("missing field 'model'", where, "is this a tokenizer.json?");
    const auto& m = j["model"];
    I.model_type = type_of(m, "model");
    if (I.model_type.empty() && m.contains("merges")) I.model_type = "BPE";
    if (I.model_type.empty() && m.contains("continuing_subword_prefix")) I.model_type = "WordPiece";
    if (I.model_type != "WordPiece" && I.model_type != "BPE") unsupported("model", I.model_type);
    if (!m.contains("vocab") || !m["vocab"].is_object()) throw Error("model.vocab must be an object of token -> id", where);
    for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
        if (!it.value().is_number_integer()) throw Error("model.vocab['" + it.key() + "'] must be an integer id", where);
        I.vocab[it.key()] = it.value().get<std::int64_t>();
        I.inverse[it.value().get<std::int64_t>()] = it.key();
    }
    if (m.contains("unk_token") && m["unk_token"].is_string()) I.unk_token = m["unk_token"].get<std::string>();
    if (I.model_type == "WordPiece") {
        I.prefix = m.value("continuing_subword_prefix", std::string("##"));
        I.max_chars = m.value("max_input_chars_per_word", 100);
        if (!I.vocab.count(I.unk_token)) throw Error("unk_token '" + I.unk_token + "' is not in the vocabulary", where);
    } else {
        if (m.value("byte_fallback", false)) unsupported("model option", "byte_fallback");
        if (m.value("ignore_merges", false)) unsupported("model option", "ignore_merges");
        if (!m.contains("merges") || !m["merges"].is_array()) throw Error("model.merges must be a list", where);
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
            I.ranks.emplace(std::make_pair(a, b), rank++);
        }
    }
    if (I.model_type == "BPE") I.build_merge_ids();
    const std::string nt = type_of(j.value("normalizer", nlohmann::json()), "normalizer");
    if (nt == "BertNormalizer") {
        const auto& n = j["normalizer"];
        I.has_norm = true;
        I.norm.clean = n.value("clean_text", true);
        I.norm.chinese = n.value("handle_chinese_chars", true);
        I.norm.lower = n.value("lowercase", true);
        I.norm.strip = n.contains("strip_accents") && !n["strip_accents"].is_null() ? n["strip_accents"].get<bool>() : I.norm.lower;
    } else if (!nt.empty()) {
        unsupported("normalizer", nt);
    }
    const std::string pt = type_of(j.value("pre_tokenizer", nlohmann::json()), "pre_tokenizer");
    if (pt == "BertPreTokenizer") I.pretok = PreTok::Bert;
    else if (pt == "ByteLevel") {
        const auto& p = j["pre_tokenizer"];
        if (p.value("add_prefix_space", false)) unsupported("pre_tokenizer option", "add_prefix_space");
        I.pretok = p.value("use_regex", true) ? PreTok::ByteLevel : PreTok::None;
        I.byte_level = true;
    } else if (!pt.empty()) {
        unsupported("pre_tokenizer", pt);
    }
    const std::string pp = type_of(j.value("post_processor", nlohmann::json()), "post_processor");
    auto special = [&](const nlohmann::json& v, const char* f) {
        if (!v.is_array() || v.size() != 2) throw Error(std::string("post_processor.") + f + " must be [token, id]", where);
        return std::make_pair(v[0].get<std::string>(), v[1].get<std::int64_t>());
    };
    if (pp == "BertProcessing" || pp == "RobertaProcessing") {
        const auto& p = j["post_processor"];
        I.post = pp == "BertProcessing" ? "bert" : "roberta";
        I.cls = special(p["cls"], "cls");
        I.sep = special(p["sep"], "sep");
        I.trim_offsets = pp == "RobertaProcessing" && p.value("trim_offsets", true);
        I.add_prefix_space = p.value("add_prefix_space", false);
    } else if (pp == "ByteLevel") {
        I.post = "bytelevel";
        I.trim_offsets = j["post_processor"].value("trim_offsets", false);
        I.add_prefix_space = j["post_processor"].value("add_prefix_space", false);
    } else if (!pp.empty()) {
        unsupported("post_processor", pp);
    }
    const std::string dt_ = type_of(j.value("decoder", nlohmann::json()), "decoder");
    if (dt_ == "WordPiece") {
        I.decoder = "wordpiece";
        I.cleanup = j["decoder"].value("cleanup", true);
    } else if (dt_ == "ByteLevel") {
        I.decoder = "bytelevel";
    } else if (!dt_.empty()) {
        unsupported("decoder", dt_);
    }
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
        for (const auto& a : j["added_tokens"]) {
            Impl::Added x;
            x.content = utf8_to_u32(a.value("content", std::string()));
            x.id = a.value("id", static_cast<std::int64_t>(-1));
            x.special = a.value("special", false);
            x.lstrip = a.value("lstrip", false);
            x.rstrip = a.value("rstrip", false);
            if (a.value("single_word", false)) unsupported("added token option", "single_word");
            I.added.push_back(x);
            I.inverse[x.id] = u32_to_utf8(x.content);
            I.vocab.emplace(u32_to_utf8(x.content), x.id);
        }
    if (j.contains("truncation") && !j["truncation"].is_null()) unsupported("option", "truncation");
    if (j.contains("padding") && !j["padding"].is_null()) unsupported("option", "padding");
    return t;
}

Encoding Tokenizer::encode(const std::string& text, const std::string* pair, bool add_special, std::size_t max_length) const {
    const Impl& I = *impl_;
    std::vector<Piece> a = I.run(utf8_to_u32(text)), b;
    if (pair) b = I.run(utf8_to_u32(*pair));
    if (max_length > 0) {
        std::size_t specials = 0;
        if (add_special && I.post == "bert") specials = pair ? 3 : 2;
        if (add_special && I.post == "roberta") specials = pair ? 4 : 2;
        const std::size_t budget = max_length > specials ? max_length - specials : 0;
        while (a.size() + b.size() > budget) (b.size() > a.size() ? b : a).pop_back();
    }
    if (I.trim_offsets) {
        I.trim(a);
        I.trim(b);
    }
    Encoding e;
    auto push = [&](const Piece& p, std::int64_t type, bool sp) {
        e.ids.push_back(p.id);
        e.tokens.push_back(p.token);
        e.type_ids.push_back(type);
        e.offsets.emplace_back(sp ? 0 : p.start, sp ? 0 : p.end);
        e.special.push_back(sp);
    };
    auto sp = [&](const std::pair<std::string, std::int64_t>& s) { return Piece{s.second, s.first, 0, 0}; };
    const bool wrap = add_special && (I.post == "bert" || I.post == "roberta");
    const std::int64_t second_type = I.post == "roberta" ? 0 : 1;
    if (wrap) push(sp(I.cls), 0, true);
    for (const auto& p : a) push(p, 0, false);
    if (wrap) push(sp(I.sep), 0, true);
    if (pair) {
        if (wrap && I.post == "roberta") push(sp(I.sep), second_type, true);
        for (const auto& p : b) push(p, second_type, false);
        if (wrap) push(sp(I.sep), second_type, true);
    }
    return e;
}

std::string Tokenizer::decode(const std::vector<std::int64_t>& ids, bool skip_special) const {
    const Impl& I = *impl_;
    std::vector<std::string> toks;
    for (auto id : ids) {
        bool special = false;
        for (const auto& a : I.added)
            if (a.id == id && a.special) special = true;
        if (skip_special && special) continue;
        auto it = I.inverse.find(id);
        if (it != I.inverse.end()) toks.push_back(it->second);
    }
    if (I.decoder == "bytelevel") {
        std::string bytes;
        const auto& map = chars_to_bytes();
        for (const auto& t : toks)
            for (char32_t c : utf8_to_u32(t)) {
                auto it = map.find(c);
                if (it != map.end()) bytes.push_back(static_cast<char>(it->second));
                else append_utf8(c, bytes);
            }
        // Lossy UTF-8 decoding, as the reference does: invalid sequences become U+FFFD.
        std::string out;
        std::size_t i = 0;
        while (i < bytes.size()) {
            std::size_t len = 1;
            const unsigned char c = static_cast<unsigned char>(bytes[i]);
            if (c >= 0xF0) len = 4;
            else if (c >= 0xE0) len = 3;
            else if (c >= 0xC0) len = 2;
            try {
                if (c >= 0x80 && (c < 0xC2 || i + len > bytes.size())) throw Error("bad");
                out += u32_to_utf8(utf8_to_u32(bytes.substr(i, len)));
                i += len;
            } catch (const Error&) {
                out += "\xEF\xBF\xBD";
                ++i;
                while (i < bytes.size() && (static_cast<unsigned char>(bytes[i]) & 0xC0) == 0x80 && len-- > 1) ++i;
            }
        }
        return out;
    }
    std::string out;
    for (std::size_t i = 0; i < toks.size(); ++i) {
        std::string t = toks[i];
        if (I.decoder == "wordpiece") {
            if (i > 0 && t.rfind(I.prefix, 0) == 0) t = t.substr(I.prefix.size());
            else if (i > 0) t = " " + t;
        } else if (i > 0) {
            t = " " + t;
        }
        out += t;
    }
    if (I.decoder == "wordpiece" && I.cleanup) {
        const std::pair<const char*, const char*> rules[] = {{" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
                                                             {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"},
                                                             {" 've", "'ve"}, {" 're", "'re"}};
        for (const auto& [from, to] : rules) {
            std::string r;
            const std::string f = from;
            std::size_t pos = 0, prev = 0;
            while ((pos = out.find(f, prev)) != std::string::npos) {
                r += out.substr(prev, pos - prev) + to;
                prev = pos + f.size();
            }
            out = r + out.substr(prev);
        }
    }
    return out;
}

std::int64_t Tokenizer::token_to_id(const std::string& token) const {
    auto it = impl_->vocab.find(token);
    return it == impl_->vocab.end() ? -1 : it->second;
}

std::string Tokenizer::id_to_token(std::int64_t id) const {
    auto it = impl_->inverse.find(id);
    return it == impl_->inverse.end() ? std::string() : it->second;
}

std::size_t Tokenizer::vocab_size() const { return impl_->inverse.size(); }

}  // namespace dt::tok
