// Trainer: it learns a generated task, is repeatable from a seed, resumes exactly from a checkpoint,
// pauses and cancels from another thread, skips non-finite steps and never checkpoints them.
// Also the schedules, metrics and the JSONL reader.
#include "test_registry.h"
#include "test_util.h"

#include "core/autocast.h"
#include "core/error.h"
#include "data/dataset.h"
#include "delta/delta_set.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "train/metrics.h"
#include "train/run_spec.h"
#include "train/trainer.h"

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <QDir>
#include <QTemporaryDir>
#include <QTest>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>
#include <functional>
#include <atomic>
#include <thread>

using namespace dttest;

namespace {

// label 1 iff token 7 occurs; lengths 6..14; [CLS]=2 first.
dt::Dataset containsTask(int n, std::uint64_t seed) {
    dt::Dataset d;
    d.source = "generated";
    std::mt19937_64 rng(seed);
    for (int i = 0; i < n; ++i) {
        dt::Example ex;
        const int len = 6 + static_cast<int>(rng() % 9);
        ex.ids.push_back(2);
        for (int k = 1; k < len; ++k) ex.ids.push_back(10 + static_cast<std::int64_t>(rng() % 190));
        ex.label = static_cast<std::int64_t>(rng() % 2);
        if (ex.label == 1) ex.ids[1 + rng() % (len - 1)] = 7;
        d.examples.push_back(ex);
    }
    return d;
}

std::shared_ptr<dt::TransformerModel> seqcls(std::uint64_t seed = 1) {
    auto cfg = dt::builtin_config("tiny-bert");
    auto raw = cfg.raw;
    raw["architectures"] = {"BertForSequenceClassification"};
    raw["num_hidden_layers"] = 2;
    raw["num_labels"] = 2;
    return dt::create_model(dt::ModelConfig::from_json(raw, "test"), seed);
}

dt::DeltaSpec loraSpec() {
    return dt::DeltaSpec::from_json(nlohmann::json::parse(R"({"methods": [{"method": "lora", "target_modules": "all-linear", "r": 8, "lora_alpha": 16}],
                                                              "modules_to_save": ["classifier", "bert.pooler.dense"]})"),
                                    "test");
}

dt::TrainConfig config(std::int64_t steps) {
    dt::TrainConfig c;
    c.max_steps = steps;
    c.batch_size = 16;
    c.lr = 3e-3;
    c.warmup_ratio = 0.1;
    c.seed = 42;
    return c;
}

struct StopAt : dt::TrainObserver {
    dt::TrainControl* control;
    std::int64_t at;
    StopAt(dt::TrainControl* c, std::int64_t s) : control(c), at(s) {}
    void on_step(const dt::StepEvent& e) override {
        if (e.step == at) control->cancel = true;
    }
};

}  // namespace

