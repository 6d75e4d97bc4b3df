// Decoders of tokenizer.json (WordPiece, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace),
// read from their section and run as a chain over the token strings of decode().
#include "tokenizers/pipeline.h"

#include "tokenizers/tokenizer_json.h"
#include "tokenizers/unicode.h"

#include <nlohmann/json.hpp>

#include <utility>

namespace dt::tok::detail {
namespace {

using Tokens = std::vector<std::string>;

DecOp read_decoder(const nlohmann::json& d, const std::string& type, const std::string& where) {
    DecOp op;
    if (type == "WordPiece") {
        op.kind = "wordpiece";
        op.a = d.value("prefix", std::string("##"));
        op.cleanup = d.value("cleanup", true);
    } else if (type == "ByteLevel") {
        op.kind = "bytelevel";
    } else if (type == "Replace") {
        op.kind = "replace";
        const auto& pat = d.value("pattern", nlohmann::json());
        if (!pat.contains("String")) unsupported("decoder Replace pattern", pat.dump(), where);
        op.a = pat["String"].get<std::string>();
        op.b = d.value("content", std::string());
    } else if (type == "ByteFallback") {
        op.kind = "byte_fallback";
    } else if (type == "Fuse") {
        op.kind = "fuse";
    } else if (type == "Strip") {
        op.kind = "strip";
        op.a = d.value("content", std::string(" "));
        op.start = d.value("start", 0);
        op.stop = d.value("stop", 0);
    } else if (type == "Metaspace") {
        op.kind = "metaspace";
        op.a = d.value("replacement", std::string("\xE2\x96\x81"));
        op.b = d.value("prepend_scheme", std::string(d.value("add_prefix_space", true) ? "always" : "never"));
    } else {
        unsupported("decoder", type, where);
    }
    return op;
}

// Continuation pieces lose their prefix, others get a space; then BERT's cleanup of spaced punctuation.
Tokens decode_wordpiece(const DecOp& op, const Tokens& toks) {
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
    return {out};
}

Tokens decode_byte_level(const Tokens& toks) {
    std::string bytes;
    const auto& map = chars_to_bytes();
    for (const auto& t : toks)
        for (char32_t c : utf8_to_u32(t)) {
            auto it = map.find(c);
            if (it != map.end()) bytes.push_back(static_cast<char>(it->second));
            else append_utf8(c, bytes);
        }
    return {lossy_utf8(bytes)};
}

// Runs of <0xNN> tokens become their UTF-8 text; bytes that do not form valid UTF-8 become one
// U+FFFD each, as the reference does.
Tokens decode_byte_fallback(const Tokens& toks) {
    Tokens out;
    std::string pending;
    std::size_t count = 0;
    auto flush = [&] {
        if (count == 0) return;
        const std::string s = lossy_utf8(pending);
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
    return out;
}

void decode_strip(const DecOp& op, Tokens& toks) {
    for (auto& t : toks) {
        for (int k = 0; k < op.start && t.rfind(op.a, 0) == 0; ++k) t = t.substr(op.a.size());
        for (int k = 0; k < op.stop && t.size() >= op.a.size() && t.compare(t.size() - op.a.size(), op.a.size(), op.a) == 0; ++k)
            t.resize(t.size() - op.a.size());
    }
}

void decode_metaspace(const DecOp& op, Tokens& toks) {
    for (std::size_t i = 0; i < toks.size(); ++i) {
        std::string t = replace_str(toks[i], op.a, " ");
        if (i == 0 && op.b != "never" && !t.empty() && t[0] == ' ') t = t.substr(1);
        toks[i] = t;
    }
}

}  // namespace

std::vector<DecOp> parse_decoders(const nlohmann::json& v, const std::string& where) {
    std::vector<DecOp> ops;
    for (const auto& d : members(v, "decoders")) ops.push_back(read_decoder(d, type_of(d, "decoder", where), where));
    return ops;
}

std::string decode_tokens(const std::vector<DecOp>& ops, Tokens toks) {
    if (ops.empty()) {
        std::string out;
        for (std::size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
        return out;
    }
    for (const auto& op : ops) {
        if (op.kind == "wordpiece") {
            toks = decode_wordpiece(op, toks);
        } else if (op.kind == "bytelevel") {
            toks = decode_byte_level(toks);
        } else if (op.kind == "replace") {
            for (auto& t : toks) t = replace_str(t, op.a, op.b);
        } else if (op.kind == "byte_fallback") {
            toks = decode_byte_fallback(toks);
        } else if (op.kind == "fuse") {
            std::string all;
            for (const auto& t : toks) all += t;
            toks = {all};
        } else if (op.kind == "strip") {
            decode_strip(op, toks);
        } else if (op.kind == "metaspace") {
            decode_metaspace(op, toks);
        }
    }
    std::string out;
    for (const auto& t : toks) out += t;
    return out;
}

}  // namespace dt::tok::detail
