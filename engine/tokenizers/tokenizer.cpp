// The tokenizer pipeline: tokenizer.json parsing, added tokens, the models (WordPiece, BPE, Unigram),
// post-processing templates and decoder chains. Text operations live in text_ops.cpp.
#include "tokenizers/tokenizer.h"

#include "core/error.h"
#include "io/json_util.h"
#include "tokenizers/text_ops.h"
#include "tokenizers/unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <queue>

namespace dt::tok {
namespace {

using namespace detail;

struct Piece {  // a model output token before post-processing
    std::int64_t id;
    std::string token;
    std::int64_t start, end;  // original code points
};

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
    bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
    // Unigram
    std::unordered_map<std::string, std::pair<std::int64_t, double>> uni;
    double unk_score = 0;
    std::int64_t unk_id = -1;
    std::size_t max_piece = 1;
    // pipeline
    struct NormOp {
        std::string kind;  // bert | prepend | replace | runs | nfkc
        BertNorm bert;
        std::u32string from, to;
        char32_t run_char = 0;
        std::size_t run_min = 0;
    };
    std::vector<NormOp> norms;
    struct PreOp {
        std::string kind;  // bert | gpt2 | llama3 | metaspace | whitespace_split
        char32_t repl = 0x2581;
        std::string scheme = "always";
        bool split = true;
    };
    std::vector<PreOp> pretoks;
    bool byte_level = false;
    struct TItem {
        bool special;
        int seq;  // 0 = A, 1 = B
        std::int64_t type;
        std::vector<std::int64_t> ids;
        std::vector<std::string> toks;
    };
    std::vector<TItem> tsingle, tpair;
    bool trim_offsets = false, add_prefix_space = false;
    struct DecOp {
        std::string kind;  // wordpiece | bytelevel | replace | byte_fallback | fuse | strip | metaspace
        std::string a, b;
        int start = 0, stop = 0;
        bool cleanup = true;
    };
    std::vector<DecOp> decoders;
    struct Added {
        std::u32string content;
        std::int64_t id;
        bool special, lstrip, rstrip;
    };
    std::vector<Added> added;

