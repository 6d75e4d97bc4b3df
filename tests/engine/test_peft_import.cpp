// PEFT adapters saved by peft 0.7.1 / 0.8.2 (tests/data/hf/peft) imported onto the engine's base
// models reproduce PEFT's outputs, merged LoRA/IA3 reproduce merge_and_unload(), and a delta for
// another base model is refused by tensor name with the model left unchanged.
#include "test_registry.h"
#include "test_util.h"

#include "core/error.h"
#include "export/delta_format.h"
#include "export/peft_export.h"
#include "export/peft_import.h"
#include "io/json_util.h"
#include "io/weight_set.h"
#include "io/safetensors.h"
#include "models/loader.h"

#include <torch/torch.h>

#include <QDir>
#include <QTemporaryDir>
#include <QTest>

#include <set>

using namespace dttest;

namespace {
dt::ForwardInputs inputsOf(const dt::st::File& ref) { return referenceInputs(ref); }
}  // namespace

class TestPeftImport : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void reproducesPeft_data() {
        QTest::addColumn<QString>("adapter");
        QTest::addColumn<QString>("base");
        for (const char* a : {"bert-seqcls-lora", "bert-seqcls-rslora", "bert-seqcls-ia3", "bert-seqcls-prefix", "bert-seqcls-prompt", "bert-seqcls-adalora",
                              "bert-seqcls-loha", "bert-seqcls-lokr", "bert-seqcls-oft", "bert-seqcls-ptuning"})
            QTest::newRow(a) << QString::fromLatin1(a) << "bert-seqcls";
        for (const char* a : {"llama-gqa-lm-lora", "llama-gqa-lm-ia3", "llama-gqa-lm-prefix", "llama-gqa-lm-prompt", "llama-gqa-lm-ptuning"})
            QTest::newRow(a) << QString::fromLatin1(a) << "llama-gqa-lm";
        for (const char* base : {"t5-cg", "t5-gated-cg"})
            for (const char* method : {"prefix", "prompt", "ia3"})
                QTest::newRow(qPrintable(QStringLiteral("%1-%2").arg(base, method))) << QStringLiteral("%1-%2").arg(base, method) << QString(base);
    }
    void reproducesPeft() {
        QFETCH(QString, adapter);
        QFETCH(QString, base);
        auto m = dt::load_model(hf(base).toStdString()).model;
        auto ref = dt::st::File::open((hf("peft/" + adapter) + "/reference.safetensors").toStdString());
        const auto in = inputsOf(*ref);
        torch::NoGradGuard ng;
        const at::Tensor before = m->forward(in).logits;
        auto set = dt::import_peft(*m, hf("peft/" + adapter).toStdString());
        const at::Tensor got = m->forward(in).logits;
        const double r = toleranceRatio(got, ref->tensor("logits"));
        QVERIFY2(r <= 1.0, qPrintable(QStringLiteral("logits off by %1x the tolerance").arg(r)));
        if (before.sizes() == got.sizes()) QVERIFY((got - before).abs().max().item<double>() > 0.1);  // the adapter matters
        if (ref->contains("merged_logits")) {
            QCOMPARE(set.merge(), 1);
            QVERIFY(toleranceRatio(m->forward(in).logits, ref->tensor("merged_logits")) <= 1.0);
        }
    }

    void exportMatchesPeftsLayout_data() { reproducesPeft_data(); }
    void exportMatchesPeftsLayout() {
        // Import what PEFT saved, export it again: same tensor names and shapes, same config fields,
        // and the export imports back to identical outputs.
        QFETCH(QString, adapter);
        QFETCH(QString, base);
        const QString src = hf("peft/" + adapter);
        auto m = dt::load_model(hf(base).toStdString()).model;
        auto set = dt::import_peft(*m, src.toStdString());
        QTemporaryDir dir;
        const QString out = dir.filePath("export");
        dt::export_peft(*m, set, out.toStdString(), "models/" + base.toStdString());
        auto a = dt::st::File::open((src + "/adapter_model.safetensors").toStdString());
        auto b = dt::st::File::open((out + "/adapter_model.safetensors").toStdString());
        QCOMPARE(b->metadata().at("format"), std::string("pt"));
        std::set<std::string> na, nb;
        for (const auto& t : a->tensors()) na.insert(t.name);
        for (const auto& t : b->tensors()) nb.insert(t.name);
        QCOMPARE(nb, na);
        for (const auto& n : na) QCOMPARE(b->info(n).shape, a->info(n).shape);
        const auto ca = dt::json::load_file((src + "/adapter_config.json").toStdString());
        const auto cb = dt::json::load_file((out + "/adapter_config.json").toStdString());
        for (const char* f : {"peft_type", "task_type", "r", "lora_alpha", "num_virtual_tokens", "token_dim", "num_attention_heads",
                              "num_layers", "base_model_name_or_path", "use_rslora"}) {
            if (!ca.contains(f)) continue;
            QVERIFY2(cb.contains(f) && cb[f] == ca[f], f);
        }
        if (!ca.contains("use_rslora")) QVERIFY(!cb.contains("use_rslora"));  // older PEFT rejects unknown fields
        for (const char* f : {"target_modules", "feedforward_modules"}) {
            if (!ca.contains(f)) continue;
            QVERIFY2(cb[f].get<std::set<std::string>>() == ca[f].get<std::set<std::string>>(), (cb[f].dump() + " vs " + ca[f].dump()).c_str());  // PEFT writes a set
        }
        auto ref = dt::st::File::open((src + "/reference.safetensors").toStdString());
        torch::NoGradGuard ng;
        auto fresh = dt::load_model(hf(base).toStdString()).model;
        auto again = dt::import_peft(*fresh, out.toStdString());
        QVERIFY(torch::equal(fresh->forward(inputsOf(*ref)).logits, m->forward(inputsOf(*ref)).logits));
        QCOMPARE(QDir(dir.path()).entryList(QDir::Dirs | QDir::NoDotAndDotDot), QStringList{"export"});  // nothing staged left
    }

    void deltatuneFormatRoundTrip() {
        // Everything PEFT cannot hold, in one delta: LoRA + BitFit + adapters + a trained head module.
        const auto spec = dt::DeltaSpec::from_json(nlohmann::json::parse(
            R"({"methods": [{"method": "lora"}, {"method": "bitfit", "groups": ["intermediate"]}, {"method": "adapter", "size": 8}],
                "modules_to_save": ["cls.predictions.transform.dense"]})"), "spec");
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 4);
        auto set = dt::DeltaSet::apply(*m, spec);
        {
            torch::NoGradGuard ng;
            torch::manual_seed(1);
            for (auto& p : dt::trainable_parameters(*m)) p.add_(torch::randn_like(p) * 0.05);
        }
        QTemporaryDir dir;
        dt::export_deltatune(*m, set, dir.filePath("d").toStdString(), "tiny-bert");
        dt::ForwardInputs in;
        in.input_ids = torch::randint(1, 1000, {2, 7}, torch::kLong);
        torch::NoGradGuard ng;
        const at::Tensor want = m->forward(in).logits;
        auto fresh = dt::create_model(dt::builtin_config("tiny-bert"), 4);
        auto got = dt::import_deltatune(*fresh, dir.filePath("d").toStdString());
        QVERIFY(got.fingerprint_matches);
        QVERIFY(torch::equal(fresh->forward(in).logits, want));
        // Another base of the same shape: a warning, or an error when that is not allowed.
        auto other = dt::create_model(dt::builtin_config("tiny-bert"), 9);
        auto warned = dt::import_deltatune(*other, dir.filePath("d").toStdString());
        QVERIFY(!warned.fingerprint_matches && QString::fromStdString(warned.warning).contains("differ"));
        auto other2 = dt::create_model(dt::builtin_config("tiny-bert"), 9);
        const auto names = other2->named_parameters(true).keys();
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::import_deltatune(*other2, dir.filePath("d").toStdString(), false));
        QCOMPARE(other2->named_parameters(true).keys(), names);
        auto llama = dt::create_model(dt::builtin_config("tiny-llama"), 1);
        try {
            dt::import_deltatune(*llama, dir.filePath("d").toStdString());
            QFAIL("a BERT delta imported onto Llama");
        } catch (const dt::Error& e) {
            QVERIFY2(QString::fromStdString(e.what()).contains("base.architecture"), e.what());
        }
    }

    void everyMethodRoundTrips_data() {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<bool>("peft");  // PEFT has a format for it
        QTest::newRow("lora") << R"({"method": "lora", "r": 4, "target_modules": ["query", "value", "dense"]})" << true;
        QTest::newRow("rslora") << R"({"method": "lora", "r": 4, "use_rslora": true})" << true;
        QTest::newRow("dora") << R"({"method": "lora", "r": 4, "use_dora": true})" << true;
        QTest::newRow("ia3") << R"({"method": "ia3"})" << true;
        QTest::newRow("prefix") << R"({"method": "prefix", "num_virtual_tokens": 3})" << true;
        QTest::newRow("prefix-mlp") << R"({"method": "prefix", "num_virtual_tokens": 3, "prefix_projection": true, "encoder_hidden_size": 16})" << true;
        QTest::newRow("prompt") << R"({"method": "prompt", "num_virtual_tokens": 3})" << true;
        QTest::newRow("adapter-houlsby") << R"({"method": "adapter", "size": 8, "placement": "houlsby"})" << false;
        QTest::newRow("adapter-pfeiffer") << R"({"method": "adapter", "size": 8, "placement": "pfeiffer"})" << false;
        QTest::newRow("adapter-parallel") << R"({"method": "adapter", "size": 8, "placement": "parallel"})" << false;
        QTest::newRow("bitfit") << R"({"method": "bitfit"})" << false;
        QTest::newRow("layernorm") << R"({"method": "layernorm"})" << false;
        QTest::newRow("last_layers") << R"({"method": "last_layers", "num_layers": 1})" << false;
        QTest::newRow("selective") << R"({"method": "selective", "target_modules": ["intermediate.dense"]})" << false;
        QTest::newRow("full") << R"({"method": "full"})" << false;
    }
    void everyMethodRoundTrips() {
        // Perturb the trainable tensors, export, import onto a fresh copy of the base: the same
        // outputs (bit-identical for DeltaTune's format; PEFT's prefix holds the MLP's output, so
        // that one is compared within float tolerance).
        QFETCH(QString, spec);
        QFETCH(bool, peft);
        const auto ds = dt::DeltaSpec::from_json(nlohmann::json::parse(spec.toStdString()), "spec");
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 4);
        auto set = dt::DeltaSet::apply(*m, ds);
        {
            torch::NoGradGuard ng;
            torch::manual_seed(2);
            for (auto& p : dt::trainable_parameters(*m)) p.add_(torch::randn_like(p) * 0.05);
        }
        dt::ForwardInputs in;
        in.input_ids = torch::randint(1, 1000, {2, 7}, torch::kLong);
        torch::NoGradGuard ng;
        const at::Tensor want = m->forward(in).logits;
        const at::Tensor base = dt::create_model(dt::builtin_config("tiny-bert"), 4)->forward(in).logits;
        QVERIFY(want.sizes() != base.sizes() || (want - base).abs().max().item<double>() > 1e-3);  // the delta acts
        QTemporaryDir dir;
        dt::export_deltatune(*m, set, dir.filePath("d").toStdString(), "tiny-bert");
        auto fresh = dt::create_model(dt::builtin_config("tiny-bert"), 4);
        auto got = dt::import_exported_delta(*fresh, dir.filePath("d").toStdString());
        QVERIFY(got.fingerprint_matches);
        QVERIFY(torch::equal(fresh->forward(in).logits, want));
        if (!peft) return;
        for (const auto& meth : set.methods())
            if (meth->can_fold()) meth->fold(*m);
        dt::export_peft(*m, set, dir.filePath("p").toStdString(), "tiny-bert");
        auto fresh2 = dt::create_model(dt::builtin_config("tiny-bert"), 4);
        auto back = dt::import_exported_delta(*fresh2, dir.filePath("p").toStdString());
        QVERIFY(toleranceRatio(fresh2->forward(in).logits, want) <= 1.0);
    }

    void damagedFoldersAreRefused_data() {
        QTest::addColumn<QString>("format");
        QTest::addColumn<QString>("damage");
        for (const char* f : {"peft", "deltatune"})
            for (const char* d : {"missing-tensor", "extra-tensor", "truncated", "bad-config"})
                QTest::newRow((std::string(f) + "/" + d).c_str()) << QString(f) << QString(d);
    }
    void damagedFoldersAreRefused() {
        // A tensor left out, a stray tensor, a cut-off file, a config that is not JSON: one error
        // naming the file (and the tensor where there is one), and the model left as it was.
        QFETCH(QString, format);
        QFETCH(QString, damage);
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 4);
        auto set = dt::DeltaSet::apply(*m, dt::DeltaSpec::from_json({{"method", "lora"}, {"r", 4}}, "spec"));
        QTemporaryDir dir;
        const QString out = dir.filePath("d");
        if (format == "peft") dt::export_peft(*m, set, out.toStdString(), "tiny-bert");
        else dt::export_deltatune(*m, set, out.toStdString(), "tiny-bert");
        const QString file = out + (format == "peft" ? "/adapter_model.safetensors" : "/delta.safetensors");
        const QString config = out + (format == "peft" ? "/adapter_config.json" : "/delta_config.json");
        std::string needle = file.toStdString();
        {
            auto f = dt::st::File::open(file.toStdString());
            dt::st::NamedTensors kept;
            for (const auto& t : f->tensors()) kept.emplace_back(t.name, f->tensor(t.name).clone());
            f.reset();
            if (damage == "missing-tensor") {
                needle = kept.back().first;
                if (format == "peft") needle = needle.substr(std::string("base_model.model.").size());  // named as in the model
                kept.pop_back();
                dt::st::save(file.toStdString(), kept, {{"format", "pt"}});
            } else if (damage == "extra-tensor") {
                needle = kept.front().first;
                needle.insert(needle.find("lora_A"), "stray.");
                kept.emplace_back(needle, torch::zeros({4, 4}));
                dt::st::save(file.toStdString(), kept, {{"format", "pt"}});
            } else if (damage == "truncated") {
                QFile q(file);
                QVERIFY(q.open(QIODevice::ReadWrite));
                QVERIFY(q.resize(q.size() - 100));
            } else {
                writeBytes(config, "{\"peft_type\": ");
                needle = config.toStdString();
            }
        }
        auto target = dt::create_model(dt::builtin_config("tiny-bert"), 4);
        const auto names = target->named_parameters(true).keys();
        try {
            dt::import_exported_delta(*target, out.toStdString());
            QFAIL("a damaged delta was imported");
        } catch (const dt::Error& e) {
            QVERIFY2(std::string(e.what()).find(needle) != std::string::npos, e.what());
        }
        QCOMPARE(target->named_parameters(true).keys(), names);
    }

    void mergedWeightsMatchMergeAndUnload_data() {
        QTest::addColumn<QString>("adapter");
        for (const char* a : {"bert-seqcls-lora", "bert-seqcls-adalora", "bert-seqcls-loha", "bert-seqcls-lokr", "bert-seqcls-oft"}) QTest::newRow(a) << a;
    }
    void mergedWeightsMatchMergeAndUnload() {
        QFETCH(QString, adapter);
        auto m = dt::load_model(hf("bert-seqcls").toStdString()).model;
        auto set = dt::import_peft(*m, hf("peft/" + adapter).toStdString());
        set.merge();
        auto merged = dt::WeightSet::open_folder((hf("peft/" + adapter) + "/merged").toStdString());
        auto params = m->named_parameters(true);
        int compared = 0;
        for (const auto& name : merged.names()) {
            auto* p = params.find(name);
            QVERIFY2(p, name.c_str());
            QVERIFY2(toleranceRatio(*p, merged.tensor(name)) <= 1.0, name.c_str());
            ++compared;
        }
        QVERIFY(compared > 30);
    }

    void refusesAnotherBase() {
        auto m = dt::load_model(hf("bert-seqcls").toStdString()).model;
        const auto names = m->named_parameters(true).keys();
        try {
            dt::import_peft(*m, hf("peft/llama-gqa-lm-lora").toStdString());
            QFAIL("a Llama adapter was imported onto BERT");
        } catch (const dt::Error& e) {
            const QString msg = QString::fromStdString(e.what());
            QVERIFY2(msg.contains("target_modules") || msg.contains("another base model"), qPrintable(msg));
        }
        QCOMPARE(m->named_parameters(true).keys(), names);
        // Same names, other sizes: refused by tensor with both shapes.
        auto cfg = dt::ModelConfig::load((hf("bert-seqcls") + "/config.json").toStdString());
        auto raw = cfg.raw;
        raw["hidden_size"] = 64;
        auto other = dt::create_model(dt::ModelConfig::from_json(raw, "other"), 1);
        try {
            dt::import_peft(*other, hf("peft/bert-seqcls-lora").toStdString());
            QFAIL("accepted on a model of another size");
        } catch (const dt::Error& e) {
            const QString msg = QString::fromStdString(e.what());
            QVERIFY2(msg.contains("adapter_model.safetensors") && msg.contains("lora_A.weight") && msg.contains("another base model"), qPrintable(msg));
        }
        for (const auto& p : other->named_parameters(true)) QVERIFY(p.key().find("lora") == std::string::npos);
    }
};

DT_REGISTER_TEST(TestPeftImport);
#include "test_peft_import.moc"
