// Reading tokenizer.json: Tokenizer::from_json reads it section by section (model, normalizer,
// pre_tokenizer, post_processor, decoder, added tokens); the post-processor and added tokens are read here.
#include "tokenizers/tokenizer_json.h"

#include "core/error.h"
#include "io/json_util.h"
#include "io/limits.h"
#include "tokenizers/pipeline.h"
#include "tokenizers/unicode.h"

#include <nlohmann/json.hpp>

namespace dt::tok::detail {

std::string type_of(const nlohmann::json& v, const std::string& field, const std::string& where) {
    if (v.is_null()) return "";
    if (!v.is_object() || !v.contains("type") || !v["type"].is_string()) throw Error("'" + field + "' needs a string 'type'", where);
    return v["type"].get<std::string>();
}

void unsupported(const std::string& field, const std::string& type, const std::string& where) {
    throw Error("unsupported " + field + " '" + type + "'", where,
                "supported: see docs/tokenizers.md (normalizers BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, Strip, "
                "StripAccents, Nmt, Prepend, Replace; pre-tokenizers BertPreTokenizer, ByteLevel, Whitespace, WhitespaceSplit, "
                "Metaspace, Punctuation, Digits, CharDelimiterSplit, Split; models WordPiece, BPE, Unigram, WordLevel)");
}

std::vector<nlohmann::json> members(const nlohmann::json& v, const char* key) {
    if (v.is_object() && v.value("type", std::string()) == "Sequence" && v.contains(key)) return v[key].get<std::vector<nlohmann::json>>();
    if (v.is_null()) return {};
    return {v};
}

void read_token_ids(const nlohmann::json& m, const std::string& where, Vocab& vocab, std::string& unk_token) {
    if (!m.contains("vocab") || !m["vocab"].is_object()) throw Error("model.vocab must be an object of token -> id", where);
    if (m["vocab"].size() > limits::kVocabEntries)
        throw Error("model.vocab has " + std::to_string(m["vocab"].size()) + " entries", where, limits::describe("vocab_entries", limits::kVocabEntries));
    for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
        if (!it.value().is_number_integer()) throw Error("model.vocab['" + it.key() + "'] must be an integer id", where);
        vocab.ids[it.key()] = it.value().get<std::int64_t>();
        vocab.tokens[it.value().get<std::int64_t>()] = it.key();
    }
    if (m.contains("unk_token") && m["unk_token"].is_string()) unk_token = m["unk_token"].get<std::string>();
}

