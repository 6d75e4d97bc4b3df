// Normalizers, pre-tokenizer splits, the byte table and decoding helpers (see text_ops.h).
#include "tokenizers/text_ops.h"

#include "core/error.h"
#include "tokenizers/unicode.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace dt::tok::detail {

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

NString BertNorm::apply(const NString& in) const {
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
            out.push_back({' ', nc.orig, nc.end});
            out.push_back({c, nc.orig, nc.end});
            out.push_back({' ', nc.orig, nc.end});
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
                for (char32_t y : l) out.push_back({y, nc.orig, nc.end});
            } else {
                out.push_back({x, nc.orig, nc.end});
            }
        }
    }
    return out;
}


// ---- pre-tokenizers ----


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
        for (unsigned char b : tmp) out.push_back({table[b], nc.orig, nc.end});
    }
    return out;
}


// The Llama-3 pattern, matched by hand: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+   (alternatives tried in order, as the regex does)
std::vector<NString> llama3_split(const NString& s) {
    std::vector<NString> out;
    const std::size_t n = s.size();
    auto at = [&](std::size_t i) -> char32_t { return i < n ? s[i].c : 0; };
    auto ws = [&](std::size_t i) { return i < n && is_whitespace(s[i].c); };
    auto nl = [&](std::size_t i) { return i < n && (s[i].c == '\r' || s[i].c == '\n'); };
    auto letter = [&](std::size_t i) { return i < n && is_letter(s[i].c); };
    auto number = [&](std::size_t i) { return i < n && is_number(s[i].c); };
    auto other = [&](std::size_t i) { return i < n && !is_whitespace(s[i].c) && !is_letter(s[i].c) && !is_number(s[i].c); };
    auto lower = [](char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; };
    std::size_t i = 0;
    while (i < n) {
        std::size_t j = i;
        if (at(i) == '\'') {
            const char32_t a = lower(at(i + 1)), b = lower(at(i + 2));
            if (a == 's' || a == 't' || a == 'm' || a == 'd') j = i + 2;
            else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) j = i + 3;
        }
        if (j == i && letter(i)) {
            j = i;
            while (letter(j)) ++j;
        } else if (j == i && !nl(i) && !letter(i) && !number(i) && letter(i + 1)) {
            j = i + 1;
            while (letter(j)) ++j;
        } else if (j == i && number(i)) {
            j = i;
            while (number(j) && j - i < 3) ++j;
        } else if (j == i && (other(i) || (at(i) == ' ' && other(i + 1)))) {
            j = at(i) == ' ' ? i + 1 : i;
            while (other(j)) ++j;
            while (nl(j)) ++j;
        } else if (j == i && ws(i)) {
            std::size_t k = i, last_nl = 0;
            while (ws(k)) {
                if (nl(k)) last_nl = k + 1;
                ++k;
            }
            if (last_nl > 0) {
                j = last_nl;  // \s*[\r\n]+
            } else {
                j = k;
                if (k < n && k - i > 1) --j;  // \s+(?!\S)
            }
        } else if (j == i) {
            j = i + 1;
        }
        out.emplace_back(s.begin() + static_cast<std::ptrdiff_t>(i), s.begin() + static_cast<std::ptrdiff_t>(j));
        i = j;
    }
    return out;
}

std::vector<NString> whitespace_split(const NString& s) {
    std::vector<NString> out;
    NString cur;
    for (const auto& nc : s) {
        if (is_whitespace(nc.c)) {
            if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
        } else {
            cur.push_back(nc);
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

// Replaces every occurrence of `from` by `to`; the replacement covers the matched range.
NString replace_all(const NString& s, const std::u32string& from, const std::u32string& to) {
    if (from.empty()) return s;
    NString out;
    std::size_t i = 0;
    while (i < s.size()) {
        bool hit = i + from.size() <= s.size();
        for (std::size_t k = 0; hit && k < from.size(); ++k) hit = s[i + k].c == from[k];
        if (!hit) {
            out.push_back(s[i++]);
            continue;
        }
        const std::int32_t a = s[i].orig, b = s[i + from.size() - 1].stop();
        for (char32_t c : to) out.push_back({c, a, b});
        i += from.size();
    }
    return out;
}

// Replaces runs of at least `min_run` copies of `c` by `to` (the regex "c{n,}").
NString collapse_runs(const NString& s, char32_t c, std::size_t min_run, const std::u32string& to) {
    NString out;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t j = i;
        while (j < s.size() && s[j].c == c) ++j;
        if (j - i >= min_run) {
            for (char32_t x : to) out.push_back({x, s[i].orig, s[j - 1].stop()});
            i = j;
        } else if (j > i) {
            for (std::size_t k = i; k < j; ++k) out.push_back(s[k]);
            i = j;
        } else {
            out.push_back(s[i++]);
        }
    }
    return out;
}

// Bytes -> UTF-8, each invalid sequence replaced by U+FFFD (lossy decoding, as the reference does).
std::string lossy_utf8(const std::string& bytes) {
    std::string out;
    std::size_t i = 0;
    while (i < bytes.size()) {
        const unsigned char c = static_cast<unsigned char>(bytes[i]);
        std::size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        bool ok = len > 0 && i + len <= bytes.size();
        if (ok) {
            try {
                out += u32_to_utf8(utf8_to_u32(bytes.substr(i, len)));
            } catch (const Error&) {
                ok = false;
            }
        }
        if (ok) {
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

std::string replace_str(std::string s, const std::string& from, const std::string& to) {
    if (from.empty()) return s;
    std::string r;
    std::size_t pos = 0, prev = 0;
    while ((pos = s.find(from, prev)) != std::string::npos) {
        r += s.substr(prev, pos - prev) + to;
        prev = pos + from.size();
    }
    return r + s.substr(prev);
}

bool byte_token(const std::string& t, unsigned char& b) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return false;
    b = static_cast<unsigned char>(std::strtoul(t.substr(3, 2).c_str(), nullptr, 16));
    return true;
}


}  // namespace dt::tok::detail