    void wordpiece(const NString& w, std::vector<Piece>& out) const {
        auto orig_range = [&](std::size_t a, std::size_t b) {
            return std::make_pair(static_cast<std::int64_t>(w[a].orig), static_cast<std::int64_t>(w[b - 1].stop()));
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

    // Merges over vocabulary ids; a character outside the vocabulary is id -1 and never merges.
    void bpe_ids(const NString& w, std::vector<std::pair<std::int64_t, std::uint32_t>>& result) const {
        std::vector<std::int64_t> ids;
        std::vector<std::uint32_t> lens;
        std::string ch;
        for (const auto& nc : w) {
            ch.clear();
            append_utf8(nc.c, ch);
            auto it = vocab.find(ch);
            ids.push_back(it == vocab.end() ? -1 : it->second);
            lens.push_back(1);
        }
        // Lowest rank first, leftmost among equals (a heap over adjacent pairs, O(n log n) per word);
        // symbols form a linked list so merging is O(1).
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
            auto it = merge_ids.find((static_cast<std::uint64_t>(l) << 32) | static_cast<std::uint32_t>(r));
            if (it != merge_ids.end()) heap.push({it->second.first, static_cast<std::size_t>(i), l, r, it->second.second});
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
        std::vector<std::int64_t> kept_ids;
        std::vector<std::uint32_t> kept_lens;
        for (std::ptrdiff_t i = n ? 0 : -1; i >= 0; i = next[static_cast<std::size_t>(i)])
            kept_ids.push_back(ids[static_cast<std::size_t>(i)]), kept_lens.push_back(lens[static_cast<std::size_t>(i)]);
        ids.swap(kept_ids);
        lens.swap(kept_lens);
        result.clear();
        for (std::size_t i = 0; i < ids.size(); ++i) result.emplace_back(ids[i], lens[i]);
    }

    // Viterbi over the pieces (best total log-probability); unknown characters score min - 10 and
    // consecutive unknown spans are fused, as the reference does.
    void unigram(const NString& w, std::vector<Piece>& out) const {
        const std::size_t n = w.size();
        std::vector<double> best(n + 1, 0.0);
        std::vector<std::size_t> from(n + 1, SIZE_MAX);
        std::vector<std::int64_t> ids(n + 1, -1);
        from[0] = 0;
        for (std::size_t start = 0; start < n; ++start) {
            if (from[start] == SIZE_MAX) continue;
            std::string sub;
            bool single = false;
            for (std::size_t len = 1; len <= max_piece && start + len <= n; ++len) {
                append_utf8(w[start + len - 1].c, sub);
                auto it = uni.find(sub);
                if (it == uni.end()) continue;
                const double cand = best[start] + it->second.second;
                if (from[start + len] == SIZE_MAX || cand > best[start + len])
                    best[start + len] = cand, from[start + len] = start, ids[start + len] = it->second.first;
                if (len == 1) single = true;
            }
            if (!single) {
                const double cand = best[start] + unk_score;
                if (from[start + 1] == SIZE_MAX || cand > best[start + 1]) best[start + 1] = cand, from[start + 1] = start, ids[start + 1] = unk_id;
            }
        }
        std::vector<std::pair<std::size_t, std::size_t>> spans;  // [start, end)
        std::vector<std::int64_t> span_ids;
        for (std::size_t e = n; e > 0; e = from[e]) spans.emplace_back(from[e], e), span_ids.push_back(ids[e]);
        std::reverse(spans.begin(), spans.end());
        std::reverse(span_ids.begin(), span_ids.end());
        for (std::size_t k = 0; k < spans.size(); ++k) {
            auto [a, b] = spans[k];
            const auto id = span_ids[k];
            while (id == unk_id && k + 1 < spans.size() && span_ids[k + 1] == unk_id) b = spans[++k].second;
            std::string text;
            for (std::size_t q = a; q < b; ++q) append_utf8(w[q].c, text);
            out.push_back({id, text, w[a].orig, w[b - 1].stop()});
        }
    }

    void bpe(const NString& w, std::vector<Piece>& out) const {
        std::string key;
        for (const auto& nc : w) append_utf8(nc.c, key);
        if (ignore_merges) {
            auto it = vocab.find(key);
            if (it != vocab.end()) {
                out.push_back({it->second, key, w.front().orig, w.back().stop()});
                return;
            }
        }
        std::vector<std::pair<std::int64_t, std::uint32_t>> parts;
        bool cached = false;
        {
            std::lock_guard<std::mutex> lock(cache_mutex);
            auto it = cache.find(key);
            if (it != cache.end()) parts = it->second, cached = true;
        }
        if (!cached) {
            bpe_ids(w, parts);
            std::lock_guard<std::mutex> lock(cache_mutex);
            if (cache.size() > 100000) cache.clear();
            cache.emplace(key, parts);
        }
        std::size_t pos = 0;
        bool last_unk = false;
        for (const auto& [id, len] : parts) {
            const NChar& a = w[pos];
            const NChar& z = w[pos + len - 1];
            pos += len;
            if (id >= 0) {
                out.push_back({id, inverse.at(id), a.orig, z.stop()});
                last_unk = false;
                continue;
            }
            std::string text;  // a character outside the vocabulary (len is 1)
            append_utf8(a.c, text);
            if (byte_fallback) {
                std::vector<Piece> bytes;
                for (unsigned char b : text) {
                    char name[8];
                    std::snprintf(name, sizeof name, "<0x%02X>", b);
                    auto bt = vocab.find(name);
                    if (bt == vocab.end()) break;
                    bytes.push_back({bt->second, name, a.orig, z.stop()});
                }
                if (bytes.size() == text.size()) {
                    out.insert(out.end(), bytes.begin(), bytes.end());
                    last_unk = false;
                    continue;
                }
            }
            if (unk_token.empty()) continue;
            if (fuse_unk && last_unk) {
                out.back().end = z.stop();
                continue;
            }
            out.push_back({vocab.at(unk_token), unk_token, a.orig, z.stop()});
            last_unk = true;
        }
    }

    NString normalize(const NormOp& op, const NString& ns) const {
        if (op.kind == "bert") return op.bert.apply(ns);
        if (op.kind == "prepend") {
            if (ns.empty()) return ns;
            NString out;
            for (char32_t c : op.to) out.push_back({c, ns.front().orig, ns.front().stop()});
            out.insert(out.end(), ns.begin(), ns.end());
            return out;
        }
        if (op.kind == "replace") return replace_all(ns, op.from, op.to);
        if (op.kind == "runs") return collapse_runs(ns, op.run_char, op.run_min, op.to);
        std::vector<Aligned> in;  // nfkc
        for (const auto& c : ns) in.push_back({c.c, c.orig, c.stop()});
        NString out;
        for (const auto& a : nfkc(in)) out.push_back({a.c, a.start, a.end});
        return out;
    }

    std::vector<NString> pre_tokenize(const PreOp& op, const NString& w) const {
        if (op.kind == "bert") return bert_split(w);
        if (op.kind == "gpt2") return gpt2_split(w);
        if (op.kind == "llama3") return llama3_split(w);
        if (op.kind == "whitespace_split") return whitespace_split(w);
        NString r = w;  // metaspace
        for (auto& c : r)
            if (c.c == ' ') c.c = op.repl;
        const bool prepend = op.scheme == "always" || (op.scheme == "first" && !r.empty() && r.front().orig == 0);
        if (prepend && !r.empty() && r.front().c != op.repl) r.insert(r.begin(), NChar{op.repl, r.front().orig, r.front().stop()});
        if (!op.split) return {r};
        std::vector<NString> out;
        for (const auto& c : r) {
            if (c.c == op.repl || out.empty()) out.emplace_back();
            out.back().push_back(c);
        }
        return out;
    }

    // One sequence: added tokens split out first, the rest normalized, pre-tokenized and modelled.
    std::vector<Piece> run(const std::u32string& text) const {
        std::vector<Piece> out;
        std::size_t i = 0, seg = 0;
        auto process = [&](std::size_t a, std::size_t b) {
            if (a >= b) return;
            NString ns;
            for (std::size_t k = a; k < b; ++k) ns.push_back({text[k], static_cast<std::int32_t>(k), static_cast<std::int32_t>(k + 1)});
            for (const auto& op : norms) ns = normalize(op, ns);
            std::vector<NString> words{ns};
            for (const auto& op : pretoks) {
                std::vector<NString> next;
                for (const auto& w : words)
                    for (auto& x : pre_tokenize(op, w)) next.push_back(std::move(x));
                words.swap(next);
            }
            for (auto& w : words) {
                if (w.empty()) continue;
                if (byte_level) w = to_byte_chars(w);
                if (model_type == "WordPiece") wordpiece(w, out);
                else if (model_type == "Unigram") unigram(w, out);
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

namespace {

std::string type_of(const nlohmann::json& v, const std::string& field, const std::string& where) {
    if (v.is_null()) return "";
    if (!v.is_object() || !v.contains("type") || !v["type"].is_string()) throw Error("'" + field + "' needs a string 'type'", where);
    return v["type"].get<std::string>();
}

[[noreturn]] void unsupported(const std::string& field, const std::string& type, const std::string& where) {
    throw Error("unsupported " + field + " '" + type + "'", where,
                "supported: BertNormalizer, NFKC, Prepend, Replace, BertPreTokenizer, ByteLevel, Metaspace, WhitespaceSplit, "
                "Split (the Llama-3 pattern), WordPiece, BPE, Unigram, Bert/Roberta/Template/ByteLevel processing");
}

// Flattens {"type": "Sequence", "<key>": [...]} into its members.
std::vector<nlohmann::json> members(const nlohmann::json& v, const char* key) {
    if (v.is_object() && v.value("type", std::string()) == "Sequence" && v.contains(key)) return v[key].get<std::vector<nlohmann::json>>();
    if (v.is_null()) return {};
    return {v};
}

const char* kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

}  // namespace

Tokenizer Tokenizer::from_json(const nlohmann::json& j, const std::string& where) {
    Tokenizer t;
    Impl& I = *t.impl_;
    I.where = where;
    if (!j.is_object() || !j.contains("model")) throw Error("missing field 'model'", where, "is this a tokenizer.json?");
    const auto& m = j["model"];
    I.model_type = type_of(m, "model", where);
    if (I.model_type.empty() && m.contains("merges")) I.model_type = "BPE";
    if (I.model_type.empty() && m.contains("continuing_subword_prefix")) I.model_type = "WordPiece";
    if (I.model_type != "WordPiece" && I.model_type != "BPE" && I.model_type != "Unigram") unsupported("model type", I.model_type, where);
    if (I.model_type == "Unigram") {
        if (!m.contains("vocab") || !m["vocab"].is_array()) throw Error("model.vocab must be a list of [piece, score]", where);
        double min_score = 0;
        std::int64_t id = 0;
        for (const auto& e : m["vocab"]) {
            if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
                throw Error("model.vocab[" + std::to_string(id) + "] must be [piece, score]", where);
            const auto piece = e[0].get<std::string>();
            const double score = e[1].get<double>();
            I.uni[piece] = {id, score};
            I.vocab[piece] = id;
            I.inverse[id] = piece;
            I.max_piece = std::max(I.max_piece, utf8_to_u32(piece).size());
            min_score = std::min(min_score, score);
            ++id;
        }
        I.unk_id = m.value("unk_id", static_cast<std::int64_t>(-1));
        if (I.unk_id < 0 || I.unk_id >= id) throw Error("model.unk_id must index the vocabulary", where);
        I.unk_score = min_score - 10.0;
        if (m.value("byte_fallback", false)) unsupported("model option", "byte_fallback (Unigram)", where);
    } else {
        if (!m.contains("vocab") || !m["vocab"].is_object()) throw Error("model.vocab must be an object of token -> id", where);
        for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
            if (!it.value().is_number_integer()) throw Error("model.vocab['" + it.key() + "'] must be an integer id", where);
            I.vocab[it.key()] = it.value().get<std::int64_t>();
            I.inverse[it.value().get<std::int64_t>()] = it.key();
        }
        if (m.contains("unk_token") && m["unk_token"].is_string()) I.unk_token = m["unk_token"].get<std::string>();
    }
    if (I.model_type == "WordPiece") {
        I.prefix = m.value("continuing_subword_prefix", std::string("##"));
        I.max_chars = m.value("max_input_chars_per_word", 100);
        if (!I.vocab.count(I.unk_token)) throw Error("unk_token '" + I.unk_token + "' is not in the vocabulary", where);
    } else if (I.model_type == "BPE") {
        I.byte_fallback = m.value("byte_fallback", false);
        I.fuse_unk = m.value("fuse_unk", false);
        I.ignore_merges = m.value("ignore_merges", false);
        if (!I.unk_token.empty() && !I.vocab.count(I.unk_token)) throw Error("unk_token '" + I.unk_token + "' is not in the vocabulary", where);
        if (m.contains("continuing_subword_prefix") && !m["continuing_subword_prefix"].is_null()) unsupported("model option", "continuing_subword_prefix (BPE)", where);
        if (m.contains("end_of_word_suffix") && !m["end_of_word_suffix"].is_null()) unsupported("model option", "end_of_word_suffix", where);
        if (m.contains("dropout") && !m["dropout"].is_null()) unsupported("model option", "dropout", where);
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
        I.build_merge_ids();
    }
    for (const auto& n : members(j.value("normalizer", nlohmann::json()), "normalizers")) {
        const std::string nt = type_of(n, "normalizer", where);
        Impl::NormOp op;
        if (nt == "BertNormalizer") {
            op.kind = "bert";
            op.bert.clean = n.value("clean_text", true);
            op.bert.chinese = n.value("handle_chinese_chars", true);
            op.bert.lower = n.value("lowercase", true);
            op.bert.strip = n.contains("strip_accents") && !n["strip_accents"].is_null() ? n["strip_accents"].get<bool>() : op.bert.lower;
        } else if (nt == "Prepend") {
            op.kind = "prepend";
            op.to = utf8_to_u32(n.value("prepend", std::string()));
        } else if (nt == "NFKC") {
            op.kind = "nfkc";
        } else if (nt == "Replace") {
            const auto& pat = n.value("pattern", nlohmann::json());
            op.to = utf8_to_u32(n.value("content", std::string()));
            if (pat.contains("String")) {
                op.kind = "replace";
                op.from = utf8_to_u32(pat["String"].get<std::string>());
            } else {
                // Only "X{n,}" regexes (runs of one character) are supported.
                const std::u32string re = utf8_to_u32(pat.value("Regex", std::string()));
                const auto brace = re.find(U'{');
                if (re.size() < 5 || brace != 1 || re.substr(re.size() - 2) != U",}") unsupported("Replace pattern", u32_to_utf8(re), where);
                op.kind = "runs";
                op.run_char = re[0];
                op.run_min = std::stoul(u32_to_utf8(re.substr(2, re.size() - 4)));
            }
        } else {
            unsupported("normalizer", nt, where);
        }
        I.norms.push_back(op);
    }
    for (const auto& p : members(j.value("pre_tokenizer", nlohmann::json()), "pretokenizers")) {
        const std::string pt = type_of(p, "pre_tokenizer", where);
        Impl::PreOp op;
        if (pt == "BertPreTokenizer") {
            op.kind = "bert";
        } else if (pt == "ByteLevel") {
            if (p.value("add_prefix_space", false)) unsupported("pre_tokenizer option", "add_prefix_space", where);
            I.byte_level = true;
            if (!p.value("use_regex", true)) continue;
            op.kind = "gpt2";
        } else if (pt == "WhitespaceSplit") {
            op.kind = "whitespace_split";
        } else if (pt == "Metaspace") {
            op.kind = "metaspace";
            const auto r = utf8_to_u32(p.value("replacement", std::string("\xE2\x96\x81")));
            if (r.size() != 1) unsupported("Metaspace replacement", p.value("replacement", std::string()), where);
            op.repl = r[0];
            op.scheme = p.value("prepend_scheme", std::string(p.value("add_prefix_space", true) ? "always" : "never"));
            op.split = p.value("split", true);
        } else if (pt == "Split") {
            const auto& pat = p.value("pattern", nlohmann::json());
            const std::string re = pat.value("Regex", std::string());
            if ((re != kLlama3Pattern && re != kGpt2Pattern) || p.value("behavior", std::string()) != "Isolated" || p.value("invert", false))
                unsupported("Split pattern", re, where);
            op.kind = re == kGpt2Pattern ? "gpt2" : "llama3";
        } else {
            unsupported("pre_tokenizer", pt, where);
        }
        I.pretoks.push_back(op);
    }
    auto special = [&](const nlohmann::json& v, const char* f) {
        if (!v.is_array() || v.size() != 2) throw Error(std::string("post_processor.") + f + " must be [token, id]", where);
        return Impl::TItem{true, 0, 0, {v[1].get<std::int64_t>()}, {v[0].get<std::string>()}};
    };
    auto seq = [](int which, std::int64_t type) { return Impl::TItem{false, which, type, {}, {}}; };
    I.tsingle = {seq(0, 0)};
    I.tpair = {seq(0, 0), seq(1, 1)};
    for (const auto& p : members(j.value("post_processor", nlohmann::json()), "processors")) {
        const std::string pp = type_of(p, "post_processor", where);
        if (pp == "BertProcessing") {
            auto cls = special(p["cls"], "cls"), sep = special(p["sep"], "sep");
            auto sep1 = sep;
            sep1.type = 1;
            I.tsingle = {cls, seq(0, 0), sep};
            I.tpair = {cls, seq(0, 0), sep, seq(1, 1), sep1};
        } else if (pp == "RobertaProcessing") {
            auto cls = special(p["cls"], "cls"), sep = special(p["sep"], "sep");
            I.tsingle = {cls, seq(0, 0), sep};
            I.tpair = {cls, seq(0, 0), sep, sep, seq(1, 0), sep};
            I.trim_offsets = p.value("trim_offsets", true);
            I.add_prefix_space = p.value("add_prefix_space", false);
        } else if (pp == "ByteLevel") {
            I.trim_offsets = p.value("trim_offsets", false);
            I.add_prefix_space = p.value("add_prefix_space", false);
        } else if (pp == "TemplateProcessing") {
            const auto& specials = p.value("special_tokens", nlohmann::json::object());
            auto parse = [&](const nlohmann::json& items, const char* field) {
                std::vector<Impl::TItem> out;
                for (const auto& it : items) {
                    if (it.contains("Sequence")) {
                        const auto& q = it["Sequence"];
                        out.push_back(seq(q.value("id", std::string("A")) == "B" ? 1 : 0, q.value("type_id", 0)));
                    } else if (it.contains("SpecialToken")) {
                        const auto& q = it["SpecialToken"];
                        const std::string name = q.value("id", std::string());
                        if (!specials.contains(name)) throw Error("special token '" + name + "' of the template is not defined", where + ": post_processor." + field);
                        const auto& def = specials[name];
                        out.push_back({true, 0, q.value("type_id", 0), def.value("ids", std::vector<std::int64_t>()),
                                       def.value("tokens", std::vector<std::string>())});
                    } else {
                        throw Error("template items are Sequence or SpecialToken", where + ": post_processor." + field);
                    }
                }
                return out;
            };
            I.tsingle = parse(p.value("single", nlohmann::json::array()), "single");
            I.tpair = parse(p.value("pair", nlohmann::json::array()), "pair");
        } else {
            unsupported("post_processor", pp, where);
        }
    }
    for (const auto& d : members(j.value("decoder", nlohmann::json()), "decoders")) {
        const std::string dt_ = type_of(d, "decoder", where);
        Impl::DecOp op;
        if (dt_ == "WordPiece") {
            op.kind = "wordpiece";
            op.a = d.value("prefix", std::string("##"));
            op.cleanup = d.value("cleanup", true);
        } else if (dt_ == "ByteLevel") {
            op.kind = "bytelevel";
        } else if (dt_ == "Replace") {
            op.kind = "replace";
            const auto& pat = d.value("pattern", nlohmann::json());
            if (!pat.contains("String")) unsupported("decoder Replace pattern", pat.dump(), where);
            op.a = pat["String"].get<std::string>();
            op.b = d.value("content", std::string());
        } else if (dt_ == "ByteFallback") {
            op.kind = "byte_fallback";
        } else if (dt_ == "Fuse") {
            op.kind = "fuse";
        } else if (dt_ == "Strip") {
            op.kind = "strip";
            op.a = d.value("content", std::string(" "));
            op.start = d.value("start", 0);
            op.stop = d.value("stop", 0);
        } else if (dt_ == "Metaspace") {
            op.kind = "metaspace";
            op.a = d.value("replacement", std::string("\xE2\x96\x81"));
            op.b = d.value("prepend_scheme", std::string(d.value("add_prefix_space", true) ? "always" : "never"));
        } else {
            unsupported("decoder", dt_, where);
        }
        I.decoders.push_back(op);
    }
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
        for (const auto& a : j["added_tokens"]) {
            Impl::Added x;
            x.content = utf8_to_u32(a.value("content", std::string()));
            x.id = a.value("id", static_cast<std::int64_t>(-1));
            x.special = a.value("special", false);
            x.lstrip = a.value("lstrip", false);
            x.rstrip = a.value("rstrip", false);
            if (a.value("single_word", false)) unsupported("added token option", "single_word", where);
            I.added.push_back(x);
            I.inverse[x.id] = u32_to_utf8(x.content);
            I.vocab.emplace(u32_to_utf8(x.content), x.id);
        }
    if (j.contains("truncation") && !j["truncation"].is_null()) unsupported("option", "truncation (use max_length)", where);
    if (j.contains("padding") && !j["padding"].is_null()) unsupported("option", "padding (batches are padded by the engine)", where);
    return t;
}

Encoding Tokenizer::encode(const std::string& text, const std::string* pair, bool add_special, std::size_t max_length) const {
    const Impl& I = *impl_;
    std::vector<Piece> a = I.run(utf8_to_u32(text)), b;
    if (pair) b = I.run(utf8_to_u32(*pair));
    const auto& tmpl = pair ? I.tpair : I.tsingle;
    if (max_length > 0) {
        std::size_t specials = 0;
        for (const auto& it : tmpl)
            if (it.special && add_special) specials += it.ids.size();
        const std::size_t budget = max_length > specials ? max_length - specials : 0;
        while (a.size() + b.size() > budget) (b.size() > a.size() ? b : a).pop_back();
    }
    if (I.trim_offsets) {
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
    std::vector<std::string> toks;
    for (auto id : ids) {
        bool special = false;
        for (const auto& a : I.added)
            if (a.id == id && a.special) special = true;
        if (skip_special && special) continue;
        auto it = I.inverse.find(id);
        if (it != I.inverse.end()) toks.push_back(it->second);
    }
    if (I.decoders.empty()) {
        std::string out;
        for (std::size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
        return out;
    }
    for (const auto& op : I.decoders) {
        if (op.kind == "wordpiece") {
            std::string out;
            for (std::size_t i = 0; i < toks.size(); ++i) {
                std::string t = toks[i];
                if (i > 0 && t.rfind(op.a, 0) == 0) t = t.substr(op.a.size());
                else if (i > 0) t = " " + t;
                out += t;
            }
            if (op.cleanup)
                for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
                         {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"},
                         {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}})
                    out = replace_str(out, from, to);
            toks = {out};
        } else if (op.kind == "bytelevel") {
            std::string bytes;
            const auto& map = chars_to_bytes();
            for (const auto& t : toks)
                for (char32_t c : utf8_to_u32(t)) {
                    auto it = map.find(c);
                    if (it != map.end()) bytes.push_back(static_cast<char>(it->second));
                    else append_utf8(c, bytes);
                }
            toks = {lossy_utf8(bytes)};
        } else if (op.kind == "replace") {
            for (auto& t : toks) t = replace_str(t, op.a, op.b);
        } else if (op.kind == "byte_fallback") {
            std::vector<std::string> out;
            std::string pending;
            std::size_t count = 0;
            auto flush = [&] {
                if (count == 0) return;
                const std::string s = lossy_utf8(pending);
                // Bytes that do not form valid UTF-8 become one U+FFFD each, as the reference does.
                if (s.find("\xEF\xBF\xBD") != std::string::npos)
                    for (std::size_t k = 0; k < count; ++k) out.push_back("\xEF\xBF\xBD");
                else
                    out.push_back(s);
                pending.clear();
                count = 0;
            };
            for (const auto& t : toks) {
                unsigned char b;
                if (byte_token(t, b)) {
                    pending.push_back(static_cast<char>(b));
                    ++count;
                } else {
                    flush();
                    out.push_back(t);
                }
            }
            flush();
            toks.swap(out);
        } else if (op.kind == "fuse") {
            std::string all;
            for (const auto& t : toks) all += t;
            toks = {all};
        } else if (op.kind == "strip") {
            for (auto& t : toks) {
                for (int k = 0; k < op.start && t.rfind(op.a, 0) == 0; ++k) t = t.substr(op.a.size());
                for (int k = 0; k < op.stop && t.size() >= op.a.size() && t.compare(t.size() - op.a.size(), op.a.size(), op.a) == 0; ++k)
                    t.resize(t.size() - op.a.size());
            }
        } else if (op.kind == "metaspace") {
            for (std::size_t i = 0; i < toks.size(); ++i) {
                std::string t = replace_str(toks[i], op.a, " ");
                if (i == 0 && op.b != "never" && !t.empty() && t[0] == ' ') t = t.substr(1);
                toks[i] = t;
            }
        }
    }
    std::string out;
    for (const auto& t : toks) out += t;
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
