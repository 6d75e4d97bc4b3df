#include "tokenizers/unicode.h"

#include "core/error.h"

#include <algorithm>

namespace dt::tok {

using namespace unicode_data;

Cat category(char32_t c) {
    const CategoryRange* begin = kCategories;
    const CategoryRange* end = kCategories + kCategoryCount;
    auto it = std::upper_bound(begin, end, c, [](char32_t v, const CategoryRange& r) { return v < r.first; });
    if (it == begin) return Cat::Cn;
    --it;
    return c <= it->last ? static_cast<Cat>(it->cat) : Cat::Cn;
}

bool is_whitespace(char32_t c) {
    switch (c) {
        case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0: case 0x1680:
        case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
            return true;
        default:
            return c >= 0x2000 && c <= 0x200A;
    }
}

bool is_other(char32_t c) {
    const Cat k = category(c);
    return k == Cat::Cc || k == Cat::Cf || k == Cat::Cs || k == Cat::Co;
}

void append_lower(char32_t c, std::u32string& out) {
    if (c < 0x80) {
        out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
        return;
    }
    auto it = std::lower_bound(kLower, kLower + kLowerCount, c, [](const CaseMapping& m, char32_t v) { return m.cp < v; });
    if (it == kLower + kLowerCount || it->cp != c) {
        out.push_back(c);
        return;
    }
    out.push_back(it->to0);
    if (it->to1) out.push_back(it->to1);
    if (it->to2) out.push_back(it->to2);
}

void append_nfd(char32_t c, std::u32string& out) {
    if (c < 0xC0) {
        out.push_back(c);
        return;
    }
    auto it = std::lower_bound(kDecomp, kDecomp + kDecompCount, c, [](const Decomposition& d, char32_t v) { return d.cp < v; });
    if (it == kDecomp + kDecompCount || it->cp != c) {
        out.push_back(c);
        return;
    }
    out.append(kDecompData + it->offset, it->length);
}

std::u32string utf8_to_u32(const std::string& s) {
    std::u32string out;
    out.reserve(s.size());
    std::size_t i = 0;
    const auto n = s.size();
    while (i < n) {
        const unsigned char b = static_cast<unsigned char>(s[i]);
        char32_t c;
        int len;
        if (b < 0x80) c = b, len = 1;
        else if ((b & 0xE0) == 0xC0) c = b & 0x1F, len = 2;
        else if ((b & 0xF0) == 0xE0) c = b & 0x0F, len = 3;
        else if ((b & 0xF8) == 0xF0) c = b & 0x07, len = 4;
        else throw Error("invalid UTF-8 at byte " + std::to_string(i), "text");
        if (i + static_cast<std::size_t>(len) > n) throw Error("truncated UTF-8 at byte " + std::to_string(i), "text");
        for (int k = 1; k < len; ++k) {
            const unsigned char cb = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
            if ((cb & 0xC0) != 0x80) throw Error("invalid UTF-8 at byte " + std::to_string(i), "text");
            c = (c << 6) | (cb & 0x3F);
        }
        if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) || c > 0x10FFFF ||
            (c >= 0xD800 && c <= 0xDFFF))
            throw Error("invalid UTF-8 at byte " + std::to_string(i), "text");
        out.push_back(c);
        i += static_cast<std::size_t>(len);
    }
    return out;
}

void append_utf8(char32_t c, std::string& out) {
    if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

std::string u32_to_utf8(const std::u32string& s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : s) append_utf8(c, out);
    return out;
}

}  // namespace dt::tok