namespace {

// Files without a model type are recognised by their fields.
std::unique_ptr<Model> parse_model(const nlohmann::json& m, const std::string& where) {
    std::string type = type_of(m, "model", where);
    if (type.empty() && m.contains("merges")) type = "BPE";
    if (type.empty() && m.contains("continuing_subword_prefix")) type = "WordPiece";
    if (type == "WordPiece") return WordPiece::from_json(m, where);
    if (type == "BPE") return Bpe::from_json(m, where);
    if (type == "Unigram") return Unigram::from_json(m, where);
    if (type == "WordLevel") return WordLevel::from_json(m, where);
    unsupported("model type", type, where);
}

TItem sequence_item(int which, std::int64_t type) { return TItem{false, which, type, {}, {}}; }

TItem special_item(const nlohmann::json& v, const char* field, const std::string& where) {
    if (!v.is_array() || v.size() != 2) throw Error(std::string("post_processor.") + field + " must be [token, id]", where);
    return TItem{true, 0, 0, {v[1].get<std::int64_t>()}, {v[0].get<std::string>()}};
}

// TemplateProcessing's "single" or "pair": Sequence and SpecialToken items.
std::vector<TItem> template_items(const nlohmann::json& items, const nlohmann::json& specials, const char* field,
                                  const std::string& where) {
    std::vector<TItem> out;
    for (const auto& it : items) {
        if (it.contains("Sequence")) {
            const auto& q = it["Sequence"];
            out.push_back(sequence_item(q.value("id", std::string("A")) == "B" ? 1 : 0, q.value("type_id", 0)));
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
}

PostProcessor parse_post_processor(const nlohmann::json& v, const std::string& where) {
    PostProcessor pp;
    pp.single = {sequence_item(0, 0)};
    pp.pair = {sequence_item(0, 0), sequence_item(1, 1)};
    for (const auto& p : members(v, "processors")) {
        const std::string type = type_of(p, "post_processor", where);
        if (type == "BertProcessing") {
            auto cls = special_item(p["cls"], "cls", where), sep = special_item(p["sep"], "sep", where);
            auto sep1 = sep;
            sep1.type = 1;
            pp.single = {cls, sequence_item(0, 0), sep};
            pp.pair = {cls, sequence_item(0, 0), sep, sequence_item(1, 1), sep1};
        } else if (type == "RobertaProcessing") {
            auto cls = special_item(p["cls"], "cls", where), sep = special_item(p["sep"], "sep", where);
            pp.single = {cls, sequence_item(0, 0), sep};
            pp.pair = {cls, sequence_item(0, 0), sep, sep, sequence_item(1, 0), sep};
            pp.trim_offsets = p.value("trim_offsets", true);
            pp.add_prefix_space = p.value("add_prefix_space", false);
        } else if (type == "ByteLevel") {
            pp.trim_offsets = p.value("trim_offsets", false);
            pp.add_prefix_space = p.value("add_prefix_space", false);
        } else if (type == "TemplateProcessing") {
            const auto& specials = p.value("special_tokens", nlohmann::json::object());
            pp.single = template_items(p.value("single", nlohmann::json::array()), specials, "single", where);
            pp.pair = template_items(p.value("pair", nlohmann::json::array()), specials, "pair", where);
        } else {
            unsupported("post_processor", type, where);
        }
    }
    return pp;
}

// Added tokens also join the model's vocabulary (an existing token keeps its id there).
std::vector<AddedToken> parse_added_tokens(const nlohmann::json& j, const std::string& where, Vocab& vocab) {
    std::vector<AddedToken> added;
    if (!j.contains("added_tokens") || !j["added_tokens"].is_array()) return added;
    if (j["added_tokens"].size() > limits::kAddedTokens)
        throw Error("added_tokens has " + std::to_string(j["added_tokens"].size()) + " entries", where,
                    limits::describe("added_tokens", limits::kAddedTokens));
    for (const auto& a : j["added_tokens"]) {
        AddedToken x;
        x.content = utf8_to_u32(a.value("content", std::string()));
        x.id = a.value("id", static_cast<std::int64_t>(-1));
        x.special = a.value("special", false);
        x.lstrip = a.value("lstrip", false);
        x.rstrip = a.value("rstrip", false);
        x.normalized = a.value("normalized", !x.special);
        if (a.value("single_word", false)) unsupported("added token option", "single_word", where);
        added.push_back(x);
        vocab.tokens[x.id] = u32_to_utf8(x.content);
        vocab.ids.emplace(u32_to_utf8(x.content), x.id);
    }
    return added;
}

}  // namespace
}  // namespace dt::tok::detail

namespace dt::tok {

Tokenizer Tokenizer::from_file(const std::string& path) { return from_json(json::load_file(path), path); }

Tokenizer Tokenizer::from_json(const nlohmann::json& j, const std::string& where) {
    using namespace detail;
    if (!j.is_object() || !j.contains("model")) throw Error("missing field 'model'", where, "is this a tokenizer.json?");
    Tokenizer t;
    Impl& I = *t.impl_;
    try {
        I.model = parse_model(j["model"], where);
        I.norms = parse_normalizers(j.value("normalizer", nlohmann::json()), where);
        PreTokenizers pre = parse_pre_tokenizers(j.value("pre_tokenizer", nlohmann::json()), where);
        I.pretoks = std::move(pre.ops);
        I.byte_level = pre.byte_level;
        I.post = parse_post_processor(j.value("post_processor", nlohmann::json()), where);
        I.decoders = parse_decoders(j.value("decoder", nlohmann::json()), where);
        I.added = parse_added_tokens(j, where, I.model->vocab());
        // "truncation" and "padding" are read by nobody, as in transformers, whose tokenizers turn both
        // off unless a call asks for them: the task's max_length truncates, the engine pads batches.
    } catch (const nlohmann::json::exception& e) {
        // A field of the wrong type somewhere the checks above do not name one by one.
        throw Error("malformed tokenizer.json: " + json::exception_text(e), where,
                    "save the tokenizer again with the tokenizers library");
    }
    return t;
}

}  // namespace dt::tok
