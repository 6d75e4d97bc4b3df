// The `deltatune` CLI as a user runs it: real processes, real files, exit codes and messages.
#include "test_registry.h"
#include "test_util.h"

#include "core/devices.h"
#include "delta/method.h"
#include "demo/synth_language.h"
#include "experiments/comparison.h"
#include "experiments/result_matrix.h"
#include "models/config.h"
#include "models/loader.h"
#include "tokenizers/tokenizer.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "train/run_folder.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <QDir>
#include <QDirIterator>
#include <QDateTime>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QElapsedTimer>
#include <QRegularExpression>
#include <QTest>

#include <csignal>
#include <functional>
#include <random>

using namespace dttest;

namespace {

using Result = CliResult;

// Bad input: exit 2, exactly one line on stderr naming what is wrong, no stack trace.
void expectBadInput(const Result& r, const QStringList& needles) {
    QCOMPARE(r.code, 2);
    const QString err = r.err.trimmed();
    QVERIFY2(!err.contains('\n'), qPrintable("more than one line: " + err));
    QVERIFY2(err.startsWith("error: "), qPrintable(err));
    for (const auto& n : needles) QVERIFY2(err.contains(n), qPrintable("'" + n + "' not in: " + err));
}

// Each step's loss as events.jsonl records it, the last record of a step winning (a resumed run
// repeats the steps after its checkpoint). A torn line would throw.
std::map<int, std::string> lossesByStep(const QString& events) {
    std::map<int, std::string> by_step;
    QFile f(events);
    f.open(QIODevice::ReadOnly);
    for (const auto& line : f.readAll().split('\n')) {
        if (line.isEmpty()) continue;
        auto j = nlohmann::json::parse(line.toStdString());
        if (j["event"] == "step") by_step[j["step"].get<int>()] = j["loss"].dump();
    }
    return by_step;
}

}  // namespace