namespace dt::tok {

std::uint8_t combining_class(char32_t c) {
    if (c < 0x300) return 0;
    auto it = std::lower_bound(kCombining, kCombining + kCombiningCount, c, [](const CombiningClass& x, char32_t v) { return x.cp < v; });
    return (it != kCombining + kCombiningCount && it->cp == c) ? it->ccc : 0;
}

namespace {

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

char32_t compose_pair(char32_t a, char32_t b) {
    if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
        return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
        return a + (b - kTBase);
    const Composition key{a, b, 0};
    auto it = std::lower_bound(kCompose, kCompose + kComposeCount, key, [](const Composition& x, const Composition& y) {
        return x.first != y.first ? x.first < y.first : x.second < y.second;
    });
    return (it != kCompose + kComposeCount && it->first == a && it->second == b) ? it->composite : 0;
}

}  // namespace

std::vector<Aligned> normalize_form(const std::vector<Aligned>& in, bool compat, bool compose) {
    std::vector<Aligned> d;
    d.reserve(in.size());
    std::u32string canon;
    for (const auto& a : in) {
        const char32_t c = a.c;
        if (c >= kSBase && c < kSBase + kSCount) {
            const int s = static_cast<int>(c - kSBase);
            d.push_back({kLBase + static_cast<char32_t>(s / kNCount), a.start, a.end});
            d.push_back({kVBase + static_cast<char32_t>((s % kNCount) / kTCount), a.start, a.end});
            if (s % kTCount) d.push_back({kTBase + static_cast<char32_t>(s % kTCount), a.start, a.end});
            continue;
        }
        if (!compat) {
            canon.clear();
            append_nfd(c, canon);
            for (char32_t x : canon) d.push_back({x, a.start, a.end});
            continue;
        }
        auto it = c < 0xA0 ? kCompat + kCompatCount
                           : std::lower_bound(kCompat, kCompat + kCompatCount, c, [](const Decomposition& x, char32_t v) { return x.cp < v; });
        if (it == kCompat + kCompatCount || it->cp != c) {
            d.push_back(a);
            continue;
        }
        for (std::uint32_t k = 0; k < it->length; ++k) d.push_back({kCompatData[it->offset + k], a.start, a.end});
    }
    // Canonical ordering of combining marks.
    for (std::size_t i = 0; i < d.size();) {
        if (combining_class(d[i].c) == 0) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < d.size() && combining_class(d[j].c) != 0) ++j;
        std::stable_sort(d.begin() + static_cast<std::ptrdiff_t>(i), d.begin() + static_cast<std::ptrdiff_t>(j),
                         [](const Aligned& x, const Aligned& y) { return combining_class(x.c) < combining_class(y.c); });
        i = j;
    }
    if (!compose) return d;
    // Canonical composition.
    std::vector<Aligned> out;
    out.reserve(d.size());
    long starter = -1;
    std::uint8_t last_cc = 0;
    for (const auto& a : d) {
        const std::uint8_t cc = combining_class(a.c);
        if (starter >= 0) {
            const bool adjacent = static_cast<long>(out.size()) - 1 == starter;
            const bool blocked = !adjacent && (last_cc >= cc || last_cc == 0);
            if (!blocked) {
                if (char32_t comp = compose_pair(out[static_cast<std::size_t>(starter)].c, a.c)) {
                    // The composite keeps the starter's range; the absorbed mark's source is dropped,
                    // which is how the reference aligns it.
                    out[static_cast<std::size_t>(starter)].c = comp;
                    continue;
                }
            }
        }
        if (cc == 0) starter = static_cast<long>(out.size());
        out.push_back(a);
        last_cc = cc;
    }
    return out;
}

std::vector<Aligned> nfkc(const std::vector<Aligned>& in) { return normalize_form(in, true, true); }

bool is_word_char(char32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const Cat k = category(c);
    if ((k >= Cat::Lu && k <= Cat::Lo) || k == Cat::Mn || k == Cat::Mc || k == Cat::Me || k == Cat::Nd || k == Cat::Nl || k == Cat::Pc)
        return true;
    if (c == 0x200C || c == 0x200D) return true;  // Join_Control
    // Other_Alphabetic symbols (category So): circled and squared Latin letters.
    return (c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189);
}

}  // namespace dt::tok
