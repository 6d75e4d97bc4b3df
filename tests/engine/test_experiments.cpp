// Experiments: a 3x3 transfer matrix on tiny demo tasks (engine result, matrix.json and matrix.csv
// agree; a stopped experiment resumes with its finished cells), the layer ablation (all layers
// removed = the base model), the Pareto front on hand-made points, and the demo generator
// (deterministic, its tokenizer loads, its tasks read).
#include "test_registry.h"
#include "test_util.h"

#include "core/error.h"
#include "demo/synth_language.h"
#include "experiments/experiments.h"
#include "io/json_util.h"
#include "models/config.h"
#include "models/loader.h"
#include "tokenizers/tokenizer.h"
#include "train/run_spec.h"

#include <nlohmann/json.hpp>

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <cmath>
#include <set>
#include <fstream>
#include <sstream>

using namespace dttest;

namespace {

// Demo data (no corpus) and a small random BERT with the demo tokenizer, in `dir`.
std::string makeDemo(const QString& dir, std::size_t n_train = 64, std::size_t n_valid = 32) {
    const std::string d = dir.toStdString();
    dt::demo::write_demo_data(d + "/demo", 7, 0, n_train, n_valid);
    const auto tk = dt::tok::Tokenizer::from_file(d + "/demo/tokenizer.json");
    nlohmann::json cfg = {{"architectures", {"BertForMaskedLM"}}, {"model_type", "bert"}, {"vocab_size", tk.vocab_size()},
                          {"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"intermediate_size", 64},
                          {"max_position_embeddings", 128}, {"type_vocab_size", 2}};
    auto model = dt::create_model(dt::ModelConfig::from_json(cfg, "test"), 3);
    dt::save_model(*model, d + "/model");
    QFile::copy(QString::fromStdString(d + "/demo/tokenizer.json"), QString::fromStdString(d + "/model/tokenizer.json"));
    return d;
}

std::string readAll(const std::string& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

class StopAfter : public dt::ExperimentObserver {
public:
    StopAfter(int n, dt::TrainControl* c) : n_(n), c_(c) {}
    void on_cell(std::size_t, std::size_t, double, const std::string&) override {
        if (++seen == n_) c_->cancel = true;
    }
    int seen = 0;

private:
    int n_;
    dt::TrainControl* c_;
};

}  // namespace

class TestExperiments : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void demoDataIsDeterministicAndReadable() {
        QTemporaryDir a, b;
        dt::demo::write_demo_data(a.path().toStdString(), 5, 200, 20, 10);
        dt::demo::write_demo_data(b.path().toStdString(), 5, 200, 20, 10);
        for (const char* f : {"/tokenizer.json", "/corpus.txt", "/tasks/reviews/train.jsonl", "/tasks/synonyms/validation.jsonl"})
            QCOMPARE(readAll(a.path().toStdString() + f), readAll(b.path().toStdString() + f));
        const auto tk = dt::tok::Tokenizer::from_file(a.path().toStdString() + "/tokenizer.json");
        // Every corpus word is in the vocabulary (no [UNK]); plurals and past tenses are word + suffix.
        std::ifstream corpus(a.path().toStdString() + "/corpus.txt");
        std::string line;
        int lines = 0;
        while (std::getline(corpus, line)) {
            ++lines;
            for (auto id : tk.encode(line, nullptr, false).ids) QVERIFY2(id != tk.token_to_id("[UNK]"), line.c_str());
        }
        QCOMPARE(lines, 200);
        // Nine tasks in four categories, each readable through the run spec with its label words.
        const char* names[] = {"reviews", "opinions", "negation", "news", "questions", "attributes", "quantifiers", "synonyms", "question-pairs"};
        std::set<std::string> categories;
        for (const char* n : names) {
            const std::string file = a.path().toStdString() + "/tasks/" + n + "/task.json";
            nlohmann::json spec = {{"model", "tiny-bert"}, {"task", file}, {"delta", "lora"}};
            auto rs = dt::RunSpec::from_json(spec, "test", "");
            rs.tokenizer_file = a.path().toStdString() + "/tokenizer.json";
            const auto data = dt::load_task_data(rs);
            QCOMPARE(data.train.size(), std::size_t(20));
            QCOMPARE(data.valid.size(), std::size_t(10));
            QVERIFY(!data.train.label_word_ids.empty());
            QCOMPARE(rs.task_name, std::string(n));
            categories.insert(rs.task_category);
        }
        QCOMPARE(categories.size(), std::size_t(4));
    }

    void transferMatrixResumesAndAgreesWithFiles() {
        QTemporaryDir tmp;
        const std::string d = makeDemo(tmp.path());
        nlohmann::json j = {{"model", d + "/model"},
                            {"tasks", {d + "/demo/tasks/reviews/task.json", d + "/demo/tasks/opinions/task.json", d + "/demo/tasks/news/task.json"}},
                            {"delta", {{"method", "lora"}, {"r", 4}, {"target_modules", {"query", "value"}}}},
                            {"training", {{"max_steps", 6}, {"batch_size", 8}, {"lr", 0.01}}},
                            {"output_dir", d + "/exp"}};
        const auto spec = dt::TransferSpec::from_json(j, "test", "");
        // Stop after three cells; the deltas are trained and three cells are on disk.
        dt::TrainControl control;
        StopAfter stop(3, &control);
        auto partial = dt::run_transfer(spec, &stop, &control);
        int filled = 0;
        for (std::size_t r = 0; r < partial.rows.size(); ++r)
            for (std::size_t c = 0; c < partial.cols.size(); ++c) filled += partial.has(r, c);
        QCOMPARE(filled, 3);
        for (const char* t : {"reviews", "opinions", "news"})
            QVERIFY(QFile::exists(QString::fromStdString(d + "/exp/deltas/" + t + "/checkpoints/final/trainable.safetensors")));
        // Resume: the three cells are kept (not recomputed), the rest are filled in.
        StopAfter count(1000, &control);
        control.cancel = false;
        const auto m = dt::run_transfer(spec, &count, &control);
        QCOMPARE(m.rows.size(), std::size_t(4));
        QCOMPARE(m.cols.size(), std::size_t(3));
        QCOMPARE(m.rows[0], std::string("(no delta)"));
        QCOMPARE(count.seen, 12);  // 3 replayed from cells.jsonl + 9 computed
        const std::string cells = readAll(d + "/exp/cells.jsonl");
        QCOMPARE(std::count(cells.begin(), cells.end(), '\n'), 12L);
        for (std::size_t r = 0; r < 4; ++r)
            for (std::size_t c = 0; c < 3; ++c) {
                QVERIFY(m.has(r, c));
                QVERIFY(m.at(r, c) >= 0 && m.at(r, c) <= 1);
            }
        // The first three cells equal what the stopped run computed.
        for (std::size_t c = 0; c < 3; ++c) QCOMPARE(m.at(0, c), partial.at(0, c));
        // Own-task deltas are the reference of the relative view.
        const auto rel = m.relative();
        for (std::size_t c = 0; c < 3; ++c) QCOMPARE(rel[c + 1][c], 1.0);
        // matrix.json and matrix.csv hold the same numbers.
        const auto file = dt::ResultMatrix::from_json(dt::json::load_file(d + "/exp/matrix.json"), "matrix.json");
        std::istringstream csv(readAll(d + "/exp/matrix.csv"));
        std::string line;
        std::getline(csv, line);
        QCOMPARE(line, std::string("row,category,reviews,opinions,news"));
        for (std::size_t r = 0; r < 4; ++r) {
            std::getline(csv, line);
            std::vector<std::string> f;
            std::stringstream ls(line);
            std::string x;
            while (std::getline(ls, x, ',')) f.push_back(x);
            QCOMPARE(f.size(), std::size_t(5));
            QCOMPARE(f[0], m.rows[r]);
            for (std::size_t c = 0; c < 3; ++c) {
                QCOMPARE(file.at(r, c), m.at(r, c));
                QVERIFY(std::abs(std::stod(f[c + 2]) - m.at(r, c)) < 1e-5);
            }
        }
        QCOMPARE(file.col_categories, (std::vector<std::string>{"sentiment", "sentiment", "topic"}));
    }

    void transferSpecErrorsNameTheField() {
        try {
            dt::TransferSpec::from_json({{"model", "m"}, {"tasks", {"a"}}, {"output_dir", "o"}}, "t.json", "");
            QFAIL("expected an error");
        } catch (const dt::Error& e) {
            QVERIFY(std::string(e.what()).find("tasks") != std::string::npos);
        }
        try {
            dt::TransferSpec::from_json({{"model", "m"}, {"tasks", {"a", "b"}}, {"output_dir", "o"}, {"colour", 1}}, "t.json", "");
            QFAIL("expected an error");
        } catch (const dt::Error& e) {
            QVERIFY(std::string(e.what()).find("colour") != std::string::npos);
        }
    }

    void ablationWithEveryLayerRemovedIsTheBaseModel() {
        QTemporaryDir tmp;
        const std::string d = makeDemo(tmp.path(), 64, 48);
        // Train a delta through the transfer queue (one task is enough for its checkpoint).
        nlohmann::json spec = {{"model", d + "/model"}, {"task", d + "/demo/tasks/reviews/task.json"},
                               {"delta", {{"method", "lora"}, {"r", 4}, {"target_modules", {"query", "value", "dense"}}}},
                               {"training", {{"max_steps", 15}, {"batch_size", 8}, {"lr", 0.05}}}};
        const std::string spec_path = d + "/run.json";
        std::ofstream(spec_path) << spec.dump();
        {
            auto p = dt::prepare_run(dt::RunSpec::load(spec_path));
            dt::Trainer t(*p.model.model, p.train, nullptr, p.spec.training);
            t.run();
            t.save_checkpoint(d + "/ckpt");
        }
        const auto r = dt::run_layer_ablation(spec_path, d + "/ckpt", d + "/abl");
        QCOMPARE(r.matrix.rows.size(), std::size_t(2));
        QVERIFY(r.matrix.has(0, 0) && r.matrix.has(0, 1) && r.matrix.has(1, 1));
        QVERIFY(!r.matrix.has(1, 0));  // i > j is not an experiment
        QCOMPARE(r.matrix.at(0, 1), r.without_delta);
        QVERIFY(QFile::exists(QString::fromStdString(d + "/abl/matrix.csv")));
        // The file reports the same base metric.
        const auto j = dt::json::load_file(d + "/abl/matrix.json");
        QCOMPARE(j["without_delta"].get<double>(), r.without_delta);
    }

    void paretoFront() {
        // (trainable parameters, accuracy)
        const std::vector<std::pair<double, double>> pts = {
            {1e3, 0.70}, {1e4, 0.80}, {1e5, 0.78}, {1e6, 0.90}, {1e4, 0.75}, {5e2, 0.60}, {1e6, 0.85}};
        const auto f = dt::pareto_front(pts);
        QCOMPARE(f, (std::vector<bool>{true, true, false, true, false, true, false}));
        QCOMPARE(dt::pareto_front({}), std::vector<bool>{});
        QCOMPARE(dt::pareto_front({{1, 1}, {1, 1}}), (std::vector<bool>{true, true}));  // equal points dominate neither
    }
};

DT_REGISTER_TEST(TestExperiments);
#include "test_experiments.moc"
