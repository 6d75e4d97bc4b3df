// Experiments: a 3x3 transfer matrix on tiny demo tasks (engine result, matrix.json and matrix.csv
// agree; a stopped experiment resumes with its finished cells), the layer ablation (all layers
// removed = the base model), the Pareto front on hand-made points, and the demo generator
// (deterministic, its tokenizer loads, its tasks read).
#include "test_registry.h"
#include "test_util.h"

#include "core/error.h"
#include "demo/synth_language.h"
#include "experiments/comparison.h"
#include "experiments/experiments.h"
#include "experiments/inspection.h"
#include "export/export_run.h"
#include "export/merge_deltas.h"
#include "export/peft_export.h"
#include "delta/delta_set.h"
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

class StopAfterMethods : public dt::ComparisonObserver {
public:
    StopAfterMethods(int n, dt::TrainControl* c) : n_(n), c_(c) {}
    void on_method(const dt::MethodResult&) override {
        if (++seen == n_) c_->cancel = true;
    }
    void on_point(const std::string&, const dt::CurvePoint&) override { ++points; }
    int seen = 0, points = 0;

private:
    int n_;
    dt::TrainControl* c_;
};

}  // namespace

class TestExperiments : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void methodComparison() {
        // Three methods at a matched budget on one tiny task: counts near the budget where a size
        // field exists, one convergence point per evaluation, Pareto flags from pareto_front, the
        // files agree with the result, and a stopped comparison keeps its finished methods.
        QTemporaryDir dir;
        const std::string d = makeDemo(dir.path());
        const nlohmann::json j = {{"model", "model"}, {"task", "demo/tasks/reviews/task.json"}, {"methods", {"lora", "adapter", "bitfit", "prompt"}},
                                  {"budget", 1500}, {"training", {{"max_steps", 12}, {"batch_size", 8}, {"lr", 0.01}, {"eval_every", 4}}},
                                  {"output_dir", "cmp"}};
        const auto spec = dt::CompareSpec::from_json(j, "compare.json", d);
        dt::TrainControl control;
        StopAfterMethods stop(2, &control);
        const auto first = dt::run_method_comparison(spec, &stop, &control);
        QCOMPARE(first.methods.size(), std::size_t(2));
        QCOMPARE(stop.points, 6);  // 3 evaluations for each of the two finished methods
        dt::TrainControl go;
        StopAfterMethods all(100, &go);
        const auto r = dt::run_method_comparison(spec, &all, &go);
        QCOMPARE(r.methods.size(), std::size_t(4));
        QCOMPARE(all.points, 6);  // only bitfit and prompt trained now
        QCOMPARE(r.methods[0].seconds, first.methods[0].seconds);  // kept, not retrained
        QCOMPARE(r.metric, std::string("accuracy"));
        std::vector<std::pair<double, double>> pts;
        for (const auto& m : r.methods) {
            QCOMPARE(m.curve.size(), std::size_t(3));
            QCOMPARE(m.curve.back().step, std::int64_t(12));
            QVERIFY(m.curve[0].elapsed_s <= m.curve[2].elapsed_s);
            QCOMPARE(m.value, m.curve.back().value);
            pts.emplace_back(static_cast<double>(m.trainable_params), m.value);
            QVERIFY(QFile::exists(QString::fromStdString(d + "/cmp/runs/" + m.name + "/checkpoints/final/trainable.safetensors")));
        }
        const auto front = dt::pareto_front(pts);
        for (std::size_t i = 0; i < front.size(); ++i) QCOMPARE(r.methods[i].pareto, bool(front[i]));
        // Budget matching: lora and adapter land within one size step of 1500; bitfit has no size.
        for (std::size_t i : {0, 1, 3}) QVERIFY2(std::llabs(r.methods[i].trainable_params - 1500) < 400, r.methods[i].name.c_str());
        QVERIFY(r.methods[0].delta.contains("r") && r.methods[1].delta.contains("size") && r.methods[3].delta.contains("num_virtual_tokens"));
        QVERIFY(!r.methods[2].delta.contains("size"));
        const auto file = dt::json::load_file(d + "/cmp/comparison.json");
        QCOMPARE(file, r.to_json());
        QCOMPARE(readAll(d + "/cmp/comparison.csv"), r.to_csv());
        // Bad specs name the field.
        for (const auto& [bad, needle] : std::vector<std::pair<nlohmann::json, std::string>>{
                 {{{"model", "m"}, {"task", "t"}, {"methods", nlohmann::json::array()}, {"output_dir", "o"}}, "methods"},
                 {{{"model", "m"}, {"task", "t"}, {"methods", {"lora", "lora"}}, {"output_dir", "o"}}, "two methods"},
                 {{{"model", "m"}, {"task", "t"}, {"methods", {"lorax"}}, {"output_dir", "o"}}, "methods[0]"},
                 {{{"model", "m"}, {"task", "t"}, {"methods", {{{"name", "../x"}, {"delta", "lora"}}}}, {"output_dir", "o"}}, "plain folder name"},
                 {{{"model", "m"}, {"task", "t"}, {"methods", {"lora"}}, {"output_dir", "o"}, {"budgt", 1}}, "budgt"}}) {
            try {
                dt::CompareSpec::from_json(bad, "c.json", ".");
                QFAIL(bad.dump().c_str());
            } catch (const dt::Error& e) {
                QVERIFY2(std::string(e.what()).find(needle) != std::string::npos, e.what());
            }
        }
    }

    void deltaInspection() {
        // LoRA: the measured ||dW|| / ||W|| equals the one computed from B A * alpha / r; other
        // tensors: the relative change from their start; the grid places each module in its layer.
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 4);
        auto set = dt::DeltaSet::apply(*m, dt::DeltaSpec::from_json(nlohmann::json::parse(
            R"({"methods": [{"method": "lora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.1}, {"method": "bitfit", "groups": ["intermediate"]}]})"), "spec"));
        const auto start = dt::snapshot_trainable(*m);
        {
            torch::NoGradGuard ng;
            torch::manual_seed(3);
            for (auto& p : dt::trainable_parameters(*m)) p.add_(torch::randn_like(p) * 0.05);
        }
        m->train();
        const auto values = dt::delta_magnitudes(*m, set, start);
        QVERIFY(m->is_training());  // the probe left the training mode as it was
        auto params = m->named_parameters(true);
        int lora = 0, bias = 0;
        for (const auto& v : values) {
            if (params.find(v.name + ".lora_A.weight")) {
                const at::Tensor dw = torch::matmul(params[v.name + ".lora_B.weight"], params[v.name + ".lora_A.weight"]) * 2.0;
                const double want = (dw.norm() / params[v.name + ".weight"].norm()).item<double>();
                QVERIFY2(std::abs(v.value - want) <= 1e-4 * want, qPrintable(QString("%1: %2 vs %3").arg(v.name.c_str()).arg(v.value).arg(want)));
                ++lora;
            } else {
                QVERIFY2(v.name.find("intermediate.dense") != std::string::npos, v.name.c_str());
                const at::Tensor b = params[v.name + ".bias"], b0 = start.at(v.name + ".bias"), w = params[v.name + ".weight"];
                const double want = ((b - b0).norm() / (w.pow(2).sum() + b0.pow(2).sum()).sqrt()).item<double>();
                QVERIFY2(std::abs(v.value - want) <= 1e-5 * want, qPrintable(QString("%1 vs %2").arg(v.value).arg(want)));
                ++bias;
            }
        }
        QCOMPARE(lora, 2 * m->num_layers());
        QCOMPARE(bias, m->num_layers());
        const auto grid = dt::layer_module_grid(values, m->num_layers(), "delta_magnitude", "relative norm");
        QCOMPARE(grid.rows.size(), std::size_t(m->num_layers()));
        QCOMPARE(grid.cols, (std::vector<std::string>{"attention.self.query", "attention.self.value", "intermediate.dense"}));
        for (std::size_t r = 0; r < grid.rows.size(); ++r)
            for (std::size_t c = 0; c < grid.cols.size(); ++c) QVERIFY(grid.has(r, c));
        QCOMPARE(dt::layer_and_module("bert.encoder.layer.3.attention.self.query.lora_B.weight"), std::make_pair(3, std::string("attention.self.query")));
        QCOMPARE(dt::layer_and_module("bert.encoder.layer.0.output.adapter.up.bias"), std::make_pair(0, std::string("output.adapter")));
        QCOMPARE(dt::layer_and_module("model.layers.1.mlp.down_proj.weight"), std::make_pair(1, std::string("mlp.down_proj")));
        QCOMPARE(dt::layer_and_module("prefix_encoder.embedding.weight"), std::make_pair(-1, std::string("prefix_encoder")));
        // Values outside the blocks get an "other" row.
        const auto g2 = dt::layer_module_grid({{"classifier.weight", 2.0}, {"bert.encoder.layer.1.output.dense.bias", 1.0}}, 2, "grad_norm", "norm");
        QCOMPARE(g2.rows.back(), std::string("other"));
        QVERIFY(g2.has(2, 0) && !g2.has(0, 0) && g2.has(1, 1));
    }

    void gradientNormsOnRequest() {
        // grad_norms_every = 3: per-tensor norms on steps 3 and 6 only, for every trainable tensor,
        // and their root sum of squares is the step's (unclipped) gradient norm.
        QTemporaryDir dir;
        const std::string d = makeDemo(dir.path());
        nlohmann::json j = {{"model", d + "/model"}, {"task", d + "/demo/tasks/reviews/task.json"}, {"delta", "lora"},
                            {"training", {{"max_steps", 6}, {"batch_size", 8}, {"max_grad_norm", 0}}}};
        dt::PreparedRun p = dt::prepare_run(dt::RunSpec::from_json(j, "spec", ""));
        p.spec.training.grad_norms_every = 3;
        struct Rec : dt::TrainObserver {
            std::vector<dt::StepEvent> steps;
            void on_step(const dt::StepEvent& e) override { steps.push_back(e); }
        } rec;
        dt::Trainer t(*p.model.model, p.train, nullptr, p.spec.training, &rec);
        t.run();
        QCOMPARE(rec.steps.size(), std::size_t(6));
        const auto trainable = dt::trainable_parameters(*p.model.model).size();
        for (const auto& e : rec.steps) {
            if (e.step % 3 != 0) {
                QVERIFY(e.grad_norms.empty());
                continue;
            }
            QCOMPARE(e.grad_norms.size(), trainable);
            double sq = 0;
            for (const auto& [name, n] : e.grad_norms) sq += n * n;
            QVERIFY2(std::abs(std::sqrt(sq) - e.grad_norm) <= 1e-4 * e.grad_norm, qPrintable(QString("%1 vs %2").arg(std::sqrt(sq)).arg(e.grad_norm)));
        }
    }

    void demoDataIsDeterministicAndReadable() {
        QTemporaryDir a, b;
        dt::demo::write_demo_data(a.path().toStdString(), 5, 200, 20, 10);
        dt::demo::write_demo_data(b.path().toStdString(), 5, 200, 20, 10);
        for (const char* f : {"/tokenizer.json", "/corpus.txt", "/tasks/reviews/train.jsonl", "/tasks/agreement/validation.jsonl"})
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
        const char* names[] = {"reviews", "opinions", "negation", "news", "questions", "adjective-entailment", "opinion-entailment", "review-pairs", "agreement"};
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
        // Rows fill as their deltas are trained: stopped after four cells (the base's row and the
        // first cell of the reviews delta's), only the reviews delta exists and the four cells stay.
        dt::TrainControl control;
        StopAfter stop(4, &control);
        auto partial = dt::run_transfer(spec, &stop, &control);
        int filled = 0;
        for (std::size_t r = 0; r < partial.rows.size(); ++r)
            for (std::size_t c = 0; c < partial.cols.size(); ++c) filled += partial.has(r, c);
        QCOMPARE(filled, 4);
        QVERIFY(partial.has(0, 2) && partial.has(1, 0) && !partial.has(1, 1));
        QVERIFY(QFile::exists(QString::fromStdString(d + "/exp/deltas/reviews/checkpoints/final/trainable.safetensors")));
        for (const char* t : {"opinions", "news"})
            QVERIFY(!QFile::exists(QString::fromStdString(d + "/exp/deltas/" + t + "/checkpoints/final/trainable.safetensors")));
        // Resume: the four cells are kept (not recomputed), the rest are filled in.
        StopAfter count(1000, &control);
        control.cancel = false;
        const auto m = dt::run_transfer(spec, &count, &control);
        QCOMPARE(m.rows.size(), std::size_t(4));
        QCOMPARE(m.cols.size(), std::size_t(3));
        QCOMPARE(m.rows[0], std::string("(no delta)"));
        QCOMPARE(count.seen, 12);  // 4 replayed from cells.jsonl + 8 computed
        const std::string cells = readAll(d + "/exp/cells.jsonl");
        QCOMPARE(std::count(cells.begin(), cells.end(), '\n'), 12L);
        for (std::size_t r = 0; r < 4; ++r)
            for (std::size_t c = 0; c < 3; ++c) {
                QVERIFY(m.has(r, c));
                QVERIFY(m.at(r, c) >= 0 && m.at(r, c) <= 1);
            }
        // The first four cells equal what the stopped run computed.
        for (std::size_t c = 0; c < 3; ++c) QCOMPARE(m.at(0, c), partial.at(0, c));
        QCOMPARE(m.at(1, 0), partial.at(1, 0));
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

        // The same experiment scored by exact match (the top word over the whole vocabulary must be
        // the gold label word): every cell is computed again, none is above its accuracy (an exact
        // match is also a win among the label words), and the file says which metric it holds.
        j["metric"] = "exact_match";
        StopAfter again(1000, &control);
        const auto em = dt::run_transfer(dt::TransferSpec::from_json(j, "test", ""), &again, &control);
        QCOMPARE(again.seen, 12);
        QCOMPARE(em.metric, std::string("exact_match"));
        bool below = false;
        for (std::size_t r = 0; r < 4; ++r)
            for (std::size_t c = 0; c < 3; ++c) {
                QVERIFY(em.has(r, c));
                QVERIFY2(em.at(r, c) <= m.at(r, c) + 1e-12, qPrintable(QStringLiteral("cell %1,%2: %3 > %4").arg(r).arg(c).arg(em.at(r, c)).arg(m.at(r, c))));
                below = below || em.at(r, c) < m.at(r, c);
            }
        QVERIFY(below);  // a barely trained tiny model seldom puts a label word on top of the whole vocabulary
        QCOMPARE(dt::json::load_file(d + "/exp/matrix.json").at("metric").get<std::string>(), std::string("exact_match"));
    }

    void transferAddsExportedAndMergedDeltaRows() {
        // Extra rows are exported delta folders: a task's own delta exported to PEFT's format gives
        // that task's row again; a merge of two task deltas (cat, weights 1 and 0: exactly the first)
        // too; a 50/50 merge is a row of its own.
        QTemporaryDir tmp;
        const std::string d = makeDemo(tmp.path());
        nlohmann::json j = {{"model", d + "/model"},
                            {"tasks", {d + "/demo/tasks/reviews/task.json", d + "/demo/tasks/news/task.json"}},
                            {"delta", {{"method", "lora"}, {"r", 4}, {"target_modules", {"query", "value"}}}},
                            {"training", {{"max_steps", 6}, {"batch_size", 8}, {"lr", 0.01}}},
                            {"output_dir", d + "/exp"}};
        const auto first = dt::run_transfer(dt::TransferSpec::from_json(j, "test", ""));
        dt::export_run(d + "/exp/deltas/reviews", "peft", d + "/reviews-peft", "final");
        for (const auto& [name, weights] : std::vector<std::pair<std::string, std::vector<double>>>{{"first", {1.0, 0.0}}, {"half", {0.5, 0.5}}}) {
            auto base = dt::load_model(d + "/model").model;
            dt::MergeOptions o;
            o.sources = {d + "/exp/deltas/reviews", d + "/exp/deltas/news"};  // run folders
            o.weights = weights;
            o.combination = "cat";
            auto merged = dt::merge_deltas(*base, o);
            dt::export_peft(*base, merged, d + "/merged-" + name, d + "/model");
        }
        j["output_dir"] = d + "/exp2";
        j["sources"] = {{"reviews", d + "/exp/deltas/reviews/checkpoints/final"}, {"news", d + "/exp/deltas/news/checkpoints/final"}};
        j["extra_deltas"] = {{"reviews (PEFT export)", d + "/reviews-peft"}, {"merged 1:0", d + "/merged-first"}, {"merged 1:1", d + "/merged-half"}};
        const auto m = dt::run_transfer(dt::TransferSpec::from_json(j, "test", ""));
        // Extra rows come after the tasks' in the order of their names (a JSON object's keys).
        QCOMPARE(m.rows, (std::vector<std::string>{"(no delta)", "reviews", "news", "merged 1:0", "merged 1:1", "reviews (PEFT export)"}));
        for (std::size_t c = 0; c < 2; ++c) {
            QCOMPARE(m.at(1, c), first.at(1, c));
            QCOMPARE(m.at(5, c), m.at(1, c));
            QCOMPARE(m.at(3, c), m.at(1, c));
            QVERIFY(m.has(4, c) && m.at(4, c) >= 0 && m.at(4, c) <= 1);
        }
        j["extra_deltas"] = {{"nothing", d + "/demo"}};
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::TransferSpec::from_json(j, "test", ""));
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
        try {
            dt::TransferSpec::from_json({{"model", "m"}, {"tasks", {"a", "b"}}, {"output_dir", "o"}, {"metric", "f1"}}, "t.json", "");
            QFAIL("expected an error");
        } catch (const dt::Error& e) {
            QVERIFY(std::string(e.what()).find("'metric'") != std::string::npos);
        }
    }

    void ablationWithEveryLayerRemovedIsTheBaseModel() {
        QTemporaryDir tmp;
        const std::string d = makeDemo(tmp.path(), 64, 48);
        // Train a delta through the transfer queue (one task is enough for its checkpoint).
        // "dense" also names the MLM head's transform, which is in no layer: it is left out here
        // and added below.
        nlohmann::json spec = {{"model", d + "/model"}, {"task", d + "/demo/tasks/reviews/task.json"},
                               {"delta", {{"method", "lora"}, {"r", 4}, {"target_modules", R"(.*layer\.\d+\..*\.(query|value|dense))"}}},
                               {"training", {{"max_steps", 15}, {"batch_size", 8}, {"lr", 0.05}}}};
        const std::string spec_path = d + "/run.json";
        auto trainTo = [&](const std::string& ckpt) {
            std::ofstream(spec_path) << spec.dump();
            auto p = dt::prepare_run(dt::RunSpec::load(spec_path));
            dt::Trainer t(*p.model.model, p.train, nullptr, p.spec.training);
            t.run();
            t.save_checkpoint(ckpt);
        };
        trainTo(d + "/ckpt");
        const auto r = dt::run_layer_ablation(spec_path, d + "/ckpt", d + "/abl");
        QCOMPARE(r.matrix.rows.size(), std::size_t(2));
        QVERIFY(r.matrix.has(0, 0) && r.matrix.has(0, 1) && r.matrix.has(1, 1));
        QVERIFY(!r.matrix.has(1, 0));  // i > j is not an experiment
        QCOMPARE(r.outside_layers, std::int64_t(0));
        QCOMPARE(r.matrix.at(0, 1), r.without_delta);
        QVERIFY(QFile::exists(QString::fromStdString(d + "/abl/matrix.csv")));
        // The file reports the same base metric.
        const auto j = dt::json::load_file(d + "/abl/matrix.json");
        QCOMPARE(j["without_delta"].get<double>(), r.without_delta);

        // With the head's transform in the delta, that part is in no layer and is reported.
        spec["delta"]["target_modules"] = nlohmann::json::array({"query", "value", "dense"});
        trainTo(d + "/ckpt2");
        const auto r2 = dt::run_layer_ablation(spec_path, d + "/ckpt2", d + "/abl2");
        QCOMPARE(r2.outside_layers, std::int64_t(2 * 4 * 32));  // LoRA A (4 x 32) and B (32 x 4) of the 32-wide transform
        QCOMPARE(r2.outside_layer_tensors.size(), std::size_t(2));
        QVERIFY(QString::fromStdString(r2.outside_layer_tensors[0]).contains("transform.dense"));
        QCOMPARE(dt::json::load_file(d + "/abl2/matrix.json")["outside_layers"].get<std::int64_t>(), r2.outside_layers);
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
