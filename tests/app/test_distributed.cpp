// Data-parallel training through the `deltatune` CLI: real worker processes on loopback (Gloo over
// 127.0.0.1), bounded in time by DELTATUNE_DIST_TIMEOUT.
#include "test_registry.h"
#include "test_util.h"

#include "dist/process_group.h"
#include "run_history.h"
#include "train/run_folder.h"
#include "io/safetensors.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QProcessEnvironment>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include <csignal>
#include <fstream>

using namespace dttest;

namespace {

struct Proc {
    int code = -1;
    QString out, err;
};

// The CLI with extra environment variables, run to completion (two minutes at most).
Proc runWithEnv(const QStringList& args, const QMap<QString, QString>& vars = {}) {
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    for (auto it = vars.begin(); it != vars.end(); ++it) env.insert(it.key(), it.value());
    p.setProcessEnvironment(env);
    p.start(cliPath(), args);
    if (!p.waitForFinished(120000)) {
        p.kill();
        p.waitForFinished();
        return {};
    }
    return {p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()), QString::fromUtf8(p.readAllStandardError())};
}

// The demo BERT without dropout (so one rank with batch 2b and two ranks with batch b see the same
// function), and a run spec on the demo's reviews task.
void writeRun(const QTemporaryDir& dir, const QString& name, int batch, int steps, int checkpointEvery) {
    const QString model = dir.filePath("model");
    if (!QFileInfo::exists(model + "/config.json")) {
        QDir().mkpath(model);
        const QString demo = QString(DT_SOURCE_DIR) + "/resources/demo/models/synth-bert-small";
        for (const QString& f : QDir(demo).entryList(QDir::Files))
            if (f != QStringLiteral("config.json")) QVERIFY(QFile::copy(demo + "/" + f, model + "/" + f));
        std::ifstream in((demo + "/config.json").toStdString());
        nlohmann::json c = nlohmann::json::parse(in);
        c["hidden_dropout_prob"] = 0.0;
        c["attention_probs_dropout_prob"] = 0.0;
        std::ofstream(model.toStdString() + "/config.json") << c.dump();
    }
    const nlohmann::json spec = {
        {"model", model.toStdString()},
        {"task", (QString(DT_SOURCE_DIR) + "/resources/demo/tasks/reviews/task.json").toStdString()},
        {"delta", {{"method", "lora"}, {"r", 4}}},
        {"training", {{"max_steps", steps}, {"batch_size", batch}, {"lr", 0.005}, {"eval_every", 0}, {"checkpoint_every", checkpointEvery}, {"seed", 3}}}};
    std::ofstream(dir.filePath(name).toStdString()) << spec.dump();
}

std::vector<double> stepLosses(const QString& runDir) {
    std::vector<double> out;
    std::ifstream in((runDir + "/events.jsonl").toStdString());
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line);
        if (j["event"] == "step") out.push_back(j["loss"].get<double>());
    }
    return out;
}

std::map<std::string, at::Tensor> finalDelta(const QString& runDir) {
    std::map<std::string, at::Tensor> out;
    auto f = dt::st::File::open((runDir + "/checkpoints/final/trainable.safetensors").toStdString());
    for (const auto& info : f->tensors())
        if (info.name.rfind("exp_avg", 0) != 0 && info.name.rfind("adam_step", 0) != 0 && info.name.rfind("rng.", 0) != 0)
            out[info.name] = f->tensor(info.name).clone();
    return out;
}

}  // namespace

