// The fuzz targets (tests/fuzz) replayed in the ordinary suite, without libFuzzer: every target's
// seed corpus and every saved finding (tests/fuzz/regressions/TARGET/*) must be accepted or refused
// with a dt::Error, never crash or escape with another exception. The seeds must mostly be accepted,
// so that a target whose harness broke (every input refused at the first check) fails here.
#include "test_registry.h"
#include "test_util.h"

#include "fuzz_targets.h"

#include "core/error.h"
#include "data/text_data.h"
#include "io/json_util.h"
#include "io/limits.h"
#include "io/safetensors.h"
#include "models/config.h"
#include "tokenizers/tokenizer.h"
#include "train/events.h"

#include <nlohmann/json.hpp>

#include <QTemporaryDir>
#include <cmath>
#include <sstream>

#include <QDir>
#include <QFile>
#include <QTest>

namespace {

int replay(const dt::fuzz::Target& t, const QByteArray& bytes, const QString& what) {
    try {
        return dt::fuzz::run_one(t, reinterpret_cast<const std::uint8_t*>(bytes.constData()), static_cast<std::size_t>(bytes.size()));
    } catch (const std::exception& e) {
        QTest::qFail(qPrintable(QStringLiteral("%1: %2 escaped with a non-dt::Error exception: %3").arg(t.name, what, e.what())), __FILE__, __LINE__);
    }
    return -1;
}

}  // namespace

class TestFuzzCorpus : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void seedsAreAcceptedOrRefusedCleanly_data() {
        QTest::addColumn<QString>("target");
        for (const auto& t : dt::fuzz::targets()) QTest::newRow(t.name) << QString::fromLatin1(t.name);
    }
    void seedsAreAcceptedOrRefusedCleanly() {
        QFETCH(QString, target);
        const dt::fuzz::Target* t = dt::fuzz::find_target(target.toStdString());
        QVERIFY(t);
        const auto seeds = t->seeds();
        QVERIFY2(!seeds.empty(), "no seed corpus");
        int accepted = 0;
        for (std::size_t i = 0; i < seeds.size(); ++i) {
            const int r = replay(*t, QByteArray::fromStdString(seeds[i]), QStringLiteral("seed %1").arg(i));
            if (QTest::currentTestFailed()) return;
            accepted += r == 0;
        }
        // Most seeds are valid inputs (a few are refused on purpose: a torn line, bitfit on T5).
        QVERIFY2(accepted * 3 >= static_cast<int>(seeds.size()) * 2,
                 qPrintable(QStringLiteral("only %1 of %2 seeds accepted").arg(accepted).arg(seeds.size())));
    }

    // Each finding of the fuzzers, kept as a file once fixed: refused with a message, or accepted.
    void findingsStayFixed() {
        const QDir root(QStringLiteral(DT_SOURCE_DIR "/tests/fuzz/regressions"));
        int n = 0;
        for (const QString& target : root.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
            const dt::fuzz::Target* t = dt::fuzz::find_target(target.toStdString());
            QVERIFY2(t, qPrintable("regressions/" + target + " names no fuzz target"));
            for (const QString& f : QDir(root.filePath(target)).entryList(QDir::Files)) {
                QFile file(root.filePath(target + "/" + f));
                QVERIFY(file.open(QIODevice::ReadOnly));
                replay(*t, file.readAll(), f);
                if (QTest::currentTestFailed()) return;
                ++n;
            }
        }
        QVERIFY2(n > 0, "no saved findings found");
    }

    // run_spec's first finding: a number beyond a double made nlohmann throw out_of_range, which
    // escaped as "internal error" instead of naming the file.
    void anOverflowingNumberIsInvalidJson() {
        try {
            dt::json::parse_strict("{\"lr\": 21e308}", "spec.json");
            QFAIL("accepted");
        } catch (const dt::Error& e) {
            const QString msg = QString::fromStdString(e.what());
            QVERIFY2(msg.startsWith("spec.json: invalid JSON") && msg.contains("number overflow"), qPrintable(msg));
        }
    }

    // events: a field of the wrong type ("event": 3, "skipped": 1) reads as missing and a line whose
    // step is not a number (or beyond int64) is skipped, never an exception (the run history read
    // lines with j.value(), which throws on a type mismatch, outside its try; and a step read as 0
    // looked like a resume that hid the curve before it).
    void eventLinesOfTheWrongTypeAreSkippedNotThrown() {
        dt::EventLine ev;
        const auto parse = [&](const std::string& s) { return dt::parse_event_line(s.data(), s.data() + s.size(), ev); };
        QVERIFY(!parse("{\"event\": 3}"));
        QVERIFY(!parse("{\"event\": \"step\", \"step\": 1"));  // torn
        QVERIFY(!parse("{\"event\": \"step\", \"step\": \"x\", \"loss\": 0.5}"));
        QVERIFY(!parse("{\"event\": \"eval\", \"step\": 1e300, \"accuracy\": 0.5}"));
        QVERIFY(!parse("{\"event\": \"eval\", \"accuracy\": 0.5}"));
        QVERIFY(parse("{\"event\": \"step\", \"step\": 4, \"loss\": 0.5, \"lr\": \"high\", \"skipped\": 1}"));
        QCOMPARE(ev.step.step, std::int64_t(4));
        QCOMPARE(ev.step.loss, 0.5);
        QVERIFY(std::isnan(ev.step.lr));
        QVERIFY(!ev.step.skipped);
        QVERIFY(parse("{\"event\": \"status\", \"status\": 7, \"step\": 12.0}"));
        QCOMPARE(ev.status.status, std::string());
        QCOMPARE(ev.status.step, std::int64_t(12));
    }
};

