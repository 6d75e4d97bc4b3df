// Tokenizer parity with Hugging Face tokenizers 0.23.2: ids, tokens, type ids, offsets (code points)
// and decoded text for every case in tests/data/tokenizers/<name>/cases.jsonl.
#include "test_registry.h"

#include "core/error.h"
#include "tokenizers/tokenizer.h"
#include "tokenizers/unicode.h"

#include <nlohmann/json.hpp>

#include <QFile>
#include <QTest>

using namespace dttest;

class TestTokenizers : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void parity_data() {
        QTest::addColumn<QString>("name");
        for (const char* n : {"bert-wordpiece-uncased", "bert-wordpiece-cased", "gpt2-bytelevel-bpe", "roberta-bytelevel-bpe",
                              "llama-bpe-bytefallback", "llama-metaspace-bpe", "llama3-bytelevel-bpe", "t5-unigram",
                              // ByteLevel with add_prefix_space (tools/gen_tokenizer_variants.mjs, same library)
                              "gpt2-bytelevel-prefix", "gpt2-bytelevel-noregex-prefix", "roberta-bytelevel-prefix",
                              // the rest of the normalizer / pre-tokenizer / model surface (same tool)
                              "wordpiece-nfd-whitespace-digits", "wordpiece-nmt-nfkd-punct", "wordpiece-nfc-split-behaviors",
                              "wordlevel-whitespace"})
            QTest::newRow(n) << QString::fromLatin1(n);
    }
    void parity() {
        QFETCH(QString, name);
        const QString dir = dataDir() + "/tokenizers/" + name;
        auto tok = dt::tok::Tokenizer::from_file((dir + "/tokenizer.json").toStdString());
        QFile f(dir + "/cases.jsonl");
        QVERIFY(f.open(QIODevice::ReadOnly));
        int cases = 0;
        QStringList failures;
        for (const auto& line : f.readAll().split('\n')) {
            if (line.trimmed().isEmpty()) continue;
            const auto c = nlohmann::json::parse(line.toStdString());
            const std::string text = c["text"];
            const std::string pair = c["pair"].is_null() ? std::string() : c["pair"].get<std::string>();
            const bool special = c["add_special_tokens"];
            const auto e = tok.encode(text, c["pair"].is_null() ? nullptr : &pair, special);
            ++cases;
            nlohmann::json offsets = nlohmann::json::array();
            for (const auto& [a, b] : e.offsets) offsets.push_back({a, b});
            const std::string what = QByteArray::fromStdString(text).left(60).toStdString() + (special ? " [+special]" : "");
            if (nlohmann::json(e.ids) != c["ids"]) failures << QString::fromStdString("ids: " + what + "\n   got " + nlohmann::json(e.tokens).dump() + "\n  want " + c["tokens"].dump());
            else if (nlohmann::json(e.tokens) != c["tokens"])
                failures << QString::fromStdString("tokens: " + what + "\n   got " + nlohmann::json(e.tokens).dump() + "\n  want " + c["tokens"].dump());
            else if (nlohmann::json(e.type_ids) != c["type_ids"]) failures << QString::fromStdString("type_ids: " + what + " got " + nlohmann::json(e.type_ids).dump());
            else if (offsets != c["offsets"]) failures << QString::fromStdString("offsets: " + what + "\n   got " + offsets.dump() + "\n  want " + c["offsets"].dump());
            else if (tok.decode(e.ids, true) != c["decoded"].get<std::string>())
                failures << QString::fromStdString("decoded: " + what + "\n   got " + nlohmann::json(tok.decode(e.ids, true)).dump() + "\n  want " + c["decoded"].dump());
        }
        QVERIFY(cases > 100);
        QVERIFY2(failures.isEmpty(), qPrintable(QString::number(failures.size()) + " of " + QString::number(cases) + " cases differ:\n" + failures.mid(0, 6).join("\n")));
    }

    void rejectsWhatItCannotRun() {
        auto expect = [](const char* json, const char* needle) {
            try {
                dt::tok::Tokenizer::from_json(nlohmann::json::parse(json), "tok.json");
                QFAIL("accepted");
            } catch (const dt::Error& e) {
                QVERIFY2(QString::fromStdString(e.what()).contains("tok.json") && QString::fromStdString(e.what()).contains(needle), e.what());
            }
        };
        expect(R"({"model": {"type": "WordLevelX", "vocab": {}}})", "unsupported model type 'WordLevelX'");
        expect(R"({"model": {"type": "WordLevel", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[a-z]+"}, "behavior": "Isolated", "invert": false}})",
               "unsupported Split pattern '[a-z]+'");
        expect(R"({"model": {"type": "WordLevel", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "Punctuation", "behavior": "Sideways"}})",
               "unknown split behavior 'Sideways'");
        expect(R"({"model": {"type": "WordLevel", "vocab": {"a": 0}}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}})",
               "unsupported normalizer 'Precompiled'");
        expect(R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]], "unk_id": 5}})", "unk_id");
        expect(R"({"normalizer": null})", "missing field 'model'");
        expect(R"({"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}})", "unk_token '[UNK]'");
        expect(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}})", "merge 'ab'");
    }

    // Noncharacters (category Cn) are kept by the reference's BertNormalizer, and WordPiece then
    // yields [UNK] (reported against HF tokenizers); they used to be dropped as control characters.
    void noncharactersBecomeUnk() {
        auto tok = dt::tok::Tokenizer::from_file((dataDir() + "/tokenizers/bert-wordpiece-uncased/tokenizer.json").toStdString());
        for (const char* nonchar : {"\xEF\xBF\xBE", "\xEF\xBF\xBF", "\xEF\xB7\x90"}) {  // U+FFFE, U+FFFF, U+FDD0
            const auto e = tok.encode(std::string("hello ") + nonchar + " world", nullptr, false);
            QCOMPARE(e.tokens, (std::vector<std::string>{"hello", "[UNK]", "world"}));
            QCOMPARE(e.offsets[1], (std::pair<std::int64_t, std::int64_t>{6, 7}));
        }
        // Checked against the reference (tokenizers 0.23.2 on this tokenizer.json): an unassigned code
        // point (U+0378) is kept too; control (Cc), format (Cf: U+200B, U+061C, U+E0001) and private
        // use (Co: U+E000, U+F0000) characters are removed.
        QCOMPARE(tok.encode("hello \xCD\xB8 world", nullptr, false).tokens, (std::vector<std::string>{"hello", "[UNK]", "world"}));
        for (const char* removed : {"\x07", "\xE2\x80\x8B", "\xD8\x9C", "\xF3\xA0\x80\x81", "\xEE\x80\x80", "\xF3\xB0\x80\x80"})
            QCOMPARE(tok.encode(std::string("hello ") + removed + " world", nullptr, false).tokens, (std::vector<std::string>{"hello", "world"}));
    }

    // A tokenizer.json saved with truncation and padding loads; like transformers' fast tokenizers,
    // which turn both off unless a call asks, nothing truncates or pads but the caller's max_length.
    void savedTruncationAndPaddingAreNotApplied() {
        QFile f(dataDir() + "/tokenizers/bert-wordpiece-uncased/tokenizer.json");
        QVERIFY(f.open(QIODevice::ReadOnly));
        auto j = nlohmann::json::parse(f.readAll().toStdString());
        const auto plain = dt::tok::Tokenizer::from_json(j, "tok.json");
        j["truncation"] = {{"direction", "Right"}, {"max_length", 4}, {"strategy", "LongestFirst"}, {"stride", 0}};
        j["padding"] = {{"strategy", {{"Fixed", 32}}}, {"direction", "Right"}, {"pad_to_multiple_of", nullptr},
                        {"pad_id", 0}, {"pad_type_id", 0}, {"pad_token", "[PAD]"}};
        const auto saved = dt::tok::Tokenizer::from_json(j, "tok.json");
        const std::string text = "the quick brown fox jumps over the lazy dog";
        const auto a = plain.encode(text, nullptr, true), b = saved.encode(text, nullptr, true);
        QVERIFY(a.ids.size() > 4 && a.ids.size() < 32);
        QCOMPARE(b.ids, a.ids);
        QCOMPARE(saved.encode(text, nullptr, true, 5).ids.size(), std::size_t(5));  // the caller's max_length
    }

    // WordLevel: a word outside the vocabulary is unk_token; without one in the vocabulary, encoding
    // such a word is an error naming the word (the reference fails there too).
    void wordLevelWithoutUnkNamesTheWord() {
        const auto tok = dt::tok::Tokenizer::from_json(nlohmann::json::parse(
            R"({"model": {"type": "WordLevel", "vocab": {"hello": 0, "world": 1}, "unk_token": "<unk>"},
                "pre_tokenizer": {"type": "Whitespace"}})"), "tok.json");
        QCOMPARE(tok.encode("hello world", nullptr, false).ids, (std::vector<std::int64_t>{0, 1}));
        try {
            tok.encode("hello there", nullptr, false);
            QFAIL("encoded an unknown word without unk_token");
        } catch (const dt::Error& e) {
            QVERIFY2(QString::fromStdString(e.what()).contains("'there'") && QString::fromStdString(e.what()).contains("unk_token"), e.what());
        }
    }

    void invalidUtf8IsAnError() {
        auto tok = dt::tok::Tokenizer::from_file((dataDir() + "/tokenizers/bert-wordpiece-uncased/tokenizer.json").toStdString());
        QVERIFY_THROWS_EXCEPTION(dt::Error, tok.encode("abc\xff"));
        QCOMPARE(dt::tok::u32_to_utf8(dt::tok::utf8_to_u32("😀é中a")), std::string("😀é中a"));
    }
};

DT_REGISTER_TEST(TestTokenizers);
#include "test_tokenizers.moc"
