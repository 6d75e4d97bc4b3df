// Pre-tokenizers of tokenizer.json (BertPreTokenizer, ByteLevel, Whitespace, WhitespaceSplit, Metaspace,
// Punctuation, Digits, CharDelimiterSplit, Split with a String or a natively implemented regex), read
// from their section and applied to split a normalized string into words.
#include "tokenizers/pipeline.h"

#include "core/error.h"
#include "tokenizers/tokenizer_json.h"
#include "tokenizers/unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace dt::tok::detail {
namespace {

const char* kLlama3SplitPattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kGpt2SplitPattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

PreOp metaspace_pre_tokenizer(const nlohmann::json& p, const std::string& where) {
    PreOp op;
    op.kind = "metaspace";
    const auto r = utf8_to_u32(p.value("replacement", std::string("\xE2\x96\x81")));
    if (r.size() != 1) unsupported("Metaspace replacement", p.value("replacement", std::string()), where);
    op.repl = r[0];
    op.scheme = p.value("prepend_scheme", std::string(p.value("add_prefix_space", true) ? "always" : "never"));
    op.split = p.value("split", true);
    return op;
}

const char* kWordsPattern = "\\w+|[^\\w\\s]+";  // the Whitespace pre-tokenizer's

std::string behavior_of(const nlohmann::json& p, const std::string& fallback, const std::string& where) {
    const std::string b = p.value("behavior", fallback);
    // The reference writes them capitalised; its Python API takes the snake_case names too.
    static const std::pair<const char*, const char*> kNames[] = {{"Removed", "removed"},
                                                                 {"Isolated", "isolated"},
                                                                 {"MergedWithPrevious", "merged_with_previous"},
                                                                 {"MergedWithNext", "merged_with_next"},
                                                                 {"Contiguous", "contiguous"}};
    for (const auto& [name, snake] : kNames)
        if (b == name || b == snake) return name;
    throw Error("unknown split behavior '" + b + "'", where, "one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

// Split: a String pattern (any text), or one of the regexes implemented natively: GPT-2's and
// Llama-3's (their matches isolated), \w+|[^\w\s]+ and \s+ (any behavior).
PreOp split_pre_tokenizer(const nlohmann::json& p, const std::string& where) {
    const auto& pat = p.value("pattern", nlohmann::json());
    PreOp op;
    op.kind = "split";
    op.behavior = behavior_of(p, "Isolated", where);
    op.invert = p.value("invert", false);
    if (pat.is_object() && pat.contains("String")) {
        op.match = "literal";
        op.literal = utf8_to_u32(pat["String"].get<std::string>());
        if (op.literal.empty()) throw Error("Split's String pattern is empty", where);
        return op;
    }
    const std::string re = pat.is_object() ? pat.value("Regex", std::string()) : std::string();
    if ((re == kLlama3SplitPattern || re == kGpt2SplitPattern) && op.behavior == "Isolated" && !op.invert) {
        op.kind = re == kGpt2SplitPattern ? "gpt2" : "llama3";
        return op;
    }
    if (re == kWordsPattern) op.match = "words";
    else if (re == "\\s+") op.match = "spaces";
    else unsupported("Split pattern", re, where);
    return op;
}

// The reference's punctuation: ASCII punctuation (which takes in $+<=>^`|~) and categories P*.
bool is_punct(char32_t c) {
    if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
    return is_punctuation(c);
}

// Where `op` matches in w: [start, end) ranges in order, not overlapping.
std::vector<std::pair<std::size_t, std::size_t>> find_matches(const PreOp& op, const NString& w) {
    std::vector<std::pair<std::size_t, std::size_t>> m;
    const std::size_t n = w.size();
    if (op.match == "literal") {
        const std::size_t k = op.literal.size();
        for (std::size_t i = 0; i + k <= n;) {
            bool hit = true;
            for (std::size_t j = 0; j < k && hit; ++j) hit = w[i + j].c == op.literal[j];
            if (hit) {
                m.emplace_back(i, i + k);
                i += k;
            } else {
                ++i;
            }
        }
        return m;
    }
    if (op.match == "words" || op.match == "spaces") {  // maximal runs of one class
        auto cls = [&](char32_t c) { return is_whitespace(c) ? 0 : is_word_char(c) ? 1 : 2; };
        for (std::size_t i = 0; i < n;) {
            const int c = cls(w[i].c);
            std::size_t j = i + 1;
            while (j < n && cls(w[j].c) == c) ++j;
            if ((op.match == "spaces") == (c == 0)) m.emplace_back(i, j);
            i = j;
        }
        return m;
    }
    for (std::size_t i = 0; i < n; ++i) {  // one code point per match
        const char32_t c = w[i].c;
        if (op.match == "punct" ? is_punct(c) : is_number(c)) m.emplace_back(i, i + 1);
    }
    return m;
}

// The reference's NormalizedString::split: the text cut into matches and the stretches between,
// then the behavior decides which pieces stay and how matches join their neighbours.
std::vector<NString> split_by(const PreOp& op, const NString& w) {
    struct Seg {
        std::size_t a, b;
        bool match;
    };
    std::vector<Seg> segs;
    std::size_t at = 0;
    for (const auto& [a, b] : find_matches(op, w)) {
        if (a > at) segs.push_back({at, a, false});
        segs.push_back({a, b, true});
        at = b;
    }
    if (at < w.size()) segs.push_back({at, w.size(), false});
    if (op.invert)
        for (auto& s : segs) s.match = !s.match;
    std::vector<Seg> out;
    if (op.behavior == "Removed") {
        for (const auto& s : segs)
            if (!s.match) out.push_back(s);
    } else if (op.behavior == "Isolated") {
        out = segs;
    } else if (op.behavior == "Contiguous") {
        bool prev = false;
        for (const auto& s : segs) {
            if (!out.empty() && s.match == prev) out.back().b = s.b;
            else out.push_back(s);
            prev = s.match;
        }
    } else if (op.behavior == "MergedWithPrevious") {
        bool prev = false;
        for (const auto& s : segs) {
            if (s.match && !prev && !out.empty()) out.back().b = s.b;
            else out.push_back(s);
            prev = s.match;
        }
    } else {  // MergedWithNext
        bool prev = false;
        for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
            if (it->match && !prev && !out.empty()) out.back().a = it->a;
            else out.push_back(*it);
            prev = it->match;
        }
        std::reverse(out.begin(), out.end());
    }
    std::vector<NString> pieces;
    for (const auto& s : out)
        if (s.b > s.a) pieces.emplace_back(w.begin() + static_cast<std::ptrdiff_t>(s.a), w.begin() + static_cast<std::ptrdiff_t>(s.b));
    return pieces;
}

PreOp split_op(const char* match, const char* behavior, bool invert = false) {
    PreOp op;
    op.kind = "split";
    op.match = match;
    op.behavior = behavior;
    op.invert = invert;
    return op;
}

std::vector<NString> metaspace_split(const PreOp& op, const NString& w) {
    NString r = w;
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

}  // namespace

PreTokenizers parse_pre_tokenizers(const nlohmann::json& v, const std::string& where) {
    PreTokenizers pre;
    for (const auto& p : members(v, "pretokenizers")) {
        const std::string pt = type_of(p, "pre_tokenizer", where);
        PreOp op;
        if (pt == "BertPreTokenizer") {
            op.kind = "bert";
        } else if (pt == "ByteLevel") {
            pre.byte_level = true;
            op.kind = "gpt2";
            op.prefix_space = p.value("add_prefix_space", false);
            op.regex = p.value("use_regex", true);
            if (!op.prefix_space && !op.regex) continue;  // nothing to do before the byte mapping
        } else if (pt == "WhitespaceSplit") {
            op.kind = "whitespace_split";
        } else if (pt == "Metaspace") {
            op = metaspace_pre_tokenizer(p, where);
        } else if (pt == "Split") {
            op = split_pre_tokenizer(p, where);
        } else if (pt == "Whitespace") {  // \w+|[^\w\s]+, the matches kept
            op = split_op("words", "Removed", true);
        } else if (pt == "Punctuation") {
            op = split_op("punct", behavior_of(p, "Isolated", where).c_str());
        } else if (pt == "Digits") {
            op = split_op("digits", p.value("individual_digits", false) ? "Isolated" : "Contiguous");
        } else if (pt == "CharDelimiterSplit") {
            const auto d = utf8_to_u32(p.value("delimiter", std::string()));
            if (d.size() != 1) throw Error("CharDelimiterSplit's delimiter must be one character", where);
            op = split_op("literal", "Removed");
            op.literal = d;
        } else {
            unsupported("pre_tokenizer", pt, where);
        }
        pre.ops.push_back(op);
    }
    return pre;
}

std::vector<NString> pre_tokenize(const PreOp& op, const NString& w) {
    if (op.kind == "bert") return bert_split(w);
    if (op.kind == "gpt2") {
        NString piece = w;
        // As the reference: a piece that does not start with a space gets one, aligned with its
        // first character (so the first token's offsets still start at 0).
        if (op.prefix_space && !piece.empty() && piece.front().c != ' ') piece.insert(piece.begin(), NChar{' ', piece.front().orig, piece.front().stop()});
        if (!op.regex) return {piece};
        return gpt2_split(piece);
    }
    if (op.kind == "llama3") return llama3_split(w);
    if (op.kind == "whitespace_split") return whitespace_split(w);
    if (op.kind == "split") return split_by(op, w);
    return metaspace_split(op, w);
}

}  // namespace dt::tok::detail
