// Text-to-text on the demo's T5 and the experiments built on it: span corruption (T5's pretraining
// objective) is invertible and seeded; a label-word task on an encoder-decoder becomes text-to-text
// and is scored by generation; the Playground's answers in each head's form; a run's examples
// rendered as the model sees them; a transfer matrix mixing classification and generative columns,
// each with its own metric; the power-of-scale experiment over two model sizes, resumed.
#include "test_registry.h"
#include "test_util.h"

#include "core/error.h"
#include "data/dataset.h"
#include "data/text_data.h"
#include "experiments/experiments.h"
#include "experiments/scale.h"
#include "generate/playground.h"
#include "io/json_util.h"
#include "models/loader.h"
#include "tokenizers/tokenizer.h"
#include "train/run_spec.h"
#include "train/trainer.h"

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace {

std::string demoDir() { return std::string(DT_SOURCE_DIR) + "/resources/demo"; }
std::string demoTask(const char* name) { return demoDir() + "/tasks/" + name + "/task.json"; }
std::string demoModel(const char* name) { return demoDir() + "/models/" + name; }

std::vector<std::int64_t> unpadded(const at::Tensor& row, const at::Tensor& keep) {
    std::vector<std::int64_t> out;
    for (std::int64_t c = 0; c < row.size(0); ++c)
        if (keep[c].item<bool>()) out.push_back(row[c].item<std::int64_t>());
    return out;
}

struct SingleThread {
    int before = at::get_num_threads();
    SingleThread() { at::set_num_threads(1); }
    ~SingleThread() { at::set_num_threads(before); }
};

}  // namespace