class TestDistributed : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() {
        if (!dt::have_gloo()) QFAIL("this build has no c10d Gloo backend (install libgloo-dev and reconfigure)");
    }

    void twoRanksEqualOneRankWithTwiceTheBatch() {
        QTemporaryDir dir;
        writeRun(dir, "one.json", 8, 6, 2);
        writeRun(dir, "two.json", 4, 6, 2);
        const Proc one = runWithEnv({"--threads", "1", "train", "--spec", dir.filePath("one.json"), "--out", dir.filePath("A"), "--json"});
        QVERIFY2(one.code == 0, qPrintable(one.err));
        const Proc two = runWithEnv({"train", "--spec", dir.filePath("two.json"), "--out", dir.filePath("B"), "--json", "--nproc", "2"},
                                    {{"DELTATUNE_DIST_TIMEOUT", "20"}});
        QVERIFY2(two.code == 0, qPrintable(two.err));
        QVERIFY2(two.err.contains("[rank 1] joined gloo rank 1/2"), qPrintable(two.err));
        // Rank 0's --json events pass through unprefixed; its summary says two ranks and the bucket's size.
        const auto done = nlohmann::json::parse(two.out.trimmed().split('\n').last().toStdString());
        QCOMPARE(done["world_size"].get<int>(), 2);
        QCOMPARE(done["steps"].get<int>(), 6);
        QCOMPARE(done["allreduce_bytes_per_step"].get<std::int64_t>(), 2048 * 4);  // the LoRA delta's 2,048 floats
        // The same losses and the same delta, to float32 tolerance.
        const auto la = stepLosses(dir.filePath("A")), lb = stepLosses(dir.filePath("B"));
        QCOMPARE(la.size(), std::size_t(6));
        QCOMPARE(lb.size(), std::size_t(6));  // rank 0 alone wrote events: no step twice
        for (std::size_t i = 0; i < la.size(); ++i) QVERIFY2(std::abs(la[i] - lb[i]) <= 1e-5 * std::max(1.0, std::abs(la[i])), qPrintable(QString::number(i)));
        const auto da = finalDelta(dir.filePath("A")), db = finalDelta(dir.filePath("B"));
        QCOMPARE(da.size(), db.size());
        QVERIFY(!da.empty());
        for (const auto& [name, t] : da) {
            QVERIFY2(db.count(name), name.c_str());
            QVERIFY2((t - db.at(name)).abs().max().item<double>() <= 1e-5 * std::max(1.0, t.abs().max().item<double>()), name.c_str());
        }
        // The final evaluation, sharded over the two ranks (rank 0 evaluated half of the 400
        // validation examples), gives the single process's metrics.
        QCOMPARE(done["eval_examples_this_rank"].get<int>(), 200);
        auto evalOf = [](const QString& run) {
            std::ifstream in((run + "/events.jsonl").toStdString());
            std::string line;
            nlohmann::json last;
            while (std::getline(in, line))
                if (line.find("\"event\":\"eval\"") != std::string::npos) last = nlohmann::json::parse(line);
            return last;
        };
        const auto ea = evalOf(dir.filePath("A")), eb = evalOf(dir.filePath("B"));
        QVERIFY(!ea.is_null() && !eb.is_null());
        QCOMPARE(eb["accuracy"].get<double>(), ea["accuracy"].get<double>());
        QCOMPARE(eb["macro_f1"].get<double>(), ea["macro_f1"].get<double>());
        QCOMPARE(eb["confusion"]["counts"], ea["confusion"]["counts"]);
        QVERIFY(std::abs(eb["loss"].get<double>() - ea["loss"].get<double>()) <= 1e-5);

        // run_info.json records the ranks, so the Runs tab's epoch axis counts 2 x 4 examples a step:
        // both runs reach the same epoch at the same step.
        QCOMPARE(dt::run_folder::read_info(dir.filePath("B").toStdString()).world_size, 2);
        QCOMPARE(dt::run_folder::read_info(dir.filePath("A").toStdString()).world_size, 1);
        QVector<double> xa, ya, xb, yb;
        QVERIFY(RunHistory::readSeries(dir.filePath("A"), QStringLiteral("training loss"), QStringLiteral("epoch"), 0, xa, ya));
        QVERIFY(RunHistory::readSeries(dir.filePath("B"), QStringLiteral("training loss"), QStringLiteral("epoch"), 0, xb, yb));
        QCOMPARE(xb.size(), xa.size());
        QVERIFY(!xa.isEmpty() && xa.last() > 0);
        QCOMPARE(xb.last(), xa.last());
        // Rank 0 wrote the only checkpoints: the same set as the single-process run.
        QCOMPARE(QDir(dir.filePath("B/checkpoints")).entryList(QDir::Dirs | QDir::NoDotAndDotDot),
                 QDir(dir.filePath("A/checkpoints")).entryList(QDir::Dirs | QDir::NoDotAndDotDot));
    }

    void ranksWithUnequalTokenCountsGiveTheWholeBatchLoss() {
        // Causal LM examples of very different lengths: each rank's mean loss is weighted by its share
        // of the scored tokens, so 2 ranks x batch 4 follow 1 rank x batch 8 (the mean over all
        // tokens), step by step, and end with the same delta.
        QTemporaryDir dir;
        const std::string demo = std::string(DT_SOURCE_DIR) + "/resources/demo";
        const nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 400}, {"hidden_size", 32},
                                    {"intermediate_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"num_key_value_heads", 2},
                                    {"max_position_embeddings", 256}, {"tie_word_embeddings", false}};
        std::ofstream(dir.filePath("config.json").toStdString()) << cfg.dump();
        Proc p = runWithEnv({"init", dir.filePath("config.json"), dir.filePath("model"), "--seed", "2"});
        QVERIFY2(p.code == 0, qPrintable(p.err));
        QVERIFY(QFile::copy(QString::fromStdString(demo + "/tokenizer.json"), dir.filePath("model/tokenizer.json")));
        {
            std::ofstream data(dir.filePath("train.jsonl").toStdString());
            const char* words[] = {"the", "small", "dog", "sees", "a", "red", "ball", "and", "runs"};
            for (int i = 0; i < 64; ++i) {
                std::string text;
                const int n = 2 + (i * 7) % 23;  // 2 to 24 words: the ranks' token counts differ
                for (int k = 0; k < n; ++k) text += std::string(k ? " " : "") + words[(i + k * 5) % 9];
                data << nlohmann::json({{"text", text}}).dump() << "\n";
            }
        }
        auto spec = [&](int batch) {
            return nlohmann::json{{"model", dir.filePath("model").toStdString()},
                                  {"task", {{"type", "causal_lm"}, {"train", dir.filePath("train.jsonl").toStdString()}, {"fields", {{"text", "text"}}}}},
                                  {"delta", {{"method", "lora"}, {"r", 4}, {"target_modules", {"q_proj", "v_proj"}}}},
                                  {"training", {{"max_steps", 5}, {"batch_size", batch}, {"lr", 0.01}, {"eval_every", 0}, {"seed", 4}}}};
        };
        std::ofstream(dir.filePath("one.json").toStdString()) << spec(8).dump();
        std::ofstream(dir.filePath("two.json").toStdString()) << spec(4).dump();
        const Proc one = runWithEnv({"--threads", "1", "train", "--spec", dir.filePath("one.json"), "--out", dir.filePath("A")});
        QVERIFY2(one.code == 0, qPrintable(one.err));
        const Proc two = runWithEnv({"train", "--spec", dir.filePath("two.json"), "--out", dir.filePath("B"), "--nproc", "2"}, {{"DELTATUNE_DIST_TIMEOUT", "30"}});
        QVERIFY2(two.code == 0, qPrintable(two.err));
        const auto la = stepLosses(dir.filePath("A")), lb = stepLosses(dir.filePath("B"));
        QCOMPARE(la.size(), std::size_t(5));
        QCOMPARE(lb.size(), la.size());
        for (std::size_t i = 0; i < la.size(); ++i)
            QVERIFY2(std::abs(la[i] - lb[i]) <= 1e-5 * std::max(1.0, std::abs(la[i])), qPrintable(QString("step %1: %2 vs %3").arg(i + 1).arg(la[i]).arg(lb[i])));
        const auto da = finalDelta(dir.filePath("A")), db = finalDelta(dir.filePath("B"));
        QVERIFY(!da.empty());
        for (const auto& [name, t] : da)
            QVERIFY2((t - db.at(name)).abs().max().item<double>() <= 1e-5 * std::max(1.0, t.abs().max().item<double>()), name.c_str());
    }

    void textToTextEvaluationIsShardedAndCombined() {
        // A T5 answer task scored by greedy generation: two ranks each generate for half of the
        // validation set, and the combined exact match, F1 and ROUGE-L equal one process's.
        QTemporaryDir dir;
        const std::string demo = std::string(DT_SOURCE_DIR) + "/resources/demo";
        auto spec = [&](int batch, int steps, double lr) {
            return nlohmann::json{{"model", demo + "/models/synth-t5-small"},
                                  {"task", demo + "/tasks/answer/task.json"},
                                  {"delta", {{"method", "lora"}, {"r", 4}}},
                                  {"training", {{"max_steps", steps}, {"batch_size", batch}, {"lr", lr}, {"eval_every", 0}, {"seed", 3}}}};
        };
        std::ofstream(dir.filePath("train.json").toStdString()) << spec(8, 60, 0.02).dump();
        // The same weights on both sides: a delta trained first, then one step at a negligible rate.
        std::ofstream(dir.filePath("one.json").toStdString()) << spec(8, 1, 1e-9).dump();
        std::ofstream(dir.filePath("two.json").toStdString()) << spec(4, 1, 1e-9).dump();
        Proc p = runWithEnv({"--threads", "1", "train", "--spec", dir.filePath("train.json"), "--out", dir.filePath("T")});
        QVERIFY2(p.code == 0, qPrintable(p.err));
        p = runWithEnv({"export", dir.filePath("T"), "--format", "deltatune", "--out", dir.filePath("D")});
        QVERIFY2(p.code == 0, qPrintable(p.err));
        const Proc one = runWithEnv({"--threads", "1", "train", "--spec", dir.filePath("one.json"), "--delta", dir.filePath("D"), "--out", dir.filePath("A"), "--json"});
        QVERIFY2(one.code == 0, qPrintable(one.err));
        const Proc two = runWithEnv({"train", "--spec", dir.filePath("two.json"), "--delta", dir.filePath("D"), "--out", dir.filePath("B"), "--json", "--nproc", "2"},
                                    {{"DELTATUNE_DIST_TIMEOUT", "30"}});
        QVERIFY2(two.code == 0, qPrintable(two.err));
        const auto a = nlohmann::json::parse(one.out.trimmed().split('\n').last().toStdString());
        const auto b = nlohmann::json::parse(two.out.trimmed().split('\n').last().toStdString());
        QCOMPARE(b["eval_examples_this_rank"].get<int>(), 200);  // half of the 400 validation examples
        QVERIFY2(a["exact_match"].get<double>() > 0, "the trained delta answers some questions");
        for (const char* k : {"exact_match", "f1", "rouge_l"}) QCOMPARE(b[k].get<double>(), a[k].get<double>());
        QVERIFY(std::abs(b["loss"].get<double>() - a["loss"].get<double>()) <= 1e-5);
    }

    void killedWorkerStopsTheGroupAndTheRunResumesExactly() {
        QTemporaryDir dir;
        writeRun(dir, "run.json", 4, 400, 20);
        const QMap<QString, QString> env{{"DELTATUNE_DIST_TIMEOUT", "20"}};
        const Proc whole = runWithEnv({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("whole"), "--nproc", "2"}, env);
        QVERIFY2(whole.code == 0, qPrintable(whole.err));

        QProcess p;
        QProcessEnvironment penv = QProcessEnvironment::systemEnvironment();
        penv.insert("DELTATUNE_DIST_TIMEOUT", "20");
        p.setProcessEnvironment(penv);
        p.start(cliPath(), {"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("cut"), "--nproc", "2"});
        QVERIFY(p.waitForStarted());
        // Rank 1's pid from the launcher's first line, then wait for the first periodic checkpoint.
        QString err;
        qint64 rank1 = -1;
        QElapsedTimer t;
        t.start();
        while (t.elapsed() < 60000) {
            p.waitForReadyRead(100);
            err += QString::fromUtf8(p.readAllStandardError());
            const auto m = QRegularExpression("pids (\\d+) (\\d+)").match(err);
            if (m.hasMatch()) rank1 = m.captured(2).toLongLong();
            if (rank1 > 0 && QFileInfo::exists(dir.filePath("cut/checkpoints/latest"))) break;
        }
        QVERIFY2(rank1 > 0 && QFileInfo::exists(dir.filePath("cut/checkpoints/latest")), qPrintable(err));
        QVERIFY(p.state() == QProcess::Running);
        ::kill(static_cast<pid_t>(rank1), SIGKILL);
        t.restart();
        QVERIFY(p.waitForFinished(20000));  // the group stops within seconds, not at the 20 s timeout
        err += QString::fromUtf8(p.readAllStandardError());
        QVERIFY2(t.elapsed() < 10000, qPrintable(QString::number(t.elapsed())));
        QVERIFY(p.exitCode() != 0);
        QVERIFY2(err.contains("error: rank 1 was killed by signal 9"), qPrintable(err));
        QVERIFY(!QFileInfo::exists(dir.filePath("cut/checkpoints/final")));

        // The last good checkpoint is intact: resuming on two ranks ends with the uninterrupted run's delta, bit for bit.
        const Proc resumed = runWithEnv({"resume", dir.filePath("cut"), "--nproc", "2"}, env);
        QVERIFY2(resumed.code == 0, qPrintable(resumed.err));
        const auto a = finalDelta(dir.filePath("whole")), b = finalDelta(dir.filePath("cut"));
        QCOMPARE(a.size(), b.size());
        for (const auto& [name, x] : a) QVERIFY2(torch::equal(x, b.at(name)), name.c_str());
    }

    void twoNodesStartedByHand() {
        // What docs/distributed.md's two-node commands do, on one machine: each "node" is a process
        // started with its own RANK and the shared WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
        QTemporaryDir dir;
        writeRun(dir, "run.json", 4, 8, 4);
        auto start = [&](QProcess& p, int rank, const QString& spec, const QString& port, const QString& out) {
            QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
            env.insert("WORLD_SIZE", "2");
            env.insert("RANK", QString::number(rank));
            env.insert("LOCAL_RANK", "0");
            env.insert("MASTER_ADDR", "127.0.0.1");
            env.insert("MASTER_PORT", port);
            env.insert("DELTATUNE_DIST_TIMEOUT", "20");
            p.setProcessEnvironment(env);
            p.start(cliPath(), {"--threads", "1", "train", "--spec", dir.filePath(spec), "--out", dir.filePath(out), "--json"});
        };
        QProcess node0, node1;
        start(node1, 1, "run.json", "29741", "nodes");  // the order does not matter: rank 1 waits for rank 0's store
        start(node0, 0, "run.json", "29741", "nodes");
        QVERIFY(node0.waitForFinished(60000) && node1.waitForFinished(60000));
        QVERIFY2(node0.exitCode() == 0, node0.readAllStandardError().constData());
        QVERIFY2(node1.exitCode() == 0, node1.readAllStandardError().constData());
        const auto done = nlohmann::json::parse(QString::fromUtf8(node0.readAllStandardOutput()).trimmed().split('\n').last().toStdString());
        QCOMPARE(done["world_size"].get<int>(), 2);
        QVERIFY(node1.readAllStandardOutput().trimmed().isEmpty());  // rank 1 prints no events
        QCOMPARE(stepLosses(dir.filePath("nodes")).size(), std::size_t(8));

        // Ranks started with another training seed (another data order), or with deltas that start
        // different (another delta seed), are stopped by the start-up checks, by name.
        nlohmann::json base;
        {
            std::ifstream in(dir.filePath("run.json").toStdString());
            base = nlohmann::json::parse(in);
        }
        nlohmann::json seed = base, delta = base;
        seed["training"]["seed"] = 4;
        delta["delta"]["seed"] = 9;
        std::ofstream(dir.filePath("seed.json").toStdString()) << seed.dump();
        std::ofstream(dir.filePath("delta.json").toStdString()) << delta.dump();
        int port = 29743;
        for (const auto& [spec, message] : std::vector<std::pair<QString, QString>>{
                 {"seed.json", "the ranks disagree on the training settings or data"}, {"delta.json", "the ranks' deltas differ at step 0"}}) {
            QProcess a, b;
            start(a, 0, "run.json", QString::number(port), "mismatch-" + spec);
            start(b, 1, spec, QString::number(port), "mismatch-" + spec);
            ++port;
            QVERIFY(a.waitForFinished(60000) && b.waitForFinished(60000));
            QCOMPARE(a.exitCode(), 2);
            QCOMPARE(b.exitCode(), 2);
            const QString aErr = QString::fromUtf8(a.readAllStandardError()), bErr = QString::fromUtf8(b.readAllStandardError());
            QVERIFY2(aErr.contains(message) && bErr.contains(message), qPrintable(aErr + bErr));
        }
    }

    void oneRankGroupEqualsNoGroup() {
        // A one-rank group (WORLD_SIZE=1 with a backend named: gpu-check.sh's NCCL smoke test, here
        // Gloo) goes through every collective and trains exactly as no group does.
        QTemporaryDir dir;
        writeRun(dir, "run.json", 4, 6, 0);
        const Proc alone = runWithEnv({"--threads", "1", "train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("alone"), "--json"});
        QVERIFY2(alone.code == 0, qPrintable(alone.err));
        const Proc group = runWithEnv({"--threads", "1", "train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("group"), "--json"},
                                      {{"WORLD_SIZE", "1"}, {"RANK", "0"}, {"MASTER_PORT", "29751"}, {"DELTATUNE_DIST_BACKEND", "gloo"}});
        QVERIFY2(group.code == 0, qPrintable(group.err));
        QVERIFY2(group.err.contains("joined gloo rank 0/1"), qPrintable(group.err));
        const auto done = nlohmann::json::parse(group.out.trimmed().split('\n').last().toStdString());
        QCOMPARE(done["world_size"].get<int>(), 1);
        QCOMPARE(done["allreduce_bytes_per_step"].get<std::int64_t>(), 2048 * 4);
        QCOMPARE(stepLosses(dir.filePath("group")), stepLosses(dir.filePath("alone")));
        const auto a = finalDelta(dir.filePath("alone")), b = finalDelta(dir.filePath("group"));
        for (const auto& [name, x] : a) QVERIFY2(torch::equal(x, b.at(name)), name.c_str());
        // Backends this build lacks, or that do not exist, are named.
        Proc r = runWithEnv({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("x")},
                            {{"WORLD_SIZE", "1"}, {"RANK", "0"}, {"DELTATUNE_DIST_BACKEND", "mpi"}});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("unknown backend 'mpi'"), qPrintable(r.err));
        if (!dt::have_nccl()) {
            r = runWithEnv({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("x")},
                           {{"WORLD_SIZE", "1"}, {"RANK", "0"}, {"DELTATUNE_DIST_BACKEND", "nccl"}});
            QCOMPARE(r.code, 2);
            QVERIFY2(r.err.contains("this build has no NCCL backend"), qPrintable(r.err));
        }
    }

    void badRendezvousFailsClearly() {
        QTemporaryDir dir;
        writeRun(dir, "run.json", 4, 4, 0);
        const QStringList train = {"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("r")};
        // Nobody serves the port rank 1 was given: a clear message within the timeout.
        QElapsedTimer t;
        t.start();
        Proc r = runWithEnv(train, {{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1"}, {"DELTATUNE_DIST_TIMEOUT", "3"}});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("rank 1 cannot reach the rendezvous at 127.0.0.1:1 within 3 s"), qPrintable(r.err));
        QVERIFY2(!r.err.trimmed().contains('\n'), qPrintable(r.err));
        QVERIFY2(t.elapsed() < 30000, qPrintable(QString::number(t.elapsed())));
        // Rank 0 alone in a group of two: the missing rank is named.
        r = runWithEnv(train, {{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "29731"}, {"DELTATUNE_DIST_TIMEOUT", "2"}});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("rank 1 did not join the rendezvous at 127.0.0.1:29731 within 2 s"), qPrintable(r.err));
        QVERIFY(!QFileInfo::exists(dir.filePath("r/events.jsonl")));
        // Two ranks that disagree on WORLD_SIZE: rank 0 says who has what.
        QProcess other;
        QProcessEnvironment oenv = QProcessEnvironment::systemEnvironment();
        for (const auto& [k, v] : std::vector<std::pair<QString, QString>>{
                 {"WORLD_SIZE", "3"}, {"RANK", "1"}, {"MASTER_PORT", "29733"}, {"DELTATUNE_DIST_TIMEOUT", "4"}})
            oenv.insert(k, v);
        other.setProcessEnvironment(oenv);
        other.start(cliPath(), train);
        r = runWithEnv(train, {{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "29733"}, {"DELTATUNE_DIST_TIMEOUT", "4"}});
        QVERIFY(other.waitForFinished(30000));
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("rank 1 has WORLD_SIZE 3, rank 0 has 2"), qPrintable(r.err));
        QCOMPARE(other.exitCode(), 2);
        // Rank 1 fails too, by name: rank 0's WORLD_SIZE differs, or rank 2 is missing, or rank 0 is
        // already gone (which it sees first is a race).
        const QString otherErr = QString::fromUtf8(other.readAllStandardError());
        QVERIFY2(otherErr.startsWith("error: ") && (otherErr.contains("rank 0 has WORLD_SIZE 2, rank 1 has 3") || otherErr.contains("rendezvous at 127.0.0.1:29733")),
                 qPrintable(otherErr));
        // Malformed environment: the variable is named.
        r = runWithEnv(train, {{"WORLD_SIZE", "2"}, {"RANK", "2"}});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("RANK 2 is not below WORLD_SIZE 2"), qPrintable(r.err));
        r = runWithEnv(train, {{"WORLD_SIZE", "two"}});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("WORLD_SIZE='two'"), qPrintable(r.err));
    }
};

DT_REGISTER_TEST(TestDistributed);
#include "test_distributed.moc"