// The named limits of engine/io/limits.h (docs/limits.md): a file just over each that a test can
// make is refused with the limit's name, and one at the limit is taken.
class TestLimits : public QObject {
    Q_OBJECT

    static QString refusal(const std::function<void()>& f) {
        try {
            f();
        } catch (const dt::Error& e) {
            return QString::fromStdString(e.what());
        }
        return {};
    }

private Q_SLOTS:
    void jsonDepth() {
        const auto nested = [](std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
        QVERIFY(refusal([&] { dt::json::parse_strict(nested(dt::limits::kJsonDepth), "a.json"); }).isEmpty());
        const QString msg = refusal([&] { dt::json::parse_strict(nested(dt::limits::kJsonDepth + 1), "a.json"); });
        QVERIFY2(msg.startsWith("a.json: JSON nested deeper than 256 levels") && msg.contains("limits.json_depth = 256"), qPrintable(msg));
    }

    void lineBytes() {
        std::string line;
        std::istringstream ok(std::string(dt::limits::kLineBytes, 'x') + "\nnext");
        QVERIFY(dt::limits::getline_limited(ok, line, "t.jsonl", 1));
        QCOMPARE(line.size(), dt::limits::kLineBytes);
        QVERIFY(dt::limits::getline_limited(ok, line, "t.jsonl", 2));
        QCOMPARE(line, std::string("next"));
        QVERIFY(!dt::limits::getline_limited(ok, line, "t.jsonl", 3));
        std::istringstream over("first\n" + std::string(dt::limits::kLineBytes + 1, 'x'));
        QVERIFY(dt::limits::getline_limited(over, line, "t.jsonl", 1));
        const QString msg = refusal([&] { dt::limits::getline_limited(over, line, "t.jsonl", 2); });
        QVERIFY2(msg.startsWith("t.jsonl: line 2 is longer than 67108864 bytes") && msg.contains("limits.line_bytes"), qPrintable(msg));
        // A CSV quote left open gathers lines into one record: the record is what is bounded.
        const std::string half(dt::limits::kLineBytes / 2 + 1, 'y');
        std::istringstream csv("a,\"" + half + "\n" + half + "\n" + half + "\n");
        std::vector<std::string> fields;
        std::size_t lineno = 0;
        const QString q = refusal([&] { dt::read_record(csv, ',', true, fields, lineno); });
        QVERIFY2(q.contains("a quoted field runs over") && q.contains("limits.line_bytes"), qPrintable(q));
    }

    void tensorRank() {
        QTemporaryDir dir;
        const std::string path = (dir.path() + "/x.safetensors").toStdString();
        const auto write = [&](std::size_t rank) {
            nlohmann::json shape = nlohmann::json::array();
            for (std::size_t i = 0; i < rank; ++i) shape.push_back(1);
            std::string header = nlohmann::json{{"t", {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {0, 4}}}}}.dump();
            header.append((8 - header.size() % 8) % 8, ' ');
            std::string bytes(8, '\0');
            for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
            dttest::writeBytes(QString::fromStdString(path), QByteArray::fromStdString(bytes + header + std::string(4, '\0')));
        };
        write(dt::limits::kTensorRank);
        QCOMPARE(dt::st::File::open(path)->tensor("t").dim(), static_cast<std::int64_t>(dt::limits::kTensorRank));
        write(dt::limits::kTensorRank + 1);
        const QString msg = refusal([&] { dt::st::File::open(path); });
        QVERIFY2(msg.contains("'t'") && msg.contains("shape has 17 dimensions") && msg.contains("limits.tensor_rank"), qPrintable(msg));
    }