class TestTextToText : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void noiseFollowsTheExampleNotItsRow() {
        // Data parallelism splits each batch over the ranks: an example must get the same MLM mask
        // and the same corrupted spans in whichever row (or rank) it lands, so 2 ranks x batch b
        // train on what 1 rank x batch 2b does.
        dt::Dataset d;
        d.masked_lm = true;
        d.mask_token_id = 4;
        d.mlm_first_regular_id = 5;
        d.mlm_vocab_size = 60;
        d.mlm_probability = 0.3;
        d.sentinel_id = 4;
        d.eos_id = 3;
        for (int n : {9, 20, 14, 31}) {
            dt::Example ex;
            for (int i = 0; i < n; ++i) ex.ids.push_back(10 + (i * 7 + n) % 50);
            d.examples.push_back(ex);
        }
        auto masked = [&](const std::vector<std::size_t>& rows) {
            dt::Batch b = dt::collate(d, rows, 0);
            dt::mask_batch(b, d, 99, rows);
            return b;
        };
        auto row = [&](const dt::Batch& b, std::size_t r, std::size_t example, bool labels) {
            const auto n = static_cast<std::int64_t>(d.examples[example].ids.size());
            return (labels ? b.lm_labels : b.inputs.input_ids)[static_cast<std::int64_t>(r)].narrow(0, 0, n);
        };
        const dt::Batch all = masked({0, 1, 2, 3}), lo = masked({0, 1}), hi = masked({3, 2});  // another rank, another order
        QVERIFY(all.lm_labels.ne(-100).sum().item<std::int64_t>() > 5);
        for (bool labels : {false, true}) {
            QVERIFY(torch::equal(row(lo, 0, 0, labels), row(all, 0, 0, labels)));
            QVERIFY(torch::equal(row(lo, 1, 1, labels), row(all, 1, 1, labels)));
            QVERIFY(torch::equal(row(hi, 1, 2, labels), row(all, 2, 2, labels)));
            QVERIFY(torch::equal(row(hi, 0, 3, labels), row(all, 3, 3, labels)));
        }
        QVERIFY(!torch::equal(masked({0, 1}).lm_labels, [&] { dt::Batch b = dt::collate(d, {0, 1}, 0); dt::mask_batch(b, d, 98, {0, 1}); return b.lm_labels; }()));
        // Span corruption: the same inputs and targets for example 2 alone or among others.
        d.masked_lm = false;
        d.span_corruption = d.seq2seq = true;
        const dt::Batch s_all = dt::span_corruption_batch(d, {0, 1, 2, 3}, 0, 77), s_one = dt::span_corruption_batch(d, {2}, 0, 77);
        const auto len = s_one.inputs.attention_mask[0].sum().item<std::int64_t>();
        QVERIFY(torch::equal(s_all.inputs.input_ids[2].narrow(0, 0, len), s_one.inputs.input_ids[0].narrow(0, 0, len)));
        const auto tl = s_one.lm_labels[0].ne(-100).sum().item<std::int64_t>();
        QVERIFY(torch::equal(s_all.lm_labels[2].narrow(0, 0, tl), s_one.lm_labels[0].narrow(0, 0, tl)));
    }

    void spanCorruptionIsInvertibleAndSeeded() {
        dt::Dataset d;
        d.span_corruption = d.seq2seq = true;
        d.sentinel_id = 4;
        d.eos_id = 3;
        for (int n : {1, 2, 7, 20, 31}) {
            dt::Example ex;
            for (int i = 0; i < n; ++i) ex.ids.push_back(10 + (i * 7) % 50);
            d.examples.push_back(ex);
        }
        const std::vector<std::size_t> rows = {0, 1, 2, 3, 4};
        const dt::Batch b = dt::span_corruption_batch(d, rows, 0, 77);
        for (std::size_t r = 0; r < rows.size(); ++r) {
            const auto x = d.examples[r].ids;
            const auto in = unpadded(b.inputs.input_ids[static_cast<std::int64_t>(r)], b.inputs.attention_mask[static_cast<std::int64_t>(r)] == 1);
            const auto tg = unpadded(b.lm_labels[static_cast<std::int64_t>(r)], b.lm_labels[static_cast<std::int64_t>(r)] != -100);
            QCOMPARE(in.back(), std::int64_t{3});
            QCOMPARE(tg.back(), std::int64_t{3});
            QCOMPARE(tg.front(), std::int64_t{4});
            // Put each span back where its sentinel stands: the original text again.
            std::vector<std::int64_t> rebuilt;
            std::size_t t = 0;
            int spans = 0;
            for (std::size_t i = 0; i + 1 < in.size(); ++i) {
                if (in[i] != 4) {
                    rebuilt.push_back(in[i]);
                    continue;
                }
                ++spans;
                QCOMPARE(tg[t], std::int64_t{4});
                for (++t; t + 1 < tg.size() && tg[t] != 4; ++t) rebuilt.push_back(tg[t]);
            }
            QCOMPARE(rebuilt, x);
            const std::size_t hidden = tg.size() - 1 - static_cast<std::size_t>(spans);
            if (x.size() >= 2) {
                QVERIFY(hidden >= 1 && hidden < x.size());
                QCOMPARE(hidden, std::clamp<std::size_t>(static_cast<std::size_t>(std::llround(x.size() * 0.15)), 1, x.size() - 1));
            }
        }
        // The same key hides the same spans; another key others.
        QVERIFY(torch::equal(dt::span_corruption_batch(d, rows, 0, 77).inputs.input_ids, b.inputs.input_ids));
        QVERIFY(!torch::equal(dt::span_corruption_batch(d, rows, 0, 78).inputs.input_ids, b.inputs.input_ids));
    }

    void textToTextReadsCsvTsvAndTemplates() {
        QTemporaryDir tmp;
        const auto tk = dt::tok::Tokenizer::from_file(demoModel("synth-t5-small") + "/tokenizer.json");
        dttest::writeBytes(tmp.filePath("d.csv"), "question,answer\n\"the food was good , really\",good\nthe food was bad .,bad\n");
        dt::TextTaskOptions o;
        o.template_text = "{input} overall it was [MASK] .";
        auto d = dt::read_seq2seq_task(tmp.filePath("d.csv").toStdString(), o, tk, nullptr, "question", "answer");
        QCOMPARE(d.size(), std::size_t(2));
        QCOMPARE(d.examples[0].ids, tk.encode("the food was good , really overall it was [MASK] .").ids);
        QCOMPARE(d.examples[1].target_ids, tk.encode("bad").ids);
        // TSV without a header: columns by number.
        dttest::writeBytes(tmp.filePath("d.tsv"), "x\tthe music was good .\tgood\n");
        dt::TextTaskOptions t;
        t.header = false;
        d = dt::read_seq2seq_task(tmp.filePath("d.tsv").toStdString(), t, tk, nullptr, "1", "2");
        QCOMPARE(d.examples[0].ids, tk.encode("the music was good .").ids);
        // A template without {input}, or a missing column, is refused naming it.
        o.template_text = "summarize";
        try {
            dt::read_seq2seq_task(tmp.filePath("d.csv").toStdString(), o, tk, nullptr, "question", "answer");
            QFAIL("accepted a template without {input}");
        } catch (const dt::Error& e) {
            QVERIFY(std::string(e.what()).find("task.template") != std::string::npos);
        }
        // A causal LM's prompt/response from CSV through the same template: the loss on the response only.
        o.template_text = "{input} overall it was";
        dttest::writeBytes(tmp.filePath("c.csv"), "prompt,response\nthe food was good .,good\n");
        const auto c = dt::read_causal_task(tmp.filePath("c.csv").toStdString(), o, tk, 3, nullptr, "prompt", "response");
        const auto p = tk.encode("the food was good . overall it was").ids;
        QCOMPARE(std::vector<std::int64_t>(c.examples[0].ids.begin(), c.examples[0].ids.begin() + static_cast<std::ptrdiff_t>(p.size())), p);
        QCOMPARE(c.examples[0].lm_labels[p.size() - 1], std::int64_t{-100});
        QCOMPARE(c.examples[0].lm_labels[p.size()], tk.encode("good", nullptr, false).ids[0]);
        QCOMPARE(c.examples[0].lm_labels.back(), std::int64_t{3});
        o.template_text.clear();
        try {
            dt::read_seq2seq_task(tmp.filePath("d.csv").toStdString(), o, tk, nullptr, "input", "answer");
            QFAIL("accepted a missing column");
        } catch (const dt::Error& e) {
            QVERIFY(std::string(e.what()).find("no column 'input'") != std::string::npos);
        }
    }

    void labelWordTaskOnT5IsScoredByGeneration() {
        SingleThread one;
        nlohmann::json j = {{"model", demoModel("synth-t5-small")},
                            {"task", demoTask("reviews")},
                            {"delta", {{"method", "lora"}, {"r", 8}}},
                            {"training", {{"max_steps", 150}, {"batch_size", 16}, {"lr", 0.01}, {"seed", 0}}}};
        auto p = dt::prepare_run(dt::RunSpec::from_json(j, "test", ""));
        QVERIFY(p.train.seq2seq);
        QCOMPARE(p.valid.target_words, (std::vector<std::string>{"bad", "good"}));
        QVERIFY(p.train.label_word_ids.empty());
        // The target is the label's word and EOS, as T5 casts classification.
        const auto tk = dt::tok::Tokenizer::from_file(demoModel("synth-t5-small") + "/tokenizer.json");
        const auto& ex = p.valid.examples.front();
        QCOMPARE(ex.target_ids, tk.encode(p.valid.target_words[static_cast<std::size_t>(ex.label)]).ids);
        dt::Trainer t(*p.model.model, p.train, nullptr, p.spec.training);
        const auto before = t.evaluate(p.valid);
        QVERIFY(before.count("accuracy") && before.count("exact_match") && before.count("f1"));
        t.run();
        const auto after = t.evaluate(p.valid);
        std::printf("reviews on synth-t5-small by generation: accuracy %.3f -> %.3f\n", before.at("accuracy"), after.at("accuracy"));
        QVERIFY2(after.at("accuracy") >= 0.8, qPrintable(QString::number(after.at("accuracy"))));
        QVERIFY(after.at("accuracy") > before.at("accuracy") + 0.2);
        // Accuracy counts a generated word that is the gold label's word; exact match the same here.
        QVERIFY(std::abs(after.at("accuracy") - after.at("exact_match")) < 1e-9);
        // Rank classification (the likelier label word under the decoder) is reported too.
        QVERIFY(before.count("rank_accuracy") && after.at("rank_accuracy") >= 0.8);
    }

    void playgroundAnswersInEachHeadsForm() {
        const auto tk = dt::tok::Tokenizer::from_file(demoModel("synth-bert-small") + "/tokenizer.json");
        auto mlm = dt::load_model(demoModel("synth-bert-small")).model;
        dt::PlaygroundRequest rq;
        rq.input = "the food was good . overall it was [MASK] .";
        auto a = dt::playground_answer(*mlm, tk, rq);
        QCOMPARE(a.kind, std::string("fill-mask"));
        QCOMPARE(a.scores.size(), std::size_t(5));
        double sum = 0;
        for (std::size_t i = 0; i < a.scores.size(); ++i) {
            sum += a.scores[i].second;
            if (i) QVERIFY(a.scores[i - 1].second >= a.scores[i].second);
        }
        QVERIFY(sum <= 1.0 + 1e-6 && sum > 0);
        QCOMPARE(a.text, a.scores.front().first);
        // The label words of a label-word task: their probabilities, summing to one.
        rq.labels = {"negative", "positive"};
        rq.label_words = {{"negative", "bad"}, {"positive", "good"}};
        a = dt::playground_answer(*mlm, tk, rq);
        QCOMPARE(a.kind, std::string("labels"));
        QCOMPARE(a.scores.size(), std::size_t(2));
        QVERIFY(std::abs(a.scores[0].second + a.scores[1].second - 1.0) < 1e-5);
        rq.input = "no mask here";
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::playground_answer(*mlm, tk, rq));
        rq.input = "  ";
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::playground_answer(*mlm, tk, rq));
        // A classification head: its labels' probabilities.
        dt::LoadOptions lo;
        lo.architecture = "BertForSequenceClassification";
        lo.num_labels = 3;
        auto cls = dt::load_model(demoModel("synth-bert-small"), lo).model;
        dt::PlaygroundRequest c;
        c.input = "the food was good .";
        c.labels = {"a", "b", "c"};
        a = dt::playground_answer(*cls, tk, c);
        QCOMPARE(a.kind, std::string("labels"));
        QCOMPARE(a.scores.size(), std::size_t(3));
        // T5 generates, streaming what it has so far; the text is what generate() decodes to.
        auto t5 = dt::load_model(demoModel("synth-t5-small")).model;
        const auto t5tk = dt::tok::Tokenizer::from_file(demoModel("synth-t5-small") + "/tokenizer.json");
        dt::PlaygroundRequest g;
        g.input = "the food was [MASK] . overall it was good .";
        g.generation = dt::GenerationOptions::for_model(t5->config(), demoModel("synth-t5-small"));
        g.generation.max_new_tokens = 6;
        std::vector<std::string> streamed;
        a = dt::playground_answer(*t5, t5tk, g, [&](const std::string& s) {
            streamed.push_back(s);
            return true;
        });
        QCOMPARE(a.kind, std::string("generation"));
        QVERIFY(!streamed.empty());
        QCOMPARE(streamed.back(), a.text);
        const auto ids = torch::tensor(t5tk.encode(g.input).ids, torch::kLong).unsqueeze(0);
        const auto out = dt::generate(*t5, ids, {}, g.generation);
        std::vector<std::int64_t> fresh(out[0].data_ptr<std::int64_t>() + 1, out[0].data_ptr<std::int64_t>() + out.size(1));
        QCOMPARE(a.text, t5tk.decode(fresh));
        // Stopping after the first token ends the stream there.
        int calls = 0;
        dt::playground_answer(*t5, t5tk, g, [&](const std::string&) { return ++calls < 1; });
        QCOMPARE(calls, 1);
    }

    void taskExamplesAreRenderedAsTheModelSeesThem() {
        const auto reviews = dt::RunSpec::from_json({{"model", demoModel("synth-bert-small")}, {"task", demoTask("reviews")}, {"delta", "lora"}}, "t", "");
        const auto ex = dt::task_examples(reviews, 3);
        QCOMPARE(ex.size(), std::size_t(3));
        std::ifstream f(reviews.validation_file);
        std::string first;
        std::getline(f, first);
        const auto j = nlohmann::json::parse(first);
        QCOMPARE(ex[0], j["text"].get<std::string>() + " overall it was [MASK] .");
        const auto answer = dt::RunSpec::from_json({{"model", demoModel("synth-t5-small")}, {"task", demoTask("answer")}, {"delta", "lora"}}, "t", "");
        const auto a = dt::task_examples(answer, 2);
        std::ifstream g(answer.validation_file);
        std::getline(g, first);
        QCOMPARE(a.at(0), nlohmann::json::parse(first)["input"].get<std::string>());
    }

    void transferMixesGenerativeAndClassificationColumns() {
        SingleThread one;
        QTemporaryDir tmp;
        const nlohmann::json j = {{"model", demoModel("synth-t5-small")},
                                  {"tasks", {demoTask("reviews"), demoTask("summary")}},
                                  {"delta", {{"method", "lora"}, {"r", 4}}},
                                  {"training", {{"max_steps", 20}, {"batch_size", 16}, {"lr", 0.01}}},
                                  {"max_eval_examples", 24},
                                  {"output_dir", tmp.path().toStdString() + "/t"}};
        const auto m = dt::run_transfer(dt::TransferSpec::from_json(j, "test", ""), nullptr, nullptr);
        QCOMPARE(m.metric, std::string("own"));
        QCOMPARE(m.col_metrics, (std::vector<std::string>{"accuracy", "exact_match"}));
        for (std::size_t r = 0; r < m.rows.size(); ++r)
            for (std::size_t c = 0; c < m.cols.size(); ++c) QVERIFY2(m.has(r, c), qPrintable(QString::fromStdString(m.rows[r] + " x " + m.cols[c])));
        // Each cell remembers its column's metric, and the saved matrix its columns'.
        QFile cells(tmp.filePath("t/cells.jsonl"));
        QVERIFY(cells.open(QIODevice::ReadOnly));
        int seen = 0;
        for (const QByteArray& line : cells.readAll().split('\n')) {
            if (line.isEmpty()) continue;
            const auto c = nlohmann::json::parse(line.toStdString());
            QCOMPARE(c["metric"].get<std::string>(), std::string(c["col"] == "summary" ? "exact_match" : "accuracy"));
            ++seen;
        }
        QCOMPARE(seen, 6);
        const auto saved = dt::ResultMatrix::from_json(dt::json::load_file(tmp.filePath("t/matrix.json").toStdString()), "matrix.json");
        QCOMPARE(saved.col_metrics, m.col_metrics);
        // metric "rank_accuracy" scores the classification column by ranking its label words; the
        // generative column keeps exact match. The other cells are computed again, the deltas kept.
        nlohmann::json ranked = j;
        ranked["metric"] = "rank_accuracy";
        const auto r = dt::run_transfer(dt::TransferSpec::from_json(ranked, "test", ""), nullptr, nullptr);
        QCOMPARE(r.col_metrics, (std::vector<std::string>{"rank_accuracy", "exact_match"}));
        QCOMPARE(r.at(2, 1), m.at(2, 1));  // summary's own cell: kept
        QVERIFY(r.at(1, 0) >= 0.5);        // reviews' delta ranks reviews' label words
    }

    void scaleRunsEverySizeAndResumes() {
        SingleThread one;
        QTemporaryDir tmp;
        const nlohmann::json j = {{"models", {demoModel("synth-bert-small"), {{"name", "base"}, {"model", demoModel("synth-bert-base")}}}},
                                  {"task", demoTask("reviews")},
                                  {"methods", {"lora", "bitfit"}},
                                  {"training", {{"max_steps", 20}, {"batch_size", 16}, {"lr", 0.01}, {"eval_every", 10}}},
                                  {"output_dir", tmp.path().toStdString() + "/s"}};
        const auto spec = dt::ScaleSpec::from_json(j, "test", "");
        const auto r = dt::run_scale(spec);
        QCOMPARE(r.sizes.size(), std::size_t(2));
        QCOMPARE(r.sizes[0].name, std::string("synth-bert-small"));
        QCOMPARE(r.sizes[1].name, std::string("base"));
        QVERIFY(r.sizes[0].parameters > 0 && r.sizes[1].parameters > 2 * r.sizes[0].parameters);
        QCOMPARE(r.metric, std::string("accuracy"));
        for (const auto& s : r.sizes) {
            QCOMPARE(s.methods.methods.size(), std::size_t(2));
            for (const auto& m : s.methods.methods) {
                QCOMPARE(m.curve.size(), std::size_t(2));
                QCOMPARE(m.curve.back().step, std::int64_t{20});
                QVERIFY(std::isfinite(m.value));
            }
        }
        QFile csv(tmp.filePath("s/scale.csv"));
        QVERIFY(csv.open(QIODevice::ReadOnly));
        QCOMPARE(csv.readAll().count('\n'), 5);
        QFile curves(tmp.filePath("s/scale_curves.csv"));
        QVERIFY(curves.open(QIODevice::ReadOnly));
        QCOMPARE(curves.readAll().count('\n'), 1 + 2 * 2 * 2);
        // Run again: every pair is kept, nothing trains.
        const auto events = tmp.filePath("s/base/runs/lora/events.jsonl");
        const auto mtime = QFileInfo(events).lastModified();
        const auto again = dt::run_scale(spec);
        QCOMPARE(QFileInfo(events).lastModified(), mtime);
        QCOMPARE(again.sizes[1].methods.methods[0].value, r.sizes[1].methods.methods[0].value);
        // Specs with one model, or two of the same name, are refused naming the field.
        nlohmann::json one_model = j;
        one_model["models"] = {demoModel("synth-bert-small")};
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::ScaleSpec::from_json(one_model, "s.json", ""));
        nlohmann::json twice = j;
        twice["models"] = {demoModel("synth-bert-small"), demoModel("synth-bert-small")};
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::ScaleSpec::from_json(twice, "s.json", ""));
    }
};

DT_REGISTER_TEST(TestTextToText);
#include "test_text_to_text.moc"
