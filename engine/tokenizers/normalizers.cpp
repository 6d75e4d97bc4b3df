// Normalizers of tokenizer.json (BertNormalizer, Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase, Strip,
// StripAccents, Nmt), read from their section and applied to a normalized string that keeps every code point's original range.
#include "tokenizers/pipeline.h"

#include "tokenizers/tokenizer_json.h"
#include "tokenizers/unicode.h"

#include <nlohmann/json.hpp>

namespace dt::tok::detail {
namespace {

NormOp bert_normalizer(const nlohmann::json& n) {
    NormOp op;
    op.kind = "bert";
    op.bert.clean = n.value("clean_text", true);
    op.bert.chinese = n.value("handle_chinese_chars", true);
    op.bert.lower = n.value("lowercase", true);
    op.bert.strip = n.contains("strip_accents") && !n["strip_accents"].is_null() ? n["strip_accents"].get<bool>() : op.bert.lower;
    return op;
}

NormOp replace_normalizer(const nlohmann::json& n, const std::string& where) {
    NormOp op;
    const auto& pat = n.value("pattern", nlohmann::json());
    op.to = utf8_to_u32(n.value("content", std::string()));
    if (pat.contains("String")) {
        op.kind = "replace";
        op.from = utf8_to_u32(pat["String"].get<std::string>());
        return op;
    }
    // Only "X{n,}" regexes (runs of one character) are supported.
    const std::u32string re = utf8_to_u32(pat.value("Regex", std::string()));
    const auto brace = re.find(U'{');
    if (re.size() < 5 || brace != 1 || re.substr(re.size() - 2) != U",}") unsupported("Replace pattern", u32_to_utf8(re), where);
    op.kind = "runs";
    op.run_char = re[0];
    op.run_min = std::stoul(u32_to_utf8(re.substr(2, re.size() - 4)));
    return op;
}

}  // namespace

std::vector<NormOp> parse_normalizers(const nlohmann::json& v, const std::string& where) {
    std::vector<NormOp> ops;
    for (const auto& n : members(v, "normalizers")) {
        const std::string nt = type_of(n, "normalizer", where);
        NormOp op;
        if (nt == "BertNormalizer") {
            op = bert_normalizer(n);
        } else if (nt == "Prepend") {
            op.kind = "prepend";
            op.to = utf8_to_u32(n.value("prepend", std::string()));
        } else if (nt == "NFKC" || nt == "NFC" || nt == "NFD" || nt == "NFKD") {
            op.kind = nt == "NFKC" ? "nfkc" : nt == "NFC" ? "nfc" : nt == "NFD" ? "nfd" : "nfkd";
        } else if (nt == "Lowercase") {
            op.kind = "lowercase";
        } else if (nt == "StripAccents") {
            op.kind = "strip_accents";
        } else if (nt == "Strip") {
            op.kind = "strip";
            op.strip_left = n.value("strip_left", true);
            op.strip_right = n.value("strip_right", true);
        } else if (nt == "Nmt") {
            op.kind = "nmt";
        } else if (nt == "Replace") {
            op = replace_normalizer(n, where);
        } else {
            unsupported("normalizer", nt, where);
        }
        ops.push_back(op);
    }
    return ops;
}

NString normalize(const NormOp& op, const NString& ns) {
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
    if (op.kind == "lowercase") {  // each code point's full lowercase mapping (Rust's char::to_lowercase)
        NString out;
        std::u32string l;
        for (const auto& c : ns) {
            l.clear();
            append_lower(c.c, l);
            for (char32_t x : l) out.push_back({x, c.orig, c.end});
        }
        return out;
    }
    if (op.kind == "strip_accents") {  // every combining mark (Mn, Mc, Me) goes
        NString out;
        for (const auto& c : ns) {
            const Cat k = category(c.c);
            if (k != Cat::Mn && k != Cat::Mc && k != Cat::Me) out.push_back(c);
        }
        return out;
    }
    if (op.kind == "strip") {
        std::size_t a = 0, b = ns.size();
        if (op.strip_left)
            while (a < b && is_whitespace(ns[a].c)) ++a;
        if (op.strip_right)
            while (b > a && is_whitespace(ns[b - 1].c)) --b;
        return NString(ns.begin() + static_cast<std::ptrdiff_t>(a), ns.begin() + static_cast<std::ptrdiff_t>(b));
    }
    if (op.kind == "nmt") {  // the reference's Nmt: ASCII controls dropped, other spaces made ' '
        NString out;
        for (auto c : ns) {
            const char32_t x = c.c;
            if ((x >= 0x1 && x <= 0x8) || x == 0xB || (x >= 0xE && x <= 0x1F) || x == 0x7F || x == 0x8F || x == 0x9F) continue;
            if (x == 0x9 || x == 0xA || x == 0xC || x == 0xD || x == 0x1680 || (x >= 0x200B && x <= 0x200F) || x == 0x2028 ||
                x == 0x2029 || x == 0x2581 || x == 0xFEFF || x == 0xFFFD)
                c.c = ' ';
            out.push_back(c);
        }
        return out;
    }
    std::vector<Aligned> in;  // the normal forms
    for (const auto& c : ns) in.push_back({c.c, c.orig, c.stop()});
    NString out;
    const bool compat = op.kind == "nfkc" || op.kind == "nfkd", compose = op.kind == "nfkc" || op.kind == "nfc";
    for (const auto& a : normalize_form(in, compat, compose)) out.push_back({a.c, a.start, a.end});
    return out;
}

}  // namespace dt::tok::detail