    void configSizes() {
        nlohmann::json cfg = nlohmann::json::parse(dt::json::read_text_file(DT_TEST_DATA_DIR "/hf/bert-seqcls/config.json"));
        cfg["max_position_embeddings"] = dt::limits::kConfigDimension;
        QVERIFY(refusal([&] { dt::ModelConfig::from_json(cfg, "config.json"); }).isEmpty());
        cfg["max_position_embeddings"] = dt::limits::kConfigDimension + 1;
        QString msg = refusal([&] { dt::ModelConfig::from_json(cfg, "config.json"); });
        QVERIFY2(msg.startsWith("config.json: field 'max_position_embeddings' is 16777217") && msg.contains("limits.config_dimension"), qPrintable(msg));
        cfg["max_position_embeddings"] = 512;
        cfg["num_hidden_layers"] = 1e300;
        msg = refusal([&] { dt::ModelConfig::from_json(cfg, "config.json"); });
        QVERIFY2(msg.contains("field 'num_hidden_layers'") && msg.contains("limits.config_layers"), qPrintable(msg));
    }

    // The Unigram lattice walks a trie: a vocabulary with one 4,000-character piece and a text of
    // 4,000 other characters cost 4,000 lookups, where a lookup per prefix length cost 8 million
    // string hashes per position (about 10^10 in all: minutes, a hang to the user).
    void unigramLatticeIsNotQuadraticInThePieceLength() {
        using J = nlohmann::json;
        const J vocab = J::array({J::array({"<unk>", 0.0}), J::array({std::string(4000, 'a'), -1.0}), J::array({"a", -2.0}), J::array({"b", -2.0}),
                                  J::array({"ab", -1.5})});
        const J tk = {{"model", {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", vocab}}}};
        const dt::tok::Tokenizer t = dt::tok::Tokenizer::from_json(tk, "tokenizer.json");
        const dt::tok::Encoding e = t.encode(std::string(4000, 'b'));
        QCOMPARE(e.ids.size(), std::size_t(4000));
        QCOMPARE(e.ids.front(), std::int64_t(3));
        // The long piece is still found, and the lattice still prefers the better split.
        QCOMPARE(t.encode(std::string(4000, 'a')).ids, std::vector<std::int64_t>({1}));
        QCOMPARE(t.encode("ab").ids, std::vector<std::int64_t>({4}));
        QCOMPARE(t.encode("ba").ids, (std::vector<std::int64_t>{3, 2}));
    }
};

DT_REGISTER_TEST(TestFuzzCorpus);
DT_REGISTER_TEST(TestLimits);
#include "test_fuzz_corpus.moc"
