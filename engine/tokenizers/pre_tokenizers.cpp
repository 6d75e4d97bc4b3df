// Pre-tokenizers of tokenizer.json (BertPreTokenizer, ByteLevel, WhitespaceSplit, Metaspace, Split with
// the GPT-2 or Llama-3 pattern), read from their section and applied to split a normalized string into words.
#include "tokenizers/pipeline.h"

#include "tokenizers/tokenizer_json.h"
#include "tokenizers/unicode.h"

#include <nlohmann/json.hpp>

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

// Split is supported for the two regexes we implement natively, isolating their matches.
PreOp split_pre_tokenizer(const nlohmann::json& p, const std::string& where) {
    const auto& pat = p.value("pattern", nlohmann::json());
    const std::string re = pat.value("Regex", std::string());
    if ((re != kLlama3SplitPattern && re != kGpt2SplitPattern) || p.value("behavior", std::string()) != "Isolated" || p.value("invert", false))
        unsupported("Split pattern", re, where);
    PreOp op;
    op.kind = re == kGpt2SplitPattern ? "gpt2" : "llama3";
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
    return metaspace_split(op, w);
}

}  // namespace dt::tok::detail