class TestCli : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void methodsJsonIsTheEngineTable() {
        // `deltatune methods --json` prints the engine's declarations: what the panel and PEFT export read.
        auto r = runCli({"methods", "--json"});
        QCOMPARE(r.code, 0);
        const auto j = nlohmann::json::parse(r.out.toStdString());
        QCOMPARE(j.size(), dt::method_table().size());
        for (std::size_t i = 0; i < j.size(); ++i) {
            const dt::MethodInfo& m = dt::method_table()[i];
            QCOMPARE(j[i], m.to_json());
            std::vector<std::string> names;
            for (const auto& o : j[i]["options"]) {
                QVERIFY2(!o["help"].get<std::string>().empty(), o.dump().c_str());
                names.push_back(o["name"].get<std::string>());
            }
            QCOMPARE(names, m.fields());
        }
        const auto& lora = j[0];
        QCOMPARE(lora["name"].get<std::string>(), std::string("lora"));
        for (const auto& o : lora["options"])
            if (o["name"] == "lora_alpha") {
                QCOMPARE(o["default"].get<double>(), 8.0);  // PEFT's, whatever r is
                QCOMPARE(o["peft"].get<std::string>(), std::string("lora_alpha"));
            }
        r = runCli({"methods"});
        QCOMPARE(r.code, 0);
        QVERIFY(r.out.contains(QLatin1String("lora_alpha")) && r.out.contains(QLatin1String("[PEFT: lora_alpha]")));
    }

    void inspectJson() {
        auto r = runCli({"inspect", hf("bert-seqcls"), "--json"});
        QCOMPARE(r.code, 0);
        auto j = nlohmann::json::parse(r.out.toStdString());
        QCOMPARE(j["architecture"].get<std::string>(), std::string("BertForSequenceClassification"));
        auto w = dt::st::File::open((hf("bert-seqcls") + "/model.safetensors").toStdString());
        std::int64_t stored = 0;
        for (const auto& t : w->tensors()) stored += w->tensor(t.name).numel();
        QCOMPARE(j["total_params"].get<std::int64_t>(), stored);
        bool found = false;
        for (const auto& m : j["modules"])
            if (m["path"] == "classifier") {
                found = true;
                QCOMPARE(m["type"].get<std::string>(), std::string("Linear"));
                QCOMPARE(m["params"].get<std::int64_t>(), 3 * 48 + 3);
                QCOMPARE(m["total_params"].get<std::int64_t>(), 3 * 48 + 3);
            }
        QVERIFY(found);
    }

    void demoDataAndPretrain() {
        QTemporaryDir dir;
        auto r = runCli({"demo", "data", dir.filePath("d"), "--corpus-lines", "3000", "--train", "16", "--valid", "8"});
        QCOMPARE(r.code, 0);
        for (const char* f : {"tokenizer.json", "corpus.txt", "config-small.json", "config-base.json", "tasks/news/task.json"})
            QVERIFY2(QFile::exists(dir.filePath("d/") + f), f);
        // A short masked-LM pretraining: the held-out masked-token accuracy rises and the folder is complete.
        r = runCli({"--threads", "2", "pretrain", "--model", dir.filePath("d/config-small.json"), "--corpus", dir.filePath("d/corpus.txt"),
                    "--tokenizer", dir.filePath("d/tokenizer.json"), "--out", dir.filePath("m"), "--steps", "60", "--batch", "32",
                    "--seq", "32", "--lr", "0.003"});
        QCOMPARE(r.code, 0);
        for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "pretrain.json"})
            QVERIFY2(QFile::exists(dir.filePath("m/") + f), f);
        const auto info = dt::json::load_file(dir.filePath("m/pretrain.json").toStdString());
        QVERIFY(info["held_out_after"]["accuracy"].get<double>() > info["held_out_before"]["accuracy"].get<double>() + 0.1);
        QVERIFY(info["held_out_after"]["loss"].get<double>() < 0.8 * info["held_out_before"]["loss"].get<double>());
        QCOMPARE(info["steps"].get<int>(), 60);
        // Same arguments, same thread count: the same bytes.
        r = runCli({"--threads", "2", "pretrain", "--model", dir.filePath("d/config-small.json"), "--corpus", dir.filePath("d/corpus.txt"),
                    "--tokenizer", dir.filePath("d/tokenizer.json"), "--out", dir.filePath("m-again"), "--steps", "60", "--batch", "32",
                    "--seq", "32", "--lr", "0.003"});
        QCOMPARE(r.code, 0);
        for (const char* f : {"/model.safetensors", "/pretrain.json"}) {
            QFile a(dir.filePath("m") + f), b(dir.filePath("m-again") + f);
            QVERIFY(a.open(QIODevice::ReadOnly) && b.open(QIODevice::ReadOnly));
            QVERIFY2(a.readAll() == b.readAll(), f);
        }
        // The result is a model folder the rest of the tool opens.
        r = runCli({"inspect", dir.filePath("m")});
        QCOMPARE(r.code, 0);
        // A config whose vocabulary is smaller than the tokenizer's is refused before training, naming the file.
        auto cfg = dt::json::load_file(dir.filePath("d/config-small.json").toStdString());
        cfg["vocab_size"] = 100;
        dttest::writeBytes(dir.filePath("small-vocab.json"), QByteArray::fromStdString(cfg.dump()));
        r = runCli({"pretrain", "--model", dir.filePath("small-vocab.json"), "--corpus", dir.filePath("d/corpus.txt"), "--tokenizer",
                    dir.filePath("d/tokenizer.json"), "--out", dir.filePath("m2")});
        expectBadInput(r, {"small-vocab.json", "vocab_size"});
        QVERIFY(!QFile::exists(dir.filePath("m2")));
        r = runCli({"pretrain", "--model", dir.filePath("d/config-small.json"), "--corpus", dir.filePath("nope.txt"), "--tokenizer",
                    dir.filePath("d/tokenizer.json"), "--out", dir.filePath("m3")});
        expectBadInput(r, {"nope.txt"});
        // Transfer spec errors name the field.
        dttest::writeBytes(dir.filePath("t.json"), R"({"model": "tiny-bert", "tasks": ["a/task.json"], "output_dir": "x"})");
        expectBadInput(runCli({"transfer", "--spec", dir.filePath("t.json")}), {"t.json", "tasks"});
    }

    void inspectTextFolds() {
        auto r = runCli({"inspect", "tiny-bert"});
        QCOMPARE(r.code, 0);
        QVERIFY2(r.out.contains("layer.0-3  BertLayer x4"), qPrintable(r.out));
        QVERIFY(r.out.startsWith("BertForMaskedLM"));
    }

    void selectWithLayers() {
        auto r = runCli({"select", hf("bert-mlm"), "--targets", "query", "value", "--layers", "1"});
        QCOMPARE(r.code, 0);
        QCOMPARE(r.out.trimmed().split('\n'), (QStringList{"bert.encoder.layer.1.attention.self.query",
                                                           "bert.encoder.layer.1.attention.self.value"}));
        auto all = runCli({"select", "tiny-bert", "--all-linear", "--json"});
        QCOMPARE(all.code, 0);
        QCOMPARE(nlohmann::json::parse(all.out.toStdString())["count"].get<int>(), 25);
    }

    void forwardMatchesReference() {
        QTemporaryDir dir;
        const QString out = dir.filePath("out.safetensors");
        auto r = runCli({"forward", hf("bert-seqcls"), "--input", hf("bert-seqcls") + "/reference.safetensors", "--output", out});
        QCOMPARE(r.code, 0);
        auto got = dt::st::File::open(out.toStdString());
        auto ref = dt::st::File::open((hf("bert-seqcls") + "/reference.safetensors").toStdString());
        for (const char* name : {"logits", "last_hidden_state", "pooler_output", "hidden_states_2"})
            QVERIFY2(toleranceRatio(got->tensor(name), ref->tensor(name)) <= 1.0, name);
    }

    void fixtureParityScriptOnCpu() {
        // tools/fixture_parity.py (gpu-check.sh's parity step) on this machine's CPU: every fixture passes.
        QTemporaryDir dir;
        const QString script = QString(DT_SOURCE_DIR) + "/tools/fixture_parity.py";
        QProcess p;
        p.start("python3", {script, "--cli", dttest::cliPath(), "--device", "cpu", "--fixtures", QString(DT_SOURCE_DIR) + "/tests/data/hf", "--out",
                            dir.filePath("all")});
        QVERIFY(p.waitForFinished(240000));
        const QString out = QString::fromUtf8(p.readAllStandardOutput());
        QVERIFY2(p.exitCode() == 0, qPrintable(out + p.readAllStandardError()));
        QVERIFY2(out.contains("parity on cpu: 18 of 18 checks passed"), qPrintable(out));
        // A fixture whose reference logits are off by 1% of their range fails, by name; so does a wrong greedy id.
        QDir().mkpath(dir.filePath("bad/gpt2-lm"));
        for (const char* f : {"config.json", "generation_config.json", "model.safetensors"})
            QVERIFY(QFile::copy(hf("gpt2-lm") + "/" + f, dir.filePath("bad/gpt2-lm/") + f));
        auto patch = [&](const QString& from, const QString& to, const std::string& name, const std::function<at::Tensor(at::Tensor)>& change) {
            auto file = dt::st::File::open(from.toStdString());
            dt::st::NamedTensors t;
            for (const auto& info : file->tensors())
                t.emplace_back(info.name, info.name == name ? change(file->tensor(info.name).clone()) : file->tensor(info.name).clone());
            dt::st::save(to.toStdString(), t, {});
        };
        patch(hf("gpt2-lm") + "/reference.safetensors", dir.filePath("bad/gpt2-lm/reference.safetensors"), "logits",
              [](at::Tensor x) { return x + 0.01 * x.abs().max(); });
        patch(hf("gpt2-lm") + "/generate.safetensors", dir.filePath("bad/gpt2-lm/generate.safetensors"), "generated_ids", [](at::Tensor x) {
            x.index_put_({0, -1}, (x.index({0, -1}) + 1) % 300);
            return x;
        });
        p.start("python3", {script, "--cli", dttest::cliPath(), "--device", "cpu", "--fixtures", dir.filePath("bad"), "--out", dir.filePath("bad-out")});
        QVERIFY(p.waitForFinished(60000));
        const QString bad = QString::fromUtf8(p.readAllStandardOutput());
        QCOMPARE(p.exitCode(), 1);
        QVERIFY2(bad.contains(QRegularExpression("FAIL gpt2-lm +forward +logits\\+last_hidden_state: max error 1\\.0e-02")), qPrintable(bad));
        QVERIFY2(bad.contains(QRegularExpression("FAIL gpt2-lm +generate +2 x 16 greedy ids differ")), qPrintable(bad));
        QVERIFY2(bad.contains("parity on cpu: 0 of 2 checks passed"), qPrintable(bad));
    }

    void forwardT5WritesEncoderAndDecoderStates() {
        QTemporaryDir dir;
        const QString out = dir.filePath("out.safetensors"), ref_path = hf("t5-gated-cg") + "/reference.safetensors";
        auto r = runCli({"forward", hf("t5-gated-cg"), "--input", ref_path, "--output", out});
        QCOMPARE(r.code, 0);
        auto got = dt::st::File::open(out.toStdString());
        auto ref = dt::st::File::open(ref_path.toStdString());
        for (const char* name : {"logits", "last_hidden_state", "encoder_last_hidden_state", "encoder_hidden_states_0", "encoder_hidden_states_3",
                                 "decoder_hidden_states_1", "decoder_hidden_states_2"})
            QVERIFY2(toleranceRatio(got->tensor(name), ref->tensor(name)) <= 1.0, name);
        QVERIFY(!got->contains("hidden_states_0"));
        QVERIFY(!got->contains("loss"));
        // labels alone: shifted right into decoder_input_ids, and the loss is written.
        const QString gen = hf("t5-gated-cg") + "/generate.safetensors";
        QCOMPARE(runCli({"forward", hf("t5-gated-cg"), "--input", gen, "--output", out}).code, 0);
        auto with_loss = dt::st::File::open(out.toStdString());
        QVERIFY(toleranceRatio(with_loss->tensor("loss"), dt::st::File::open(gen.toStdString())->tensor("loss")) <= 1.0);
        // neither decoder_input_ids nor labels: one line naming the input file and the tensor.
        const QString in = dir.filePath("enc-only.safetensors"), out2 = dir.filePath("out2.safetensors");
        dt::st::save(in.toStdString(), {{"input_ids", ref->tensor("input_ids")}});
        expectBadInput(runCli({"forward", hf("t5-gated-cg"), "--input", in, "--output", out2}), {in, "decoder_input_ids"});
        QVERIFY(!QFile::exists(out2));
    }

    void generateWritesTransformersIds() {
        QTemporaryDir dir;
        for (const char* name : {"gpt2-lm", "t5-gated-cg"}) {
            const QString gen = hf(name) + "/generate.safetensors", out = dir.filePath(QString(name) + ".safetensors");
            auto r = runCli({"generate", hf(name), "--input", gen, "--output", out, "--max-new-tokens", "6"});
            QVERIFY2(r.code == 0, qPrintable(r.err));
            QVERIFY2(torch::equal(dt::st::File::open(out.toStdString())->tensor("generated_ids"), dt::st::File::open(gen.toStdString())->tensor("generated_ids")),
                     name);
        }
        // No input_ids, a bad sampling option, no tokenizer for a prompt: one line, exit 2, nothing written.
        const QString empty = dir.filePath("empty.safetensors"), out = dir.filePath("none.safetensors");
        dt::st::save(empty.toStdString(), {{"attention_mask", torch::ones({1, 3}, torch::kLong)}});
        expectBadInput(runCli({"generate", hf("gpt2-lm"), "--input", empty, "--output", out}), {empty, "input_ids"});
        expectBadInput(runCli({"generate", hf("gpt2-lm"), "--input", hf("gpt2-lm") + "/generate.safetensors", "--output", out, "--top-p", "0"}),
                       {"top_p"});
        expectBadInput(runCli({"generate", "tiny-llama", "--prompt", "hello"}), {"tokenizer"});
        expectBadInput(runCli({"generate", hf("gpt2-lm"), "--input", hf("gpt2-lm") + "/generate.safetensors", "--output", out, "--num-beams", "2",
                               "--early-stopping", "sometimes"}),
                       {"early_stopping"});
        QVERIFY(!QFile::exists(out));
        // Beam search from the command line: ids for every row, each starting with the prompt.
        const QString beams = dir.filePath("beams.safetensors");
        auto r = runCli({"generate", hf("gpt2-lm"), "--input", hf("gpt2-lm") + "/generate.safetensors", "--output", beams, "--num-beams", "3",
                         "--max-new-tokens", "4"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const at::Tensor in = dt::st::File::open((hf("gpt2-lm") + "/generate.safetensors").toStdString())->tensor("input_ids");
        const at::Tensor got = dt::st::File::open(beams.toStdString())->tensor("generated_ids");
        QCOMPARE(got.size(0), in.size(0));
        QVERIFY(got.size(1) > in.size(1) && got.size(1) <= in.size(1) + 4);
        QVERIFY(torch::equal(got.narrow(1, 0, in.size(1)), in));
        // A prompt to the demo T5 with beams prints the best beam's text.
        r = runCli({"generate", QString(DT_SOURCE_DIR) + "/resources/demo/models/synth-t5-small", "--prompt",
                    "the food was [MASK] . overall it was good .", "--num-beams", "4", "--max-new-tokens", "6"});
        QVERIFY2(r.code == 0 && !r.out.trimmed().isEmpty(), qPrintable(r.err));
    }

    void scaleRunsAndRefusesBadSpecs() {
        QTemporaryDir dir;
        const QString demo = QString(DT_SOURCE_DIR) + "/resources/demo";
        const nlohmann::json spec = {{"models", {(demo + "/models/synth-bert-small").toStdString(), (demo + "/models/synth-bert-base").toStdString()}},
                                     {"task", (demo + "/tasks/news/task.json").toStdString()},
                                     {"methods", {"lora"}},
                                     {"training", {{"max_steps", 10}, {"batch_size", 8}, {"eval_every", 5}}},
                                     {"output_dir", dir.filePath("out").toStdString()}};
        dttest::writeBytes(dir.filePath("s.json"), QByteArray::fromStdString(spec.dump()));
        auto r = runCli({"scale", "--spec", dir.filePath("s.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(r.out.contains("synth-bert-small") && r.out.contains("synth-bert-base"));
        for (const char* f : {"scale.json", "scale.csv", "scale_curves.csv"}) QVERIFY(QFile::exists(dir.filePath(QStringLiteral("out/") + f)));
        nlohmann::json bad = spec;
        bad["models"] = {(demo + "/models/synth-bert-small").toStdString()};
        dttest::writeBytes(dir.filePath("bad.json"), QByteArray::fromStdString(bad.dump()));
        expectBadInput(runCli({"scale", "--spec", dir.filePath("bad.json")}), {"bad.json", "models"});
        bad = spec;
        bad["method"] = "lora";
        dttest::writeBytes(dir.filePath("bad.json"), QByteArray::fromStdString(bad.dump()));
        expectBadInput(runCli({"scale", "--spec", dir.filePath("bad.json")}), {"bad.json", "method"});
    }

    void badInputExitsTwoWithOneLine() {
        QTemporaryDir dir;
        // truncated weights
        const QString trunc = dir.filePath("trunc");
        QDir().mkpath(trunc);
        QFile::copy(hf("bert-mlm") + "/config.json", trunc + "/config.json");
        QFile::copy(hf("bert-mlm") + "/model.safetensors", trunc + "/model.safetensors");
        QFile f(trunc + "/model.safetensors");
        QVERIFY(f.resize(f.size() / 2));
        expectBadInput(runCli({"inspect", trunc}), {trunc + "/model.safetensors", "truncated"});
        // config with a missing field
        const QString cfg = dir.filePath("cfg");
        QDir().mkpath(cfg);
        QFile::copy(hf("bert-mlm") + "/model.safetensors", cfg + "/model.safetensors");
        QFile c(hf("bert-mlm") + "/config.json");
        QVERIFY(c.open(QIODevice::ReadOnly));
        writeBytes(cfg + "/config.json", c.readAll().replace("\"vocab_size\": 300", "\"vocab_sz\": 300"));
        expectBadInput(runCli({"inspect", cfg}), {cfg + "/config.json", "vocab_size"});
        // a size bomb: exit 2 naming the fields, before allocating (it was "internal error", exit 3)
        {
            QFile again(hf("bert-mlm") + "/config.json");
            QVERIFY(again.open(QIODevice::ReadOnly));
            writeBytes(cfg + "/config.json",
                       again.readAll().replace("\"hidden_size\": 48", "\"hidden_size\": 262144").replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 4000"));
        }
        expectBadInput(runCli({"inspect", cfg}), {cfg + "/config.json", "hidden_size 262144", "num_hidden_layers 4000"});
        // a folder with no weights
        const QString empty = dir.filePath("empty");
        QDir().mkpath(empty);
        QFile::copy(hf("bert-mlm") + "/config.json", empty + "/config.json");
        expectBadInput(runCli({"inspect", empty}), {empty, "no model.safetensors"});
        // unknown architecture / missing folder / unknown option
        expectBadInput(runCli({"inspect", dir.filePath("nothing")}), {"nothing"});
        expectBadInput(runCli({"inspect", "tiny-bert", "--frobnicate"}), {"--frobnicate"});
        // forward with ids outside the vocabulary: no output file is left behind
        const QString in = dir.filePath("in.safetensors"), out = dir.filePath("out.safetensors");
        dt::st::save(in.toStdString(), {{"input_ids", torch::tensor({{2, 999, 3}}, torch::kLong)}});
        expectBadInput(runCli({"forward", hf("bert-mlm"), "--input", in, "--output", out}), {in, "999", "vocabulary"});
        QVERIFY(!QFile::exists(out));
        QCOMPARE(QDir(dir.path()).entryList({"out.safetensors*"}, QDir::Files), QStringList{});
    }

    void inspectWithDelta() {
        QTemporaryDir dir;
        const QString spec = dir.filePath("spec.json");
        writeBytes(spec, R"({"methods": [{"method": "lora", "r": 8}, {"method": "bitfit", "groups": ["intermediate"]}]})");
        auto r = runCli({"inspect", "tiny-bert", "--delta", spec, "--json"});
        QCOMPARE(r.code, 0);
        auto j = nlohmann::json::parse(r.out.toStdString());
        QCOMPARE(j["trainable_params"].get<std::int64_t>(), 4 * 2 * 8 * 128 + 4 * 256);
        QCOMPARE(j["accounting"]["trainable_params"].get<std::int64_t>(), j["trainable_params"].get<std::int64_t>());
        int seen = 0;
        for (const auto& m : j["modules"]) {
            if (m["path"] == "bert.encoder.layer.0.attention.self.query") {
                QCOMPARE(m["trainable"].get<std::int64_t>(), 8 * 128);
                ++seen;
            }
            if (m["path"] == "bert.encoder.layer.0.intermediate.dense") {
                QCOMPARE(m["trainable"].get<std::int64_t>(), 256);
                ++seen;
            }
            if (m["path"] == "bert.encoder.layer.0.attention.self.key") {
                QCOMPARE(m["trainable"].get<std::int64_t>(), 0);
                ++seen;
            }
        }
        QCOMPARE(seen, 3);
        auto text = runCli({"inspect", "tiny-bert", "--delta", "lora"});
        QCOMPARE(text.code, 0);
        QVERIFY2(text.out.contains("trainable params: 8192 || all params: 287424 || trainable%: 2.8501"), qPrintable(text.out));
        writeBytes(spec, R"({"method": "lora", "r": -1})");
        expectBadInput(runCli({"inspect", "tiny-bert", "--delta", spec}), {spec, "'r' must be at least 1"});
        expectBadInput(runCli({"inspect", "tiny-bert", "--delta", "lorax"}), {"unknown method 'lorax'"});
    }

    void forwardWithDeltaAndBenchStep() {
        QTemporaryDir dir;
        const QString out = dir.filePath("out.safetensors");
        auto r = runCli({"forward", hf("bert-seqcls"), "--delta", "lora", "--input", hf("bert-seqcls") + "/reference.safetensors", "--output", out});
        QCOMPARE(r.code, 0);  // LoRA at init: same logits as the base
        auto got = dt::st::File::open(out.toStdString());
        auto ref = dt::st::File::open((hf("bert-seqcls") + "/reference.safetensors").toStdString());
        QVERIFY(toleranceRatio(got->tensor("logits"), ref->tensor("logits")) <= 1.0);
        // A PEFT adapter folder works as --delta too: the outputs are PEFT's.
        const QString peft = hf("peft/bert-seqcls-ia3");
        auto p = runCli({"forward", hf("bert-seqcls"), "--delta", peft, "--input", peft + "/reference.safetensors", "--output", out});
        QCOMPARE(p.code, 0);
        auto pgot = dt::st::File::open(out.toStdString());
        auto pref = dt::st::File::open((peft + "/reference.safetensors").toStdString());
        QVERIFY(toleranceRatio(pgot->tensor("logits"), pref->tensor("logits")) <= 1.0);
        auto b = runCli({"bench", "step", "tiny-bert", "--delta", "lora", "full", "--batch", "1", "--seq", "8", "--steps", "1"});
        QCOMPARE(b.code, 0);
        QVERIFY2(b.out.contains("lora") && b.out.contains("full") && b.out.contains("1.00"), qPrintable(b.out));
    }

    void doctorPassesOnCpuAndNamesAnInjectedFailure() {
        // The self-test a user runs first: every check passes on this machine's CPU, in seconds.
        auto r = runCli({"--threads", "2", "doctor", "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.out + r.err));
        const auto j = nlohmann::json::parse(r.out.toStdString());
        QCOMPARE(j["ok"].get<bool>(), true);
        QCOMPARE(j["device"].get<std::string>(), std::string("cpu"));
        QCOMPARE(j["threads"].get<int>(), 2);
        QVERIFY(!j["blas"].get<std::string>().empty());
        QVERIFY(!j["cuda_reason"].get<std::string>().empty() || !j["cuda_devices"].empty());
        std::vector<std::string> names;
        for (const auto& c : j["checks"]) {
            QVERIFY2(c["ok"].get<bool>(), c.dump().c_str());
            names.push_back(c["name"].get<std::string>());
        }
        const std::vector<std::string> want = {"forward:tiny-bert", "forward:tiny-llama", "forward:tiny-t5", "forward:tiny-gptneox", "train:fp32",
                                               "train:bf16", "generate:tiny-llama", "generate:tiny-t5", "save-load"};
        QCOMPARE(names, want);
        QVERIFY(j["step_ms"]["fp32"].get<double>() > 0);
        QVERIFY(j["step_ms"]["bf16"].get<double>() > 0);
        QVERIFY(j["peak_rss_bytes"].get<std::int64_t>() > 0);

        // Each check's own comparison catches a corrupted result: exit 1, the check named, the rest pass.
        for (const QString& check : {QStringLiteral("forward:tiny-llama"), QStringLiteral("train:bf16"), QStringLiteral("generate:tiny-t5"),
                                     QStringLiteral("save-load")}) {
            auto f = runCli({"--threads", "2", "doctor", "--json", "--inject-failure", check});
            QCOMPARE(f.code, 1);
            QVERIFY2(f.err.contains("1 of 9 checks failed") && f.err.contains(check), qPrintable(f.err));
            const auto fj = nlohmann::json::parse(f.out.toStdString());
            QCOMPARE(fj["ok"].get<bool>(), false);
            QCOMPARE(fj["failed"], nlohmann::json::array({check.toStdString()}));
        }
        auto text = runCli({"--threads", "2", "doctor", "--inject-failure", "save-load"});
        QCOMPARE(text.code, 1);
        QVERIFY2(text.out.contains("FAIL  save-load") && text.out.contains("LibTorch") && text.out.contains("BLAS"), qPrintable(text.out));

        expectBadInput(runCli({"doctor", "--inject-failure", "nope"}), {"--inject-failure", "nope", "save-load"});
        expectBadInput(runCli({"doctor", "--device", "tpu"}), {"device", "tpu"});
        if (!dt::probe_devices().gpus.empty()) return;
        // No GPU here: asking for one says why CUDA is not offered.
        expectBadInput(runCli({"doctor", "--device", "cuda"}), {"device", "CUDA is not available", dt::probe_devices().cuda_reason.c_str()});
    }

    void killedAtRandomPointsWhileSavingAlwaysResumes() {
        // A checkpoint every step, and SIGKILL 20 times at seeded random moments (loading, training or
        // inside a save): after every kill the latest checkpoint loads, and the run resumed to the end
        // gives exactly the losses of an uninterrupted run.
        QTemporaryDir dir;
        std::mt19937_64 rng(3);  // the kill moments
        writeBytes(dir.filePath("train.jsonl"), keywordTaskJsonl(3, 128));
        const nlohmann::json spec = {{"model", "tiny-bert"},
                                     {"architecture", "BertForSequenceClassification"},
                                     {"task", {{"train", "train.jsonl"}, {"validation", "train.jsonl"}}},
                                     {"delta", {{"methods", {{{"method", "lora"}}}}, {"modules_to_save", {"classifier"}}}},
                                     {"training", {{"max_steps", 150}, {"batch_size", 8}, {"checkpoint_every", 1}, {"eval_every", 50}, {"seed", 5}, {"lr", 0.002}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        auto whole = runCli({"--threads", "1", "train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("a"), "--json"});
        QCOMPARE(whole.code, 0);
        const QString b = dir.filePath("b");
        int kills = 0;
        QElapsedTimer total;
        total.start();
        for (int round = 0; round < 20 && total.elapsed() < 120000; ++round) {
            QProcess p;
            if (round == 0) p.start(cliPath(), {"--threads", "1", "train", "--spec", dir.filePath("run.json"), "--out", b, "--json"});
            else p.start(cliPath(), {"--threads", "1", "resume", b, "--json"});
            QVERIFY(p.waitForStarted());
            QElapsedTimer t;
            t.start();
            if (round == 0)  // the first kill comes after the first checkpoint, so there is a run to resume
                while (!QFile::exists(b + "/checkpoints/latest") && t.elapsed() < 60000) QTest::qWait(1);
            QTest::qWait(static_cast<int>(100 + rng() % 400));
            if (p.state() != QProcess::Running) break;  // it finished
            ::kill(static_cast<pid_t>(p.processId()), SIGKILL);
            p.waitForFinished();
            ++kills;
            // The latest checkpoint is whole: its tensors and state load.
            const std::string name = dt::run_folder::latest_name(b.toStdString());
            QVERIFY2(!name.empty(), qPrintable(QString::number(round)));
            const std::string ckpt = dt::run_folder::checkpoint_path(b.toStdString(), name);
            QVERIFY2(dt::st::File::open(ckpt + "/trainable.safetensors")->tensors().size() > 0, ckpt.c_str());
            QVERIFY(QFile::exists(QString::fromStdString(ckpt) + "/state.json"));
        }
        QVERIFY2(kills >= 10, qPrintable(QString::number(kills)));
        qInfo("%d kills, the last at step %s", kills, dt::run_folder::latest_name(b.toStdString()).c_str());
        if (!QFile::exists(b + "/checkpoints/final")) {
            auto resumed = runCli({"--threads", "1", "resume", b, "--json"});
            QVERIFY2(resumed.code == 0, qPrintable(resumed.err));
        }
        const auto la = lossesByStep(dir.filePath("a/events.jsonl")), lb = lossesByStep(b + "/events.jsonl");
        QCOMPARE(la.size(), std::size_t(150));
        QVERIFY(la == lb);
    }

    void aFullDiskLeavesNoPartialOutput() {
        // A file size limit (ulimit -f, SIGXFSZ ignored, so write() fails with EFBIG as on a full
        // disk) during export and checkpointing: one clear error naming the file, and no partial
        // folder left behind; earlier output is untouched.
        QTemporaryDir dir;
        writeBytes(dir.filePath("train.jsonl"), keywordTaskJsonl(2, 64));
        const nlohmann::json spec = {{"model", "tiny-bert"},
                                     {"architecture", "BertForSequenceClassification"},
                                     {"task", {{"train", "train.jsonl"}}},
                                     {"delta", {{"methods", {{{"method", "lora"}}}}, {"modules_to_save", {"classifier"}}}},
                                     {"training", {{"max_steps", 6}, {"batch_size", 8}, {"checkpoint_every", 2}, {"seed", 1}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        QCOMPARE(runCli({"--threads", "1", "train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("run")}).code, 0);
        const auto limited = [&](int kib, const QStringList& args) {
            QProcess p;
            p.start("bash", QStringList{"-c", QString("ulimit -f %1; trap '' XFSZ; exec \"$0\" \"$@\"").arg(kib), cliPath()} + args);
            p.waitForFinished(120000);
            return CliResult{p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()), QString::fromUtf8(p.readAllStandardError())};
        };
        const QStringList before = QDir(dir.path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot);
        for (const char* format : {"peft", "deltatune", "merged"}) {
            const QString out = dir.filePath(QString("out-") + format);
            expectBadInput(limited(4, {"export", dir.filePath("run"), "--format", format, "--out", out}), {"write failed", "File too large", ".safetensors"});
            QVERIFY2(!QFile::exists(out), format);
            QCOMPARE(QDir(dir.path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot), before);  // no staging folder left
        }
        // Checkpoints are over 100 KB: the first save fails, its staging folder goes, the error names it.
        const auto r = limited(40, {"--threads", "1", "train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("run2")});
        QCOMPARE(r.code, 2);
        const QString last = r.err.trimmed().split('\n').last();
        QVERIFY2(last.startsWith("error: ") && last.contains("trainable.safetensors: write failed: File too large"), qPrintable(last));
        QCOMPARE(QDir(dir.filePath("run2/checkpoints")).entryList(QDir::AllEntries | QDir::NoDotAndDotDot), QStringList());
        // With room again, the same run trains to the end.
        QCOMPARE(runCli({"--threads", "1", "train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("run3")}).code, 0);
        QVERIFY(QFile::exists(dir.filePath("run3/checkpoints/final/trainable.safetensors")));
    }

    void exportKilledAtRandomPointsLeavesWholeFoldersOnly() {
        // SIGKILL at 20 seeded random moments of a merged export: the output folder is either absent
        // or whole (it loads and gives the uninterrupted export's logits), and what a killed export
        // left beside it is gone after the next export.
        QTemporaryDir dir;
        writeBytes(dir.filePath("train.jsonl"), keywordTaskJsonl(4, 64));
        const nlohmann::json spec = {{"model", hf("bert-seqcls").toStdString()},
                                     {"task", {{"train", "train.jsonl"}, {"labels", {"no", "yes", "maybe"}}}},  // the fixture's head has 3
                                     {"delta", {{"methods", {{{"method", "lora"}, {"r", 4}}}}, {"modules_to_save", {"classifier"}}}},
                                     {"training", {{"max_steps", 4}, {"batch_size", 8}, {"lr", 0.01}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        QCOMPARE(runCli({"--threads", "1", "train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("run")}).code, 0);
        const QString ref = hf("bert-seqcls") + "/reference.safetensors";
        QCOMPARE(runCli({"--threads", "1", "export", dir.filePath("run"), "--format", "merged", "--max-shard-size", "60KB", "--out", dir.filePath("whole")}).code, 0);
        QCOMPARE(runCli({"forward", dir.filePath("whole"), "--input", ref, "--output", dir.filePath("whole.safetensors")}).code, 0);
        const at::Tensor expected = dt::st::File::open(dir.filePath("whole.safetensors").toStdString())->tensor("logits").clone();
        std::mt19937_64 rng(11);
        const QString out = dir.filePath("out");
        int whole = 0, absent = 0;
        for (int round = 0; round < 20; ++round) {
            if (QFile::exists(out)) QVERIFY(QDir(out).removeRecursively());
            QProcess p;
            p.start(cliPath(), {"--threads", "1", "export", dir.filePath("run"), "--format", "merged", "--max-shard-size", "60KB", "--out", out});
            QVERIFY(p.waitForStarted());
            // The kill lands while the folder is written: from the moment its staging folder appears,
            // after a random wait of up to 150 ms (some exports finish first).
            QElapsedTimer w;
            w.start();
            while (p.state() == QProcess::Running && w.elapsed() < 60000 &&
                   QDir(dir.path()).entryList({"out.tmp-*"}, QDir::Dirs | QDir::NoDotAndDotDot).isEmpty())
                QTest::qWait(0);
            const auto wait_us = static_cast<useconds_t>(rng() % 150000);
            ::usleep(wait_us);
            if (p.state() == QProcess::Running) ::kill(static_cast<pid_t>(p.processId()), SIGKILL);
            p.waitForFinished();
            if (!QFile::exists(out)) {
                ++absent;
                continue;
            }
            ++whole;
            const auto r = runCli({"forward", out, "--input", ref, "--output", dir.filePath("o.safetensors")});
            QVERIFY2(r.code == 0, qPrintable(QString("round %1: %2").arg(round).arg(r.err)));
            QVERIFY(torch::equal(dt::st::File::open(dir.filePath("o.safetensors").toStdString())->tensor("logits"), expected));
        }
        qInfo("20 kills: %d exports absent, %d whole", absent, whole);
        QVERIFY(absent > 0);
        QVERIFY(whole > 0);
        if (QFile::exists(out)) QVERIFY(QDir(out).removeRecursively());
        QCOMPARE(runCli({"export", dir.filePath("run"), "--format", "merged", "--out", out}).code, 0);
        const QStringList left = QDir(dir.path()).entryList({"out.*"}, QDir::AllEntries | QDir::NoDotAndDotDot);
        QVERIFY2(left.isEmpty(), qPrintable(left.join(", ")));
    }

    void benchMemoryReportsTheEstimateBesideTheMeasurement() {
        // One real step: the resident set it added next to the budget's estimate of it (gradients,
        // AdamW state, activations for the batch and the longest example); the estimate grows with
        // the batch. The ratio is a measurement, printed, not asserted.
        QTemporaryDir dir;
        const nlohmann::json spec = {{"model", hf("bert-seqcls").toStdString()},
                                     {"task", {{"train", "train.jsonl"}, {"labels", {"no", "yes", "maybe"}}}},
                                     {"delta", {{"methods", {{{"method", "lora"}, {"r", 4}}}}}},
                                     {"training", {{"max_steps", 5}, {"batch_size", 8}}}};
        writeBytes(dir.filePath("train.jsonl"), keywordTaskJsonl(4, 64));
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        auto run = [&](int batch) {
            const auto r = runCli({"--threads", "1", "bench", "memory", "--spec", dir.filePath("run.json"), "--batch", QString::number(batch)});
            [&] { QVERIFY2(r.code == 0, qPrintable(r.err)); }();
            return nlohmann::json::parse(r.out.trimmed().toStdString());
        };
        const auto a = run(8), b = run(16);
        for (const char* k : {"step_measured_bytes", "step_estimate_bytes", "activation_estimate_bytes", "seq_len"})
            QVERIFY2(a[k].get<std::int64_t>() > 0, k);
        QVERIFY(a["seq_len"].get<std::int64_t>() <= 14);  // the longest example (6 to 14 ids), not max_length
        QVERIFY(b["activation_estimate_bytes"].get<std::int64_t>() > a["activation_estimate_bytes"].get<std::int64_t>());
        QVERIFY(a["measured_over_estimate"].get<double>() > 0);
        qInfo("batch 8: measured %.0f KiB, estimate %.0f KiB (ratio %.2f)", a["step_measured_bytes"].get<double>() / 1024,
              a["step_estimate_bytes"].get<double>() / 1024, a["measured_over_estimate"].get<double>());
    }

    void experimentsKilledAtRandomPointsResumeToTheSameResults() {
        // A transfer matrix and a method comparison, each killed (SIGKILL) at 20 seeded random moments
        // and run again: after every kill, matrix.json / comparison.json load and every result they
        // hold is the uninterrupted run's, and the experiment run to the end gives exactly its results.
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        dt::demo::write_demo_data(d + "/demo", 7, 0, 48, 24);
        const auto tk = dt::tok::Tokenizer::from_file(d + "/demo/tokenizer.json");
        const nlohmann::json cfg = {{"architectures", {"BertForMaskedLM"}}, {"model_type", "bert"}, {"vocab_size", tk.vocab_size()},
                                    {"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"intermediate_size", 64},
                                    {"max_position_embeddings", 128}, {"type_vocab_size", 2}};
        dt::save_model(*dt::create_model(dt::ModelConfig::from_json(cfg, "test"), 3), d + "/model");
        QVERIFY(QFile::copy(QString::fromStdString(d + "/demo/tokenizer.json"), QString::fromStdString(d + "/model/tokenizer.json")));
        const auto tasks = nlohmann::json::array({"demo/tasks/reviews/task.json", "demo/tasks/opinions/task.json", "demo/tasks/news/task.json"});
        const auto transferSpec = [&](const char* out) {
            return nlohmann::json{{"model", "model"}, {"tasks", tasks},
                                  {"delta", {{"method", "lora"}, {"r", 4}, {"target_modules", {"query", "value"}}}},
                                  {"training", {{"max_steps", 300}, {"batch_size", 8}, {"lr", 0.01}, {"checkpoint_every", 30}, {"seed", 2}}},
                                  {"output_dir", out}};
        };
        const auto compareSpec = [&](const char* out) {
            return nlohmann::json{{"model", "model"}, {"task", "demo/tasks/reviews/task.json"}, {"methods", {"lora", "adapter", "bitfit"}},
                                  {"training", {{"max_steps", 300}, {"batch_size", 8}, {"lr", 0.01}, {"eval_every", 100}, {"checkpoint_every", 30}, {"seed", 2}}},
                                  {"output_dir", out}};
        };
        writeBytes(dir.filePath("t-a.json"), QByteArray::fromStdString(transferSpec("t-a").dump()));
        writeBytes(dir.filePath("t-b.json"), QByteArray::fromStdString(transferSpec("t-b").dump()));
        writeBytes(dir.filePath("c-a.json"), QByteArray::fromStdString(compareSpec("c-a").dump()));
        writeBytes(dir.filePath("c-b.json"), QByteArray::fromStdString(compareSpec("c-b").dump()));
        // The uninterrupted runs: the reference results.
        auto r = runCli({"--threads", "1", "transfer", "--spec", dir.filePath("t-a.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        r = runCli({"--threads", "1", "compare", "--spec", dir.filePath("c-a.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto matrix = [&](const char* out) { return dt::ResultMatrix::from_json(dt::json::load_file(d + "/" + out + "/matrix.json"), out); };
        const auto methods = [&](const char* out) {
            std::map<std::string, std::vector<double>> v;  // per method: its value, then its curve's steps and values
            const nlohmann::json c = dt::json::load_file(d + "/" + out + "/comparison.json");
            for (const auto& m : c.at("methods")) {
                const auto r = dt::MethodResult::from_json(m);
                auto& x = v[r.name];
                x.push_back(r.value);
                for (const auto& p : r.curve) x.insert(x.end(), {static_cast<double>(p.step), p.value});
            }
            return v;
        };
        const dt::ResultMatrix ref = matrix("t-a");
        const auto refMethods = methods("c-a");
        QCOMPARE(refMethods.size(), std::size_t(3));
        std::mt19937_64 rng(5);
        // What an experiment has committed (checkpoints, cells, results), by name, size and time.
        const auto progress = [&](const char* out) {
            qint64 sig = 0;
            QDirIterator it(QString::fromStdString(d + "/" + out), QDir::Files, QDirIterator::Subdirectories);
            while (it.hasNext()) {
                it.next();
                // Committed progress only: a checkpoint becomes "latest", a cell or a result is appended
                // (not a staging folder's files, nor what every start writes again).
                static const QStringList markers = {QStringLiteral("latest"), QStringLiteral("cells.jsonl"), QStringLiteral("results.jsonl")};
                if (!markers.contains(it.fileName())) continue;
                sig += it.fileInfo().size() + it.fileInfo().lastModified().toMSecsSinceEpoch() % 1000003 + qHash(it.filePath()) % 1009;
            }
            return sig;
        };
        struct Kind { const char* command; QString spec; const char* out; const char* file; };
        for (const Kind& k : {Kind{"transfer", dir.filePath("t-b.json"), "t-b", "matrix.json"},
                              Kind{"compare", dir.filePath("c-b.json"), "c-b", "comparison.json"}}) {
            int kills = 0, partial = 0;
            for (int round = 0; round < 20; ++round) {
                QProcess p;
                p.setWorkingDirectory(dir.path());
                const qint64 before = progress(k.out);
                p.start(cliPath(), {"--threads", "1", k.command, "--spec", k.spec});
                QVERIFY(p.waitForStarted());
                // Each kill comes after the run has saved something new (a checkpoint, a cell, a
                // result), then up to 100 ms later, wherever that falls (training, evaluating,
                // writing): every round makes progress, however slow the machine.
                QElapsedTimer t;
                t.start();
                while (p.state() == QProcess::Running && progress(k.out) == before && t.elapsed() < 120000) QTest::qWait(2);
                p.waitForFinished(static_cast<int>(rng() % 100));
                if (p.state() != QProcess::Running) {  // finished first
                    QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
                    break;
                }
                ::kill(static_cast<pid_t>(p.processId()), SIGKILL);
                p.waitForFinished();
                ++kills;
                if (!QFile::exists(QString::fromStdString(d + "/" + k.out + "/" + k.file))) continue;
                // What a killed experiment left is whole, and every result in it is final.
                if (std::string(k.command) == "transfer") {
                    const auto m = matrix(k.out);
                    QCOMPARE(m.rows, ref.rows);
                    for (std::size_t i = 0; i < m.rows.size(); ++i)
                        for (std::size_t j = 0; j < m.cols.size(); ++j) {
                            if (!m.has(i, j)) continue;
                            ++partial;
                            QVERIFY2(m.at(i, j) == ref.at(i, j), qPrintable(QString("round %1, cell %2,%3").arg(round).arg(i).arg(j)));
                        }
                } else {
                    for (const auto& [name, v] : methods(k.out)) {
                        ++partial;
                        QVERIFY2(v == refMethods.at(name), qPrintable(QString("round %1, %2").arg(round).arg(name.c_str())));
                    }
                }
            }
            qInfo("%s: %d kills, %d results seen in killed runs' files", k.command, kills, partial);
            QVERIFY2(kills >= 10, qPrintable(QString::number(kills)));
            QVERIFY(partial > 0);
            QProcess p;
            p.setWorkingDirectory(dir.path());
            p.start(cliPath(), {"--threads", "1", k.command, "--spec", k.spec});
            QVERIFY(p.waitForFinished(300000));
            QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        }
        const dt::ResultMatrix m = matrix("t-b");
        QCOMPARE(m.cols, ref.cols);
        QCOMPARE(m.value, ref.value);  // every cell, exactly
        QCOMPARE(methods("c-b"), refMethods);
        // cells.jsonl: every line but torn ones parses, and every cell is there.
        QFile cells(QString::fromStdString(d + "/t-b/cells.jsonl"));
        QVERIFY(cells.open(QIODevice::ReadOnly));
        std::set<std::pair<std::string, std::string>> seen;
        for (const QByteArray& line : cells.readAll().split('\n')) {
            try {
                const auto j = nlohmann::json::parse(line.toStdString());
                seen.insert({j.at("row").get<std::string>(), j.at("col").get<std::string>()});
            } catch (const std::exception&) {
            }
        }
        QCOMPARE(seen.size(), ref.rows.size() * ref.cols.size());
    }

    void filesChangingUnderTrainingNeverCrash() {
        // The model's weights and the dataset truncated to nothing while a run trains: the run
        // holds its own copies (weights copied out of the mapped file, data read at the start) and
        // trains to the end; a later export, which must read the base again, names the broken file.
        QTemporaryDir dir;
        QVERIFY(QDir().mkpath(dir.filePath("model")));
        for (const char* f : {"config.json", "model.safetensors"}) QVERIFY(QFile::copy(hf("bert-seqcls") + "/" + f, dir.filePath("model/") + f));
        writeBytes(dir.filePath("train.jsonl"), keywordTaskJsonl(5, 64));
        const nlohmann::json spec = {{"model", dir.filePath("model").toStdString()},
                                     {"task", {{"train", "train.jsonl"}, {"validation", "train.jsonl"}, {"labels", {"no", "yes", "maybe"}}}},
                                     {"delta", {{"methods", {{{"method", "lora"}, {"r", 4}}}}, {"modules_to_save", {"classifier"}}}},
                                     {"training", {{"max_steps", 120}, {"batch_size", 8}, {"checkpoint_every", 10}, {"eval_every", 40}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        QProcess p;
        p.start(cliPath(), {"--threads", "1", "train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("run")});
        QVERIFY(p.waitForStarted());
        QElapsedTimer t;
        t.start();
        while (!QFile::exists(dir.filePath("run/checkpoints/step-10/state.json")) && t.elapsed() < 60000) QTest::qWait(5);
        QVERIFY(QFile::resize(dir.filePath("model/model.safetensors"), 0));
        QVERIFY(QFile::resize(dir.filePath("train.jsonl"), 0));
        QVERIFY2(!QFile::exists(dir.filePath("run/checkpoints/final")), "the run ended before the files changed");
        QVERIFY(p.waitForFinished(120000));
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        QVERIFY(QFile::exists(dir.filePath("run/checkpoints/final/trainable.safetensors")));
        for (const char* format : {"merged", "peft"}) {  // both rebuild the base model to place the delta
            expectBadInput(runCli({"export", dir.filePath("run"), "--format", format, "--out", dir.filePath(format)}), {"model.safetensors", "too short"});
            QVERIFY(!QFile::exists(dir.filePath(format)));
        }
    }

    void trainKillResume() {
        // A run killed with SIGKILL and resumed gives exactly the losses of an uninterrupted run.
        QTemporaryDir dir;
        writeBytes(dir.filePath("train.jsonl"), keywordTaskJsonl(1, 256));
        nlohmann::json spec = {{"model", "tiny-bert"},
                               {"architecture", "BertForSequenceClassification"},
                               {"task", {{"train", "train.jsonl"}, {"validation", "train.jsonl"}}},
                               {"delta", {{"methods", {{{"method", "lora"}}}}, {"modules_to_save", {"classifier"}}}},
                               {"training", {{"max_steps", 300}, {"batch_size", 8}, {"checkpoint_every", 20}, {"seed", 5}, {"lr", 0.002}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        auto whole = runCli({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("a"), "--json"});
        QCOMPARE(whole.code, 0);

        QProcess p;
        p.start(cliPath(), {"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("b"), "--json"});
        QVERIFY(p.waitForStarted());
        QElapsedTimer timer;
        timer.start();
        while (!QFile::exists(dir.filePath("b/checkpoints/step-60/state.json")) && timer.elapsed() < 60000) QTest::qWait(2);
        ::kill(static_cast<pid_t>(p.processId()), SIGKILL);
        p.waitForFinished();
        QCOMPARE(p.exitStatus(), QProcess::CrashExit);
        QVERIFY2(!QFile::exists(dir.filePath("b/checkpoints/final")), "the run finished before it could be killed");
        auto resumed = runCli({"resume", dir.filePath("b"), "--json"});
        QVERIFY2(resumed.code == 0, qPrintable(resumed.err));
        const auto a = lossesByStep(dir.filePath("a/events.jsonl")), b = lossesByStep(dir.filePath("b/events.jsonl"));
        QCOMPARE(a.size(), std::size_t(300));
        QVERIFY(a == b);
        expectBadInput(runCli({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("b")}), {"already holds a run", "resume"});
        writeBytes(dir.filePath("bad.json"), R"({"model": "tiny-bert", "task": {"train": "train.jsonl"}, "delta": "lora", "training": {"lr": -1}})");
        expectBadInput(runCli({"train", "--spec", dir.filePath("bad.json"), "--out", dir.filePath("c")}), {"bad.json: training", "'lr'"});
    }

    void trainOnTextCsv() {
        // A model folder made from a config, the fixture's tokenizer beside it, and a CSV task whose
        // label is whether the sentence mentions "license".
        QTemporaryDir dir;
        const nlohmann::json cfg = {{"architectures", {"BertForSequenceClassification"}}, {"model_type", "bert"}, {"vocab_size", 3000},
                                    {"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"intermediate_size", 64},
                                    {"max_position_embeddings", 64}, {"num_labels", 2}};
        writeBytes(dir.filePath("cfg.json"), QByteArray::fromStdString(cfg.dump()));
        QCOMPARE(runCli({"init", dir.filePath("cfg.json"), dir.filePath("model")}).code, 0);
        QVERIFY(QFile::copy(dataDir() + "/tokenizers/bert-wordpiece-uncased/tokenizer.json", dir.filePath("model/tokenizer.json")));
        std::mt19937_64 rng(3);
        const char* words[] = {"the", "software", "is", "provided", "without", "warranty", "of", "any", "kind", "to", "use", "copy"};
        QByteArray csv = "sentence,label\n";
        for (int i = 0; i < 240; ++i) {
            QByteArray s;
            for (int k = 0; k < 8; ++k) s += QByteArray(words[rng() % 12]) + " ";
            const bool yes = rng() % 2;
            if (yes) s += "license";
            csv += "\"" + s.trimmed() + ", ok\"," + (yes ? "yes" : "no") + "\n";
        }
        csv += "\"\",no\n";  // an empty text: skipped and counted, as the spec asks
        writeBytes(dir.filePath("task.csv"), csv);
        const nlohmann::json spec = {{"model", "model"},
                                     {"task", {{"train", "task.csv"}, {"fields", {{"text", "sentence"}}}, {"validation_split", 0.25},
                                               {"skip_bad_lines", true}, {"max_length", 32}}},
                                     {"delta", {{"methods", {{{"method", "lora"}, {"target_modules", "all-linear"}}}}, {"modules_to_save", {"classifier"}}}},
                                     {"training", {{"max_steps", 80}, {"batch_size", 16}, {"lr", 0.005}, {"seed", 1}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        auto r = runCli({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("out"), "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY2(r.err.contains("skipped 1 bad line") && r.err.contains("empty text"), qPrintable(r.err));
        const auto lines = r.out.trimmed().split('\n');
        auto done = nlohmann::json::parse(lines.last().toStdString());
        QCOMPARE(done["status"].get<std::string>(), std::string("finished"));
        QVERIFY2(done["accuracy"].get<double>() >= 0.9, qPrintable(lines.last()));
        // A tokenizer whose ids do not fit the model is refused before training, naming the file.
        auto small = cfg;
        small["vocab_size"] = 500;
        writeBytes(dir.filePath("small.json"), QByteArray::fromStdString(small.dump()));
        QCOMPARE(runCli({"init", dir.filePath("small.json"), dir.filePath("small")}).code, 0);
        QVERIFY(QFile::copy(dataDir() + "/tokenizers/bert-wordpiece-uncased/tokenizer.json", dir.filePath("small/tokenizer.json")));
        auto spec2 = spec;
        spec2["model"] = "small";
        writeBytes(dir.filePath("run2.json"), QByteArray::fromStdString(spec2.dump()));
        auto bad = runCli({"train", "--spec", dir.filePath("run2.json"), "--out", dir.filePath("out2")});
        QCOMPARE(bad.code, 2);
        const QString last = bad.err.trimmed().split('\n').last();  // after the skipped-line warning
        QVERIFY2(last.startsWith("error: ") && last.contains("task.csv") && last.contains("outside the vocabulary"), qPrintable(bad.err));
        QVERIFY(!QFile::exists(dir.filePath("out2/checkpoints")));
    }

    void trainWithLabelWords() {
        // The same kind of task through the MLM head: "{text} it was [MASK]." with the words yes/no.
        QTemporaryDir dir;
        const nlohmann::json cfg = {{"architectures", {"BertForMaskedLM"}}, {"model_type", "bert"}, {"vocab_size", 3000},
                                    {"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"intermediate_size", 64},
                                    {"max_position_embeddings", 64}};
        writeBytes(dir.filePath("cfg.json"), QByteArray::fromStdString(cfg.dump()));
        QCOMPARE(runCli({"init", dir.filePath("cfg.json"), dir.filePath("model")}).code, 0);
        QVERIFY(QFile::copy(dataDir() + "/tokenizers/bert-wordpiece-uncased/tokenizer.json", dir.filePath("model/tokenizer.json")));
        std::mt19937_64 rng(4);
        const char* words[] = {"the", "software", "is", "provided", "without", "warranty", "of", "any", "kind", "to", "use", "copy"};
        QByteArray jsonl;
        for (int i = 0; i < 240; ++i) {
            std::string s;
            for (int k = 0; k < 8; ++k) s += std::string(words[rng() % 12]) + " ";
            const bool yes = rng() % 2;
            if (yes) s += "license";
            jsonl += QByteArray::fromStdString(nlohmann::json({{"text", s}, {"label", yes ? "positive" : "negative"}}).dump()) + "\n";
        }
        writeBytes(dir.filePath("task.jsonl"), jsonl);
        nlohmann::json spec = {{"model", "model"},
                               {"task", {{"train", "task.jsonl"}, {"format", "jsonl"}, {"validation_split", 0.25}, {"max_length", 32},
                                         {"template", "{text} it was [MASK]."}, {"label_words", {{"positive", "it"}, {"negative", "was"}}}}},
                               {"delta", {{"method", "lora"}, {"target_modules", "all-linear"}}},
                               {"training", {{"max_steps", 80}, {"batch_size", 16}, {"lr", 0.005}, {"seed", 1}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        auto r = runCli({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("out"), "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        auto done = nlohmann::json::parse(r.out.trimmed().split('\n').last().toStdString());
        QVERIFY2(done["accuracy"].get<double>() >= 0.9, qPrintable(r.out.trimmed().split('\n').last()));
        spec["task"]["label_words"]["positive"] = "xylophonequartz";  // several word pieces
        writeBytes(dir.filePath("run2.json"), QByteArray::fromStdString(spec.dump()));
        expectBadInput(runCli({"train", "--spec", dir.filePath("run2.json"), "--out", dir.filePath("out2")}),
                       {"task.label_words", "'xylophonequartz'", "single token"});
    }

    void tokenizeLines() {
        QProcess p;
        p.start(cliPath(), {"tokenize", dataDir() + "/tokenizers/roberta-bytelevel-bpe/tokenizer.json", "--pair"});
        QVERIFY(p.waitForStarted());
        p.write("Hello world\tHow are you?\nno tab here\n");
        p.closeWriteChannel();
        QVERIFY(p.waitForFinished());
        const QString out = QString::fromUtf8(p.readAllStandardOutput());
        // The reference output for this pair (cases.jsonl of the fixture), then a clear error on line 2.
        QFile f(dataDir() + "/tokenizers/roberta-bytelevel-bpe/cases.jsonl");
        QVERIFY(f.open(QIODevice::ReadOnly));
        std::string want;
        for (const auto& line : f.readAll().split('\n')) {
            if (line.isEmpty()) continue;
            auto c = nlohmann::json::parse(line.toStdString());
            if (c["text"] == "Hello world" && c["pair"] == "How are you?" && c["add_special_tokens"] == true) want = c["ids"].dump();
        }
        QVERIFY(!want.empty());
        QCOMPARE(out.trimmed().split('\n').first().toStdString(), want);
        QCOMPARE(p.exitCode(), 2);
        QVERIFY2(QString::fromUtf8(p.readAllStandardError()).contains("stdin:2"), "the bad line is not named");
    }

    void trainCausalLm() {
        // tiny-llama with a Llama tokenizer: the response is "yes" after prompts about cats, else "no";
        // only the response is scored, and perplexity falls from thousands to near 1.
        QTemporaryDir dir;
        std::mt19937_64 rng(5);
        const char* nouns[] = {"cat", "dog", "tree", "house", "river", "cloud"};
        QByteArray jsonl;
        for (int i = 0; i < 200; ++i) {
            const std::string n = nouns[rng() % 6], m = nouns[rng() % 6];
            const std::string prompt = "Is the " + n + " near the " + m + "? Answer:";
            jsonl += QByteArray::fromStdString(nlohmann::json({{"prompt", prompt}, {"response", n == "cat" || m == "cat" ? " yes" : " no"}}).dump()) + "\n";
        }
        writeBytes(dir.filePath("qa.jsonl"), jsonl);
        const nlohmann::json spec = {{"model", "tiny-llama"},
                                     {"task", {{"train", "qa.jsonl"}, {"format", "jsonl"}, {"type", "causal_lm"}, {"validation_split", 0.2},
                                               {"tokenizer", (dataDir() + "/tokenizers/llama-bpe-bytefallback/tokenizer.json").toStdString()}}},
                                     // a random base's head is frozen noise: train it too, as modules_to_save
                                     {"delta", {{"methods", {{{"method", "lora"}, {"target_modules", "all-linear"}, {"r", 16}}}}, {"modules_to_save", {"lm_head"}}}},
                                     {"training", {{"max_steps", 120}, {"batch_size", 16}, {"lr", 0.01}, {"seed", 3}, {"eval_every", 40}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        auto r = runCli({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("out"), "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        auto done = nlohmann::json::parse(r.out.trimmed().split('\n').last().toStdString());
        QVERIFY2(done["perplexity"].get<double>() < 1.2, qPrintable(r.out.trimmed().split('\n').last()));
        // The tuned model answers through `generate` (merged into a plain folder; "▁", "y", "es", EOS).
        QCOMPARE(runCli({"export", dir.filePath("out"), "--format", "merged", "--out", dir.filePath("merged")}).code, 0);
        const QString tok = dataDir() + "/tokenizers/llama-bpe-bytefallback/tokenizer.json";
        for (const auto& [q, want] : {std::make_pair(QString("Is the cat near the tree? Answer:"), QString("yes")),
                                      std::make_pair(QString("Is the dog near the river? Answer:"), QString("no"))}) {
            auto g = runCli({"generate", dir.filePath("merged"), "--prompt", q, "--tokenizer", tok, "--max-new-tokens", "4"});
            QVERIFY2(g.code == 0, qPrintable(g.err));
            QCOMPARE(g.out.trimmed(), want);
        }
        writeBytes(dir.filePath("bad.jsonl"), "{\"prompt\": \"only a prompt\"}\n");
        auto bad = spec;
        bad["task"]["train"] = "bad.jsonl";
        writeBytes(dir.filePath("bad.json"), QByteArray::fromStdString(bad.dump()));
        expectBadInput(runCli({"train", "--spec", dir.filePath("bad.json"), "--out", dir.filePath("out2")}), {"bad.jsonl:1", "'response'"});
    }

    void trainSeq2SeqScoredByGeneration() {
        // A small T5 (vocabulary of the T5 Unigram fixture) learns a text-to-text yes/no task with
        // LoRA: evaluation generates greedily and scores exact match, F1 and ROUGE-L.
        QTemporaryDir dir;
        const std::string tok = (dataDir() + "/tokenizers/t5-unigram/tokenizer.json").toStdString();
        const auto vocab = dt::json::load_file(tok)["model"]["vocab"].size();
        const nlohmann::json cfg = {{"architectures", {"T5ForConditionalGeneration"}}, {"model_type", "t5"}, {"vocab_size", vocab}, {"d_model", 32},
                                    {"d_kv", 8}, {"d_ff", 64}, {"num_layers", 2}, {"num_heads", 4}, {"relative_attention_num_buckets", 32},
                                    {"feed_forward_proj", "gated-gelu"}, {"tie_word_embeddings", false}, {"pad_token_id", 0}, {"eos_token_id", 1},
                                    {"decoder_start_token_id", 0}};
        writeBytes(dir.filePath("t5.json"), QByteArray::fromStdString(cfg.dump()));
        QCOMPARE(runCli({"init", dir.filePath("t5.json"), dir.filePath("t5"), "--seed", "1"}).code, 0);
        std::mt19937_64 rng(5);
        const char* nouns[] = {"cat", "dog", "tree", "house", "river", "cloud"};
        QByteArray jsonl;
        for (int i = 0; i < 200; ++i) {
            const std::string n = nouns[rng() % 6], m = nouns[rng() % 6];
            jsonl += QByteArray::fromStdString(
                         nlohmann::json({{"input", "question: Is the " + n + " near the " + m + "?"}, {"target", n == "cat" || m == "cat" ? "yes" : "no"}})
                             .dump()) +
                     "\n";
        }
        writeBytes(dir.filePath("qa.jsonl"), jsonl);
        const nlohmann::json spec = {{"model", dir.filePath("t5").toStdString()},
                                     {"task", {{"train", "qa.jsonl"}, {"format", "jsonl"}, {"type", "seq2seq"}, {"validation_split", 0.2}, {"tokenizer", tok}}},
                                     {"delta", {{"methods", {{{"method", "lora"}, {"target_modules", "all-linear"}, {"r", 16}}}}, {"modules_to_save", {"lm_head"}}}},
                                     {"training", {{"max_steps", 120}, {"batch_size", 16}, {"lr", 0.01}, {"seed", 3}, {"eval_every", 40}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        // The base (LoRA is the identity at init) answers nothing right.
        auto base = runCli({"eval", "--spec", dir.filePath("run.json")});
        QVERIFY2(base.code == 0, qPrintable(base.err));
        const auto before = nlohmann::json::parse(base.out.trimmed().split('\n').last().toStdString());
        QCOMPARE(before["exact_match"].get<double>(), 0.0);
        auto r = runCli({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("out"), "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto done = nlohmann::json::parse(r.out.trimmed().split('\n').last().toStdString());
        QVERIFY2(done["exact_match"].get<double>() >= 0.95, qPrintable(r.out.trimmed().split('\n').last()));
        QVERIFY(done.contains("rouge_l") && done.contains("f1"));
        // A seq2seq task on a decoder-only model is refused, naming the field and the way out.
        auto causal = spec;
        causal["model"] = "tiny-llama";
        writeBytes(dir.filePath("causal.json"), QByteArray::fromStdString(causal.dump()));
        expectBadInput(runCli({"train", "--spec", dir.filePath("causal.json"), "--out", dir.filePath("out2")}), {"encoder-decoder", "task.type"});
    }

    void trainCausalLmOnGpt2() {
        // A GPT-2 written by `deltatune init` from a config (Conv1D layout on disk) with the GPT-2
        // byte-level tokenizer: LoRA on c_attn (PEFT's default) plus the tied embedding learns the
        // yes/no response; perplexity on the responses falls near 1.
        QTemporaryDir dir;
        const std::string tok = (dataDir() + "/tokenizers/gpt2-bytelevel-bpe/tokenizer.json").toStdString();
        const auto vocab = dt::json::load_file(tok)["model"]["vocab"].size();
        const nlohmann::json cfg = {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", vocab}, {"n_embd", 32},
                                    {"n_layer", 2}, {"n_head", 2}, {"n_positions", 64}, {"activation_function", "gelu_new"}};
        writeBytes(dir.filePath("gpt2.json"), QByteArray::fromStdString(cfg.dump()));
        QCOMPARE(runCli({"init", dir.filePath("gpt2.json"), dir.filePath("gpt2"), "--seed", "1"}).code, 0);
        auto st = dt::st::File::open(dir.filePath("gpt2/model.safetensors").toStdString());
        QCOMPARE(st->info("transformer.h.0.attn.c_attn.weight").shape, (std::vector<std::int64_t>{32, 96}));  // (in, out) on disk
        std::mt19937_64 rng(5);
        const char* nouns[] = {"cat", "dog", "tree", "house", "river", "cloud"};
        QByteArray jsonl;
        for (int i = 0; i < 200; ++i) {
            const std::string n = nouns[rng() % 6], m = nouns[rng() % 6];
            jsonl += QByteArray::fromStdString(nlohmann::json({{"prompt", "Is the " + n + " near the " + m + "? Answer:"},
                                                               {"response", n == "cat" || m == "cat" ? " yes" : " no"}}).dump()) + "\n";
        }
        writeBytes(dir.filePath("qa.jsonl"), jsonl);
        const nlohmann::json spec = {{"model", dir.filePath("gpt2").toStdString()},
                                     {"task", {{"train", "qa.jsonl"}, {"format", "jsonl"}, {"type", "causal_lm"}, {"validation_split", 0.2}, {"tokenizer", tok}}},
                                     {"delta", {{"methods", {{{"method", "lora"}, {"r", 16}}}}, {"modules_to_save", {"lm_head"}}}},
                                     {"training", {{"max_steps", 120}, {"batch_size", 16}, {"lr", 0.01}, {"seed", 3}, {"eval_every", 40}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        auto r = runCli({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("out"), "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        auto done = nlohmann::json::parse(r.out.trimmed().split('\n').last().toStdString());
        QVERIFY2(done["perplexity"].get<double>() < 1.3, qPrintable(r.out.trimmed().split('\n').last()));
    }

    void exportPeftAndMerged() {
        // Train LoRA + head on the HF bert-seqcls folder, export both ways: base + PEFT adapter and the
        // merged folder give the same logits, and they differ from the untrained base.
        QTemporaryDir dir;
        std::mt19937_64 rng(2);
        QByteArray data;
        for (int i = 0; i < 64; ++i) {
            nlohmann::json ids = nlohmann::json::array({2});
            for (int k = 0; k < 8; ++k) ids.push_back(10 + static_cast<int>(rng() % 280));
            ids.push_back(3);
            data += QByteArray::fromStdString(nlohmann::json({{"input_ids", ids}, {"label", static_cast<int>(rng() % 3)}}).dump()) + "\n";
        }
        writeBytes(dir.filePath("t.jsonl"), data);
        const nlohmann::json spec = {{"model", hf("bert-seqcls").toStdString()},
                                     {"task", {{"train", "t.jsonl"}}},
                                     {"delta", {{"methods", {{{"method", "lora"}, {"r", 4}}}}, {"modules_to_save", {"classifier"}}}},
                                     {"training", {{"max_steps", 10}, {"batch_size", 8}, {"lr", 0.01}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        QCOMPARE(runCli({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("run")}).code, 0);
        QCOMPARE(runCli({"export", dir.filePath("run"), "--format", "peft", "--out", dir.filePath("peft")}).code, 0);
        QCOMPARE(runCli({"export", dir.filePath("run"), "--format", "merged", "--out", dir.filePath("merged")}).code, 0);
        const QString ref = hf("bert-seqcls") + "/reference.safetensors";
        QCOMPARE(runCli({"forward", hf("bert-seqcls"), "--delta", dir.filePath("peft"), "--input", ref, "--output", dir.filePath("a.safetensors")}).code, 0);
        QCOMPARE(runCli({"forward", dir.filePath("merged"), "--input", ref, "--output", dir.filePath("b.safetensors")}).code, 0);
        auto a = dt::st::File::open(dir.filePath("a.safetensors").toStdString());
        auto b = dt::st::File::open(dir.filePath("b.safetensors").toStdString());
        auto base = dt::st::File::open(ref.toStdString());
        QVERIFY(toleranceRatio(b->tensor("logits"), a->tensor("logits")) <= 1.0);
        QVERIFY((a->tensor("logits") - base->tensor("logits")).abs().max().item<double>() > 1e-3);
        auto keys = dt::st::File::open(dir.filePath("peft/adapter_model.safetensors").toStdString());
        QVERIFY(keys->contains("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"));
        QVERIFY(keys->contains("base_model.model.classifier.weight"));
        expectBadInput(runCli({"export", dir.filePath("run"), "--format", "merged", "--out", dir.filePath("merged")}), {"exists"});

        // A merged export past --max-shard-size is sharded with an index and gives the same logits.
        QCOMPARE(runCli({"export", dir.filePath("run"), "--format", "merged", "--max-shard-size", "100KB", "--out", dir.filePath("sharded")}).code, 0);
        QVERIFY(QFile::exists(dir.filePath("sharded/model.safetensors.index.json")));
        QVERIFY(QFile::exists(dir.filePath("sharded/model-00002-of-") + QDir(dir.filePath("sharded")).entryList({"model-00001-of-*"}).value(0).mid(15)));
        QVERIFY(!QFile::exists(dir.filePath("sharded/model.safetensors")));
        QCOMPARE(runCli({"forward", dir.filePath("sharded"), "--input", ref, "--output", dir.filePath("c.safetensors")}).code, 0);
        auto c = dt::st::File::open(dir.filePath("c.safetensors").toStdString());
        QVERIFY(torch::equal(c->tensor("logits"), b->tensor("logits")));
        expectBadInput(runCli({"export", dir.filePath("run"), "--format", "merged", "--max-shard-size", "lots", "--out", dir.filePath("s2")}),
                       {"--max-shard-size", "'lots'"});
        QVERIFY(!QFile::exists(dir.filePath("s2")));
    }

    void evalAndContinueFromExportedDelta() {
        // An exported delta of either format is a --delta for eval (same metrics as the run's own
        // checkpoint) and for train, which continues from its trained values.
        QTemporaryDir dir;
        std::mt19937_64 rng(5);
        QByteArray data;
        for (int i = 0; i < 64; ++i) {
            nlohmann::json ids = nlohmann::json::array({2});
            const int label = static_cast<int>(rng() % 3);
            for (int k = 0; k < 8; ++k) ids.push_back(10 + label * 90 + static_cast<int>(rng() % 90));
            ids.push_back(3);
            data += QByteArray::fromStdString(nlohmann::json({{"input_ids", ids}, {"label", label}}).dump()) + "\n";
        }
        writeBytes(dir.filePath("t.jsonl"), data);
        nlohmann::json spec = {{"model", hf("bert-seqcls").toStdString()},
                               {"task", {{"train", "t.jsonl"}, {"validation", "t.jsonl"}}},
                               {"delta", {{"methods", {{{"method", "lora"}, {"r", 4}}}}, {"modules_to_save", {"classifier"}}}},
                               {"training", {{"max_steps", 30}, {"batch_size", 8}, {"lr", 0.02}}}};
        writeBytes(dir.filePath("run.json"), QByteArray::fromStdString(spec.dump()));
        auto first = runCli({"train", "--spec", dir.filePath("run.json"), "--out", dir.filePath("run"), "--json"});
        QCOMPARE(first.code, 0);
        QCOMPARE(runCli({"export", dir.filePath("run"), "--format", "peft", "--out", dir.filePath("peft")}).code, 0);
        QCOMPARE(runCli({"export", dir.filePath("run"), "--format", "deltatune", "--out", dir.filePath("dt")}).code, 0);
        // How far the trained delta moved: LoRA's query/value in both layers and the head, all non-zero.
        auto insp = runCli({"inspect-delta", dir.filePath("run"), "--json"});
        QVERIFY2(insp.code == 0, qPrintable(insp.err));
        const auto grid = nlohmann::json::parse(insp.out.toStdString());
        QCOMPARE(grid["rows"], nlohmann::json({"layer 0", "layer 1", "other"}));
        QCOMPARE(grid["cols"], nlohmann::json({"attention.self.query", "attention.self.value", "classifier"}));
        for (int r = 0; r < 2; ++r)
            for (int c = 0; c < 2; ++c) QVERIFY(grid["value"][r][c].get<double>() > 0);
        QVERIFY(grid["value"][2][2].get<double>() > 0);
        QVERIFY(grid["value"][0][2].is_null());
        expectBadInput(runCli({"inspect-delta", dir.filePath("run"), "--checkpoint", "nope"}), {"no checkpoint 'nope'"});
        auto ck = runCli({"eval", "--spec", dir.filePath("run.json"), "--checkpoint", dir.filePath("run/checkpoints/final")});
        QCOMPARE(ck.code, 0);
        const auto want = nlohmann::json::parse(ck.out.toStdString());
        for (const char* exported : {"peft", "dt"}) {
            auto r = runCli({"eval", "--spec", dir.filePath("run.json"), "--delta", dir.filePath(exported)});
            QVERIFY2(r.code == 0, qPrintable(r.err));
            const auto got = nlohmann::json::parse(r.out.toStdString());
            QCOMPARE(got["loss"].get<double>(), want["loss"].get<double>());
            QCOMPARE(got["accuracy"].get<double>(), want["accuracy"].get<double>());
        }
        // The untrained spec scores differently, so the comparison above means something.
        auto fresh = runCli({"eval", "--spec", dir.filePath("run.json")});
        QCOMPARE(fresh.code, 0);
        QVERIFY(nlohmann::json::parse(fresh.out.toStdString())["loss"].get<double>() > want["loss"].get<double>() + 1e-3);

        auto firstLoss = [](const QString& out) {
            for (const auto& line : out.split('\n')) {
                if (line.isEmpty()) continue;
                const auto j = nlohmann::json::parse(line.toStdString());
                if (j["event"] == "step" && j["loss"].is_number()) return j["loss"].get<double>();
            }
            return -1.0;
        };
        // Continuing: the first step starts where the exported delta ended, far below a fresh start;
        // the run folder's spec.json names the folder, so resume and export work from it.
        auto cont = runCli({"train", "--spec", dir.filePath("run.json"), "--delta", dir.filePath("dt"), "--out", dir.filePath("run2"), "--json"});
        QVERIFY2(cont.code == 0, qPrintable(cont.err));
        QVERIFY2(firstLoss(cont.out) > 0 && firstLoss(cont.out) < firstLoss(first.out) - 0.2, qPrintable(QString("%1 vs %2").arg(firstLoss(cont.out)).arg(firstLoss(first.out))));
        const auto saved = dt::json::load_file(dir.filePath("run2/spec.json").toStdString());
        QCOMPARE(QString::fromStdString(saved["delta"].get<std::string>()), dir.filePath("dt"));
        QCOMPARE(runCli({"export", dir.filePath("run2"), "--format", "peft", "--out", dir.filePath("peft2")}).code, 0);

        // A delta for another base model fails before training, naming the tensor.
        auto other = spec;
        other["model"] = hf("roberta-mlm").toStdString();
        writeBytes(dir.filePath("other.json"), QByteArray::fromStdString(other.dump()));
        expectBadInput(runCli({"train", "--spec", dir.filePath("other.json"), "--delta", dir.filePath("dt"), "--out", dir.filePath("run3")}),
                       {"delta"});
        QVERIFY(!QFile::exists(dir.filePath("run3/checkpoints")));
        expectBadInput(runCli({"eval", "--spec", dir.filePath("run.json"), "--delta", dir.filePath("nothing-here")}), {"nothing-here"});
    }

    void initWritesLoadableFolder() {
        QTemporaryDir dir;
        const QString d = dir.filePath("tiny");
        QCOMPARE(runCli({"init", "tiny-bert", d, "--seed", "3"}).code, 0);
        auto r = runCli({"inspect", d, "--json"});
        QCOMPARE(r.code, 0);
        auto j = nlohmann::json::parse(r.out.toStdString());
        QCOMPARE(j["missing"].size(), std::size_t(0));
        QCOMPARE(j["total_params"].get<std::int64_t>(), 279232);
    }
};

DT_REGISTER_TEST(TestCli);
#include "test_cli.moc"
