// The shipped demo (resources/demo) as evidence: after the same number of steps, LoRA on the
// pretrained demo model against LoRA on a randomly initialised model of the same shape, on every demo
// task (real trainings on the real files, a few seconds on 2 cores). The curriculum pretraining taught
// the model polarity (the three sentiment tasks) and the topics (the two topic tasks), not yet
// entailment or synonymy, so the test asserts a clear margin on those five and prints the table for
// all nine; a margin on every task is open (docs/demo.md, "What the model knows").
#include "test_registry.h"
#include "test_util.h"

#include "experiments/experiments.h"
#include "models/loader.h"
#include "train/run_spec.h"

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <cstdio>

namespace {

const char* kTasks[] = {"reviews", "opinions", "negation", "news", "questions", "attributes", "quantifiers", "synonyms", "question-pairs"};

std::string demo() { return std::string(DT_SOURCE_DIR) + "/resources/demo"; }

nlohmann::json loraSpec() { return {{"method", "lora"}, {"r", 8}, {"target_modules", {"query", "key", "value", "dense"}}}; }
nlohmann::json training() { return {{"max_steps", 200}, {"batch_size", 16}, {"lr", 0.01}, {"seed", 0}}; }

double tuneAndEvaluate(const std::string& model, const std::string& task, int steps = 200) {
    nlohmann::json tr = training();
    tr["max_steps"] = steps;
    nlohmann::json j = {{"model", model}, {"task", demo() + "/tasks/" + task + "/task.json"}, {"delta", loraSpec()}, {"training", tr}};
    auto p = dt::prepare_run(dt::RunSpec::from_json(j, "test", ""));
    dt::Trainer t(*p.model.model, p.train, nullptr, p.spec.training);
    t.run();
    return t.evaluate(p.valid).at("accuracy");
}

// Models this small train fastest on one thread (no OpenMP hand-offs per tiny matmul); the tables
// and margins were measured that way.
struct OneThread {
    int before = at::get_num_threads();
    OneThread() { at::set_num_threads(1); }
    ~OneThread() { at::set_num_threads(before); }
};

}  // namespace

class TestDemo : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void pretrainedBeatsRandomOnSentimentAndTopic() {
        OneThread one;
        const std::string pretrained = demo() + "/models/synth-bert-small";
        QVERIFY2(QFile::exists(QString::fromStdString(pretrained + "/model.safetensors")), "the demo model is missing");
        // The same architecture and tokenizer with random weights.
        QTemporaryDir tmp;
        const std::string random = tmp.path().toStdString() + "/random";
        auto loaded = dt::load_model(pretrained);
        auto fresh = dt::create_model(loaded.model->config(), 1);
        dt::save_model(*fresh, random);
        QVERIFY(QFile::copy(QString::fromStdString(pretrained + "/tokenizer.json"), QString::fromStdString(random + "/tokenizer.json")));
        for (const char* task : kTasks) {
            const double p = tuneAndEvaluate(pretrained, task), r = tuneAndEvaluate(random, task);
            std::printf("%-15s pretrained %.3f  random %.3f\n", task, p, r);
            const std::string t = task;
            const bool learned = t == "reviews" || t == "opinions" || t == "negation" || t == "news" || t == "questions";
            if (learned) QVERIFY2(p >= r + 0.2, qPrintable(QStringLiteral("%1: pretrained %2 vs random %3").arg(task).arg(p).arg(r)));
        }
    }

    void theLargerModelLearnsFaster() {
        // The study's "power of scale" in miniature: after only 40 LoRA steps, the larger demo model
        // (hidden 128, 4 layers) is at least as good as the small one on each task both models
        // learned, and better on some.
        OneThread one;
        const std::string small = demo() + "/models/synth-bert-small", base = demo() + "/models/synth-bert-base";
        QVERIFY2(QFile::exists(QString::fromStdString(base + "/model.safetensors")), "the larger demo model is missing");
        int better = 0;
        for (const char* task : {"reviews", "opinions", "negation", "news", "questions"}) {
            const double s = tuneAndEvaluate(small, task, 40), b = tuneAndEvaluate(base, task, 40);
            std::printf("%-15s 40 steps: small %.3f  base %.3f\n", task, s, b);
            QVERIFY2(b >= s - 1e-9, qPrintable(QStringLiteral("%1: base %2 < small %3").arg(task).arg(b).arg(s)));
            if (b > s + 0.02) ++better;
        }
        QVERIFY(better >= 2);
    }
};

DT_REGISTER_TEST(TestDemo);
#include "test_demo.moc"
