// Text task files: CSV quoting, JSONL/CSV/TSV with field mappings, malformed lines (error with file
// and line, or skipped and counted), truncation, seeded splits, regression targets.
#include "test_registry.h"
#include "test_util.h"

#include "core/error.h"
#include "data/inspect_data.h"
#include "data/text_data.h"
#include "tokenizers/tokenizer.h"

#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

using namespace dttest;

namespace {
dt::tok::Tokenizer bert() {
    return dt::tok::Tokenizer::from_file((dataDir() + "/tokenizers/bert-wordpiece-uncased/tokenizer.json").toStdString());
}
}  // namespace

class TestTextData : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void csvRecords() {
        std::istringstream in("a,\"b,c\",\"d \"\"q\"\" e\"\n\"multi\nline\",x\r\nplain\n");
        std::vector<std::string> f;
        std::size_t line = 0;
        QVERIFY(dt::read_record(in, ',', true, f, line));
        QCOMPARE(f, (std::vector<std::string>{"a", "b,c", "d \"q\" e"}));
        QVERIFY(dt::read_record(in, ',', true, f, line));
        QCOMPARE(f, (std::vector<std::string>{"multi\nline", "x"}));
        QCOMPARE(line, std::size_t(3));
        QVERIFY(dt::read_record(in, ',', true, f, line));
        QCOMPARE(f, std::vector<std::string>{"plain"});
        QVERIFY(!dt::read_record(in, ',', true, f, line));
    }

    void readsEveryFormat() {
        const auto tk = bert();
        QTemporaryDir dir;
        writeBytes(dir.filePath("d.jsonl"), "{\"q\": \"Is it good?\", \"a\": \"Yes, very.\", \"y\": \"pos\"}\n{\"q\": \"Bad?\", \"a\": \"No\", \"y\": \"neg\"}\n");
        writeBytes(dir.filePath("d.csv"), "question,answer,y\n\"Is it good?\",\"Yes, very.\",pos\nBad?,No,neg\n");
        writeBytes(dir.filePath("d.tsv"), "question\tanswer\ty\nIs it good?\tYes, very.\tpos\nBad?\tNo\tneg\n");
        for (const char* file : {"d.jsonl", "d.csv", "d.tsv"}) {
            dt::TextTaskOptions o;
            const bool json = QByteArray(file).endsWith("jsonl");
            o.text_field = json ? "q" : "question";
            o.pair_field = json ? "a" : "answer";
            o.label_field = "y";
            auto d = dt::read_text_task(dir.filePath(file).toStdString(), o, tk, {}, true);
            QCOMPARE(d.size(), std::size_t(2));
            QCOMPARE(d.labels, (std::vector<std::string>{"pos", "neg"}));
            const std::string q = "Is it good?", a = "Yes, very.";
            const auto e = tk.encode(q, &a, true);
            QCOMPARE(d.examples[0].ids, e.ids);
            QCOMPARE(d.examples[0].type_ids, e.type_ids);
            QCOMPARE(d.examples[1].label, 1);
        }
    }

    void malformedLines_data() {
        QTest::addColumn<QByteArray>("content");
        QTest::addColumn<QString>("needle");
        const QByteArray good = "{\"text\": \"fine\", \"label\": \"a\"}\n";
        QTest::newRow("bad json") << good + "{\"text\": \"x\", \n" << "invalid JSON";
        QTest::newRow("missing field") << good + "{\"txt\": \"x\", \"label\": \"a\"}\n" << "missing field 'text'";
        QTest::newRow("unknown label") << good + "{\"text\": \"x\", \"label\": \"zzz\"}\n" << "unknown label 'zzz'";
        QTest::newRow("empty text") << good + "{\"text\": \"  \", \"label\": \"a\"}\n" << "empty text";
        QTest::newRow("invalid utf8") << good + "{\"text\": \"ab\xff\", \"label\": \"a\"}\n" << "invalid";
        QTest::newRow("label type") << good + "{\"text\": \"x\", \"label\": [1]}\n" << "must be a string or a number";
    }
    void malformedLines() {
        QFETCH(QByteArray, content);
        QFETCH(QString, needle);
        QTemporaryDir dir;
        const QString p = dir.filePath("t.jsonl");
        writeBytes(p, content + "{\"text\": \"also fine\", \"label\": \"b\"}\n");
        const auto tk = bert();
        dt::TextTaskOptions o;
        try {
            dt::read_text_task(p.toStdString(), o, tk, {"a", "b"}, false);
            QFAIL("malformed line accepted");
        } catch (const dt::Error& e) {
            const QString msg = QString::fromStdString(e.what());
            QVERIFY2(msg.contains(p + ":2") && msg.contains(needle, Qt::CaseInsensitive) && msg.contains("skip_bad_lines"), qPrintable(msg));
        }
        o.skip_bad_lines = true;
        dt::ReadStats st;
        auto d = dt::read_text_task(p.toStdString(), o, tk, {"a", "b"}, false, &st);
        QCOMPARE(st.skipped, std::size_t(1));
        QCOMPARE(st.read, std::size_t(2));
        QCOMPARE(d.size(), std::size_t(2));
        QVERIFY(QString::fromStdString(st.first_problems[0]).contains(":2: "));
    }

    void templatesKeepTheMask() {
        const auto tk = bert();
        QTemporaryDir dir;
        writeBytes(dir.filePath("t.jsonl"), "{\"text\": \"a long sentence about the quick brown fox that jumps over the lazy dog again and again\", \"label\": \"pos\"}\n"
                                             "{\"text\": \"short\", \"label\": \"neg\"}\n");
        dt::TextTaskOptions o;
        o.template_text = "{text} it was [MASK].";
        o.label_words = {{"pos", "it"}, {"neg", "was"}};
        o.max_length = 12;
        auto d = dt::read_text_task(dir.filePath("t.jsonl").toStdString(), o, tk, {}, true);
        const auto mask = tk.token_to_id("[MASK]");
        for (const auto& ex : d.examples) {
            QVERIFY(ex.ids.size() <= 12);
            QVERIFY(ex.mask_pos > 0);
            QCOMPARE(ex.ids[static_cast<std::size_t>(ex.mask_pos)], mask);
            QCOMPARE(ex.ids.back(), tk.token_to_id("[SEP]"));
        }
        QCOMPARE(d.label_word_ids, (std::vector<std::int64_t>{tk.token_to_id("it"), tk.token_to_id("was")}));
        o.template_text = "{text} without a mask";
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::read_text_task(dir.filePath("t.jsonl").toStdString(), o, tk, {}, true));
        // A label word outside the vocabulary encodes to [UNK], one token: refused, naming the word and
        // suggesting known words.
        const auto demo = dt::tok::Tokenizer::from_file(std::string(DT_SOURCE_DIR) + "/resources/demo/tokenizer.json");
        try {
            dt::label_word_ids(demo, {"negative", "positive"}, {{"negative", "negative"}, {"positive", "good"}});
            QFAIL("accepted a label word the tokenizer does not know");
        } catch (const dt::Error& e) {
            const std::string msg = e.what();
            QVERIFY2(msg.find("'negative'") != std::string::npos && msg.find("vocabulary") != std::string::npos && msg.find("task.label_words") != std::string::npos &&
                         msg.find("e.g.") != std::string::npos,
                     msg.c_str());
        }
        QCOMPARE(dt::label_word_ids(demo, {"negative", "positive"}, {{"negative", "bad"}, {"positive", "good"}}).size(), std::size_t(2));
    }

    void truncationSplitAndRegression() {
        const auto tk = bert();
        QTemporaryDir dir;
        QByteArray rows = "text\tscore\n";
        for (int i = 0; i < 40; ++i) rows += "the quick brown fox jumps over the lazy dog number " + QByteArray::number(i) + "\t" + QByteArray::number(i * 0.5) + "\n";
        writeBytes(dir.filePath("r.tsv"), rows);
        dt::TextTaskOptions o;
        o.label_field = "score";
        o.regression = true;
        o.max_length = 8;
        auto d = dt::read_text_task(dir.filePath("r.tsv").toStdString(), o, tk, {}, true);
        QVERIFY(d.regression);
        QCOMPARE(d.examples[3].target, 1.5);
        QCOMPARE(d.examples[0].ids.size(), std::size_t(8));
        QCOMPARE(d.examples[0].ids.back(), tk.token_to_id("[SEP]"));
        auto [train, valid] = dt::split_dataset(d, 0.25, 7);
        QCOMPARE(valid.size(), std::size_t(10));
        QCOMPARE(train.size(), std::size_t(30));
        auto again = dt::split_dataset(d, 0.25, 7);
        std::set<double> v1, v2;
        for (const auto& e : valid.examples) v1.insert(e.target);
        for (const auto& e : again.second.examples) v2.insert(e.target);
        QCOMPARE(v1, v2);
        for (const auto& e : train.examples) QVERIFY(!v1.count(e.target));
        o.regression = true;
        writeBytes(dir.filePath("bad.tsv"), "text\tscore\nhello\tnot-a-number\n");
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::read_text_task(dir.filePath("bad.tsv").toStdString(), o, tk, {}, true));
    }

    // The dataset inspector reads the demo's label-word task as training does: each row scores
    // exactly its mask, the labels add up, truncation is counted exactly, bad lines are collected.
    void inspectorShowsWhatTrainingReads() {
        const std::string demo = std::string(DT_SOURCE_DIR) + "/resources/demo";
        const nlohmann::json spec = {{"model", demo + "/models/synth-bert-small"}, {"task", demo + "/tasks/reviews/task.json"}, {"delta", "lora"}};
        const dt::DataReport r = dt::inspect_task_data(dt::RunSpec::from_json(spec, "test", "."), 10);
        QVERIFY(r.examples > 100);
        QCOMPARE(r.rows.size(), std::size_t(10));
        QCOMPARE(r.lengths.size(), r.examples);
        std::size_t total = 0;
        for (const auto& [name, n] : r.label_counts) total += n;
        QCOMPARE(total, r.examples);
        QCOMPARE(r.label_counts.size(), std::size_t(2));
        for (const auto& x : r.rows) {
            QCOMPARE(x.tokens.size(), x.scored.size());
            QCOMPARE(std::count(x.scored.begin(), x.scored.end(), true), std::ptrdiff_t(1));
            const auto at = static_cast<std::size_t>(std::find(x.scored.begin(), x.scored.end(), true) - x.scored.begin());
            QCOMPARE(x.tokens[at], std::string("[MASK]"));
            QVERIFY(x.label == "negative" || x.label == "positive");
            QVERIFY(x.text.find("[MASK]") != std::string::npos);
        }
        QVERIFY(r.scoring.find("label words") != std::string::npos);
        QCOMPARE(r.truncated, std::size_t(0));

        // max_length 8 through the spec: the examples longer than 8 tokens are the ones counted.
        nlohmann::json shortSpec = spec;
        shortSpec["max_length"] = 8;
        const dt::DataReport cut = dt::inspect_task_data(dt::RunSpec::from_json(shortSpec, "test", "."), 5);
        std::size_t longer = 0;
        for (auto n : r.lengths) longer += n > 8;
        QVERIFY(longer > 0);
        QCOMPARE(cut.truncated, longer);
        QCOMPARE(cut.lengths, r.lengths);  // lengths before truncation
        for (const auto& x : cut.rows) QVERIFY(x.tokens.size() <= 8 && x.truncated == (x.tokens.size() == 8 && x.truncated));
        std::size_t width = 0;
        const auto h = dt::length_histogram(r.lengths, 8, 4, &width);
        std::size_t binned = 0;
        for (auto n : h) binned += n;
        QCOMPARE(binned, r.examples);
        QVERIFY(width >= 1);

        // A CSV with an empty text: that line collected, the rest read (a new label is a new class).
        QTemporaryDir dir;
        dttest::writeBytes(dir.filePath("d.csv"), "text,label\nthe butri was trarama .,negative\n,positive\nthe butri was rigagre .,maybe\n");
        nlohmann::json task = {{"train", dir.filePath("d.csv").toStdString()}, {"labels", {"negative", "positive"}}};
        const nlohmann::json csvSpec = {{"model", demo + "/models/synth-bert-small"}, {"task", task}, {"delta", "lora"}};
        const dt::DataReport bad = dt::inspect_task_data(dt::RunSpec::from_json(csvSpec, "test", "."));
        QCOMPARE(bad.examples, std::size_t(2));
        QCOMPARE(bad.skipped, std::size_t(1));
        QCOMPARE(bad.problems.size(), std::size_t(1));
        QCOMPARE(bad.label_counts.size(), std::size_t(3));
        QVERIFY2(bad.problems[0].find("d.csv:3") != std::string::npos, bad.problems[0].c_str());
        QVERIFY(bad.rows[0].scored[0]);  // a classification head reads the first token
        QVERIFY(bad.scoring.find("[CLS]") != std::string::npos);
    }
};

DT_REGISTER_TEST(TestTextData);
#include "test_text_data.moc"