class TestTrain : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void learnsGeneratedTask() {
        auto m = seqcls();
        auto d = dt::DeltaSet::apply(*m, loraSpec());
        const auto train = containsTask(512, 1), valid = containsTask(200, 2);
        dt::Trainer t(*m, train, &valid, config(150));
        const auto before = t.evaluate(valid);
        auto res = t.run();
        QCOMPARE(res.status, std::string("finished"));
        QCOMPARE(res.steps, 150);
        const double acc = res.last_metrics.at("accuracy");
        qInfo("validation accuracy %.3f after %lld steps (%.3f before)", acc, static_cast<long long>(res.steps), before.at("accuracy"));
        QVERIFY2(acc >= 0.85, qPrintable(QStringLiteral("validation accuracy %1 (before training %2)").arg(acc).arg(before.at("accuracy"))));
        QVERIFY(res.losses.back() < res.losses.front());
    }

    void learnsInBf16() {
        auto m = seqcls();
        auto d = dt::DeltaSet::apply(*m, loraSpec());
        const auto train = containsTask(512, 1), valid = containsTask(200, 2);
        auto c = config(150);
        c.precision = "bf16";
        auto res = dt::Trainer(*m, train, &valid, c).run();
        QVERIFY2(res.last_metrics.at("accuracy") >= 0.85, qPrintable(QString::number(res.last_metrics.at("accuracy"))));
        for (const auto& p : dt::trainable_parameters(*m)) QCOMPARE(p.scalar_type(), at::kFloat);  // deltas stay fp32
        QVERIFY(!dt::autocast_enabled(c10::DeviceType::CPU));  // the scope is closed again
    }

    void causalLossScoresOnlyTheResponse() {
        auto m = dt::create_model(dt::builtin_config("tiny-llama"), 3);
        dt::Dataset d;
        d.source = "generated";
        d.causal_lm = true;
        dt::Example ex;
        ex.ids = {1, 10, 11, 12, 2};
        ex.lm_labels = {-100, -100, 11, 12, 2};  // prompt "1 10", response "11 12" + end of text
        ex.label = 0;
        d.examples = {ex};
        dt::Trainer t(*m, d, &d, config(1));
        const auto metrics = t.evaluate(d);
        torch::NoGradGuard ng;
        dt::ForwardInputs in;
        in.input_ids = torch::tensor(ex.ids, torch::kLong).unsqueeze(0);
        at::Tensor lp = torch::log_softmax(m->forward(in).logits[0], -1);
        const double want = -(lp[1][11].item<double>() + lp[2][12].item<double>() + lp[3][2].item<double>()) / 3.0;
        QVERIFY2(std::abs(metrics.at("loss") - want) < 1e-5, qPrintable(QStringLiteral("%1 vs %2").arg(metrics.at("loss")).arg(want)));
        QVERIFY(std::abs(metrics.at("perplexity") - std::exp(want)) < 1e-3 * std::exp(want));
    }

    void devices() {
        auto m = seqcls();
        auto d = dt::DeltaSet::apply(*m, loraSpec());
        const auto train = containsTask(64, 1);
        auto c = config(30);
        c.device = "tpu";
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::Trainer(*m, train, nullptr, c));
        c.device = "cpu";
        c.precision = "fp16";
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::Trainer(*m, train, nullptr, c));  // fp16 needs CUDA
        c.device = "cuda";
        c.precision = "fp32";
        if (!torch::cuda::is_available()) {
            try {
                dt::Trainer(*m, train, nullptr, c);
                QFAIL("cuda accepted without CUDA");
            } catch (const dt::Error& e) {
                QVERIFY2(QString::fromStdString(e.what()).contains("CUDA is not available"), e.what());
            }
        }  // the CUDA training path: TestCuda (label cuda)
    }

    void sameSeedSameLosses() {
        auto run = [] {
            auto m = seqcls();
            auto d = dt::DeltaSet::apply(*m, loraSpec());
            const auto train = containsTask(128, 1);
            dt::Trainer t(*m, train, nullptr, config(10));
            return t.run().losses;
        };
        const auto a = run(), b = run();
        QCOMPARE(a.size(), std::size_t(10));
        QVERIFY(a == b);  // bit-for-bit
    }

    // Two trainings at once in one process (the workbench's Training and Transfer tabs) each draw
    // dropout from their own generator: each repeats its solo run bit for bit. With the global
    // generator they interleaved their masks.
    void concurrentRunsAreEachRepeatable() {
        auto run = [](std::uint64_t seed, const std::function<void()>& between) {
            auto m = seqcls();  // BERT's dropout 0.1 is on while training
            nlohmann::json spec = nlohmann::json::parse(R"({"methods": [{"method": "lora", "target_modules": "all-linear", "r": 8, "lora_dropout": 0.3}],
                                                            "modules_to_save": ["classifier"]})");
            auto d = dt::DeltaSet::apply(*m, dt::DeltaSpec::from_json(spec, "test"));
            const auto train = containsTask(128, 1);
            dt::TrainConfig c = config(25);
            c.seed = seed;
            struct Yield : dt::TrainObserver {
                std::function<void()> f;
                void on_step(const dt::StepEvent&) override { f(); }
            } y;
            y.f = between;
            dt::Trainer t(*m, train, nullptr, c, &y);
            return t.run().losses;
        };
        const auto soloA = run(1, [] {}), soloB = run(2, [] {});
        QVERIFY(soloA != soloB);
        std::vector<double> a, b;
        std::thread ta([&] { a = run(1, [] { std::this_thread::yield(); }); });
        std::thread tb([&] { b = run(2, [] { std::this_thread::yield(); }); });
        ta.join();
        tb.join();
        QVERIFY(a == soloA);
        QVERIFY(b == soloB);
    }

    // Label words run the masked-LM head at the mask positions only: the class logits, the loss and
    // every gradient equal the full head's (B x T x V), also with a soft prompt in front.
    void headOnMaskPositionsEqualsTheFullHead() {
        const std::string demo = std::string(DT_SOURCE_DIR) + "/resources/demo";
        const nlohmann::json spec = {{"model", demo + "/models/synth-bert-small"}, {"task", demo + "/tasks/reviews/task.json"}, {"delta", "lora"}};
        const dt::TaskData data = dt::load_task_data(dt::RunSpec::from_json(spec, "test", "."));
        QVERIFY(!data.train.label_word_ids.empty());
        for (const char* method : {"lora", "prompt"}) {
            auto m = dt::load_model(demo + "/models/synth-bert-small").model;
            auto d = dt::DeltaSet::apply(*m, dt::DeltaSpec::from_json({{"method", method}}, "test"));
            m->train(false);  // no dropout: the two passes must see the same network
            dt::Batch b = dt::collate(data.train, {0, 1, 2, 3, 4, 5, 6, 7}, 0);
            QVERIFY(b.inputs.score_positions.defined());
            const at::Tensor words = torch::tensor(data.train.label_word_ids, torch::kLong);
            auto classLogitsAndGrads = [&](bool atMasks) {
                dt::ForwardInputs in = b.inputs;
                if (!atMasks) in.score_positions = at::Tensor();
                const dt::ForwardOutputs out = m->forward(in);
                at::Tensor atMask;
                if (atMasks) {
                    [&] { QCOMPARE(out.logits.size(1), std::int64_t(1)); }();
                    atMask = out.logits.squeeze(1);
                } else {
                    const auto shift = out.logits.size(1) - in.input_ids.size(1);
                    atMask = out.logits.gather(1, (b.mask_pos + shift).view({-1, 1, 1}).expand({-1, 1, out.logits.size(2)})).squeeze(1);
                }
                const at::Tensor logits = atMask.index_select(1, words);
                for (auto& [name, t] : dt::named_trainable_parameters(*m))
                    if (t.grad().defined()) t.mutable_grad().zero_();
                torch::cross_entropy_loss(logits, b.labels).backward();
                std::vector<at::Tensor> grads{logits.detach()};
                for (auto& [name, t] : dt::named_trainable_parameters(*m)) grads.push_back(t.grad().clone());
                return grads;
            };
            const auto fast = classLogitsAndGrads(true), full = classLogitsAndGrads(false);
            QCOMPARE(fast.size(), full.size());
            QVERIFY(fast.size() > 1);
            for (std::size_t i = 0; i < fast.size(); ++i) QVERIFY2(torch::allclose(fast[i], full[i], 1e-5, 1e-6), method);
        }
    }

    void resumeContinuesExactly() {
        const auto train = containsTask(128, 1);
        std::vector<double> whole;
        {
            auto m = seqcls();
            auto d = dt::DeltaSet::apply(*m, loraSpec());
            auto c = config(12);
            c.grad_accum = 2;
            whole = dt::Trainer(*m, train, nullptr, c).run().losses;
        }
        QTemporaryDir dir;
        {
            auto m = seqcls();
            auto d = dt::DeltaSet::apply(*m, loraSpec());
            auto c = config(12);
            c.grad_accum = 2;
            c.run_dir = dir.path().toStdString();
            c.checkpoint_every = 4;
            dt::TrainControl control;
            StopAt stop(&control, 8);
            dt::Trainer t(*m, train, nullptr, c, &stop);
            auto res = t.run(&control);
            QCOMPARE(res.status, std::string("cancelled"));
            QCOMPARE(res.steps, 8);
        }
        QVERIFY(QDir(dir.path() + "/checkpoints/step-8").exists());
        QVERIFY(!QDir(dir.path() + "/checkpoints/step-8.tmp").exists());
        auto m = seqcls();
        auto d = dt::DeltaSet::apply(*m, loraSpec());
        auto c = config(12);
        c.grad_accum = 2;
        dt::Trainer t(*m, train, nullptr, c);
        t.load_checkpoint((dir.path() + "/checkpoints/step-8").toStdString());
        QCOMPARE(t.step(), 8);
        const auto resumed = t.run().losses;
        QCOMPARE(resumed.size(), whole.size());
        for (std::size_t i = 0; i < whole.size(); ++i)
            QVERIFY2(resumed[i] == whole[i], qPrintable(QStringLiteral("step %1: %2 vs %3").arg(i + 1).arg(resumed[i], 0, 'g', 17).arg(whole[i], 0, 'g', 17)));
    }

    void pauseAndCancelFromAnotherThread() {
        auto m = seqcls();
        auto d = dt::DeltaSet::apply(*m, loraSpec());
        const auto train = containsTask(64, 1);
        struct Count : dt::TrainObserver {
            std::atomic<std::int64_t> steps{0};
            void on_step(const dt::StepEvent& e) override { steps = e.step; }
        } count;
        dt::TrainControl control;
        dt::TrainResult res;
        dt::Trainer t(*m, train, nullptr, config(100000), &count);
        std::thread worker([&] {
            torch::NoGradGuard* none = nullptr;
            (void)none;
            res = t.run(&control);
        });
        while (count.steps < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        control.pause = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        const auto paused_at = count.steps.load();
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        QVERIFY(count.steps.load() <= paused_at + 1);  // at most the step in flight finishes
        control.pause = false;
        while (count.steps < paused_at + 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        control.cancel = true;
        worker.join();
        QCOMPARE(res.status, std::string("cancelled"));
        QVERIFY(res.steps < 100000);
    }

    // A gradient of exactly zero for five steps in a row is warned about once (it trains nothing).
    void zeroGradientIsWarnedAbout() {
        struct Statuses : dt::TrainObserver {
            std::vector<std::string> seen;
            void on_status(const std::string& s) override { seen.push_back(s); }
        };
        auto m = seqcls();
        auto d = dt::DeltaSet::apply(*m, loraSpec());
        const auto train = containsTask(64, 1);
        auto c = config(12);
        c.loss_hook = [](std::int64_t, at::Tensor& loss) { loss = loss * 0.0; };
        Statuses zero;
        dt::Trainer(*m, train, nullptr, c, &zero).run();
        const auto warned = std::count_if(zero.seen.begin(), zero.seen.end(), [](const std::string& s) { return s.find("exactly zero") != std::string::npos; });
        QCOMPARE(warned, std::ptrdiff_t{1});
        // A run that learns is not warned.
        auto m2 = seqcls();
        auto d2 = dt::DeltaSet::apply(*m2, loraSpec());
        Statuses normal;
        dt::Trainer(*m2, train, nullptr, config(12), &normal).run();
        for (const auto& s : normal.seen) QVERIFY2(s.find("exactly zero") == std::string::npos, s.c_str());
    }

    void nonFiniteStepsAreSkipped() {
        auto m = seqcls();
        auto d = dt::DeltaSet::apply(*m, loraSpec());
        const auto train = containsTask(64, 1);
        QTemporaryDir dir;
        auto c = config(10);
        c.run_dir = dir.path().toStdString();
        c.checkpoint_every = 5;
        c.loss_hook = [](std::int64_t step, at::Tensor& loss) {
            if (step == 2 || step == 3) loss = loss * std::numeric_limits<double>::quiet_NaN();
        };
        auto res = dt::Trainer(*m, train, nullptr, c).run();
        QCOMPARE(res.status, std::string("finished"));
        QCOMPARE(res.skipped, 2);
        QVERIFY(std::isnan(res.losses[2]) && std::isnan(res.losses[3]) && std::isfinite(res.losses[4]));
        for (const auto& p : dt::trainable_parameters(*m)) QVERIFY(torch::isfinite(p).all().item<bool>());
        auto f = dt::st::File::open((dir.path() + "/checkpoints/step-10/trainable.safetensors").toStdString());
        for (const auto& info : f->tensors())
            if (info.dtype == "F32") QVERIFY2(torch::isfinite(f->tensor(info.name)).all().item<bool>(), info.name.c_str());
        // NaN every step: stops after max_nonfinite in a row.
        auto m2 = seqcls();
        auto d2 = dt::DeltaSet::apply(*m2, loraSpec());
        auto c2 = config(50);
        c2.max_nonfinite = 4;
        c2.loss_hook = [](std::int64_t, at::Tensor& loss) { loss = loss * std::numeric_limits<double>::infinity(); };
        auto r2 = dt::Trainer(*m2, train, nullptr, c2).run();
        QCOMPARE(r2.status, std::string("stopped_nonfinite"));
        QCOMPARE(r2.steps, 4);
        // A non-finite parameter is never checkpointed.
        QTemporaryDir dir3;
        dt::Trainer t3(*m2, train, nullptr, config(1));
        {
            torch::NoGradGuard ng;
            dt::trainable_parameters(*m2).front().view({-1})[0] = std::nan("");
        }
        QVERIFY_THROWS_EXCEPTION(dt::Error, t3.save_checkpoint((dir3.path() + "/ck").toStdString()));
        QVERIFY(!QDir(dir3.path() + "/ck").exists());
    }

    void checkpointSaveCleansUpAKilledSave() {
        // What a save killed part-way leaves behind: the staging folder with a half-written file, and
        // the previous checkpoint moved aside (.old) holding a stray temporary file. The next save
        // must still land, and leave neither behind. (A random-kill test once hit this: the stray file
        // kept .old from being removed, and every later save of checkpoints/best failed.)
        const dt::Dataset train = containsTask(32, 3);
        auto m = seqcls();
        auto d = dt::DeltaSet::apply(*m, loraSpec());
        QTemporaryDir dir;
        const QString ck = dir.path() + "/best";
        dt::Trainer t(*m, train, nullptr, config(1));
        t.save_checkpoint(ck.toStdString());
        QVERIFY(QDir().mkpath(ck + ".old") && QDir().mkpath(ck + ".tmp"));
        writeBytes(ck + ".old/trainable.safetensors.tmp-1234", "half");
        writeBytes(ck + ".tmp/state.json.tmp-99", "half");
        t.save_checkpoint(ck.toStdString());
        QVERIFY(QFileInfo::exists(ck + "/trainable.safetensors") && QFileInfo::exists(ck + "/state.json"));
        QVERIFY(!QFileInfo::exists(ck + ".old") && !QFileInfo::exists(ck + ".tmp"));
        // Killed between its two renames: the checkpoint is only in .old. It is put back, then replaced.
        QVERIFY(QDir().rename(ck, ck + ".old"));
        t.save_checkpoint(ck.toStdString());
        QVERIFY(QFileInfo::exists(ck + "/state.json") && !QFileInfo::exists(ck + ".old"));
    }

    void bucketingGroupsLengthsAndBestIsKept() {
        struct Pad : dt::TrainObserver {
            double sum = 0;
            int n = 0;
            void on_step(const dt::StepEvent& e) override { sum += e.pad_fraction, ++n; }
        };
        const auto train = containsTask(256, 1), valid = containsTask(64, 2);
        auto run = [&](bool bucketing, const QString& dir, Pad& obs) {
            auto m = seqcls();
            auto d = dt::DeltaSet::apply(*m, loraSpec());
            auto c = config(16);
            c.length_bucketing = bucketing;
            c.run_dir = dir.toStdString();
            c.eval_every = 4;
            return dt::Trainer(*m, train, &valid, c, &obs).run();
        };
        QTemporaryDir a, b, c;
        Pad plain, bucketed, again;
        run(false, a.path(), plain);
        const auto r1 = run(true, b.path(), bucketed);
        const auto r2 = run(true, c.path(), again);
        QVERIFY(r1.losses == r2.losses);  // bucketing is seeded too
        const double p0 = plain.sum / plain.n, p1 = bucketed.sum / bucketed.n;
        qInfo("padding share: random batches %.3f, bucketed %.3f", p0, p1);
        QVERIFY2(p1 < 0.5 * p0, qPrintable(QStringLiteral("%1 vs %2").arg(p1).arg(p0)));
        QVERIFY(QFile::exists(b.path() + "/checkpoints/best/trainable.safetensors"));
    }

    void eventsAreLogged() {
        auto m = seqcls();
        auto d = dt::DeltaSet::apply(*m, loraSpec());
        const auto train = containsTask(64, 1), valid = containsTask(32, 3);
        QTemporaryDir dir;
        auto c = config(6);
        c.run_dir = dir.path().toStdString();
        c.eval_every = 3;
        dt::Trainer(*m, train, &valid, c).run();
        QFile f(dir.path() + "/events.jsonl");
        QVERIFY(f.open(QIODevice::ReadOnly));
        int steps = 0, evals = 0;
        for (const auto& line : f.readAll().split('\n')) {
            if (line.isEmpty()) continue;
            auto j = nlohmann::json::parse(line.toStdString());
            if (j["event"] == "step") ++steps;
            if (j["event"] == "eval") {
                ++evals;
                QVERIFY(j.contains("accuracy") && j.contains("macro_f1") && j.contains("mcc"));
            }
        }
        QCOMPARE(steps, 6);
        QCOMPARE(evals, 2);
    }

    void schedules() {
        dt::TrainConfig c;
        c.max_steps = 110;
        c.lr = 1.0;
        c.warmup_ratio = 10.0 / 110.0;
        c.schedule = "linear";
        QCOMPARE(dt::scheduled_lr(c, 0), 0.1);
        QCOMPARE(dt::scheduled_lr(c, 9), 1.0);
        QVERIFY(std::abs(dt::scheduled_lr(c, 60) - 0.5) < 1e-12);
        c.schedule = "cosine";
        QVERIFY(std::abs(dt::scheduled_lr(c, 60) - 0.5) < 1e-12);
        QVERIFY(std::abs(dt::scheduled_lr(c, 35) - 0.5 * (1 + std::cos(M_PI * 0.25))) < 1e-12);
        c.schedule = "constant";
        QCOMPARE(dt::scheduled_lr(c, 100), 1.0);
    }

    void metrics() {
        // gold 0 0 1 1 2 2, pred 0 1 1 1 2 0
        auto m = dt::classification_metrics({0, 1, 1, 1, 2, 0}, {0, 0, 1, 1, 2, 2}, 3);
        QVERIFY(std::abs(m["accuracy"] - 4.0 / 6.0) < 1e-12);
        // per class F1: c0 tp1 fp1 fn1 -> 0.5; c1 tp2 fp1 fn0 -> 0.8; c2 tp1 fp0 fn1 -> 2/3
        QVERIFY(std::abs(m["macro_f1"] - (0.5 + 0.8 + 2.0 / 3.0) / 3.0) < 1e-12);
        auto perfect = dt::classification_metrics({0, 1, 1, 0}, {0, 1, 1, 0}, 2);
        QCOMPARE(perfect["mcc"], 1.0);
        auto inverse = dt::classification_metrics({1, 0, 0, 1}, {0, 1, 1, 0}, 2);
        QCOMPARE(inverse["mcc"], -1.0);
        QVERIFY(std::abs(dt::pearson({1, 2, 3, 4}, {2, 4, 6, 8}) - 1.0) < 1e-12);
        QVERIFY(std::abs(dt::spearman({1, 2, 3, 4}, {1, 4, 9, 16}) - 1.0) < 1e-12);
        QVERIFY(std::abs(dt::spearman({1, 2, 3}, {3, 2, 1}) + 1.0) < 1e-12);
    }

    void jsonlReaderErrors() {
        QTemporaryDir dir;
        const QString p = dir.filePath("train.jsonl");
        writeBytes(p, "{\"input_ids\": [2, 5, 3], \"label\": \"pos\"}\n\n{\"input_ids\": [2, 6, 3], \"label\": \"neg\"}\n");
        auto d = dt::read_tokenized_jsonl(p.toStdString());
        QCOMPARE(d.size(), std::size_t(2));
        QCOMPARE(d.labels, (std::vector<std::string>{"pos", "neg"}));
        QCOMPARE(d.examples[1].label, 1);
        auto expect = [&](const QByteArray& content, const QString& needle) {
            writeBytes(p, content);
            try {
                dt::read_tokenized_jsonl(p.toStdString(), {"pos", "neg"}, false);
                QFAIL("bad data accepted");
            } catch (const dt::Error& e) {
                const QString msg = QString::fromStdString(e.what());
                QVERIFY2(msg.contains(p + ":2") && msg.contains(needle), qPrintable(msg));
            }
        };
        expect("{\"input_ids\": [2], \"label\": \"pos\"}\n{\"input_ids\": [2, \n", "invalid JSON");
        expect("{\"input_ids\": [2], \"label\": \"pos\"}\n{\"input_ids\": [2], \"label\": \"meh\"}\n", "unknown label 'meh'");
        expect("{\"input_ids\": [2], \"label\": \"pos\"}\n{\"input_ids\": [], \"label\": \"pos\"}\n", "empty");
        expect("{\"input_ids\": [2], \"label\": \"pos\"}\n{\"ids\": [2], \"label\": \"pos\"}\n", "input_ids");
    }
};

DT_REGISTER_TEST(TestTrain);

// The GPU path (ctest label cuda): LoRA training on CUDA in each precision reaches the CPU run's
// accuracy, and the trained tensors stay fp32. Skipped where LibTorch sees no CUDA device.
class TestCuda : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void trainsInEachPrecision() {
        if (!torch::cuda::is_available()) QSKIP("no CUDA device: the GPU training path is not exercised here");
        const auto valid = containsTask(32, 2);
        auto c = config(120);
        c.device = "cuda";
        for (const char* precision : {"fp32", "bf16", "fp16"}) {
            auto mg = seqcls();
            auto dg = dt::DeltaSet::apply(*mg, loraSpec());
            c.precision = precision;
            auto res = dt::Trainer(*mg, containsTask(512, 1), &valid, c).run();
            QVERIFY2(res.last_metrics.at("accuracy") >= 0.85, precision);
            for (const auto& p : dt::trainable_parameters(*mg)) QCOMPARE(p.scalar_type(), at::kFloat);
        }
    }
};

DT_REGISTER_TEST(TestCuda);
#include "test_train.moc"
