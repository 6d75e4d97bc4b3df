// The methods added for PEFT parity beyond the per-method properties in TestDelta: AdaLoRA's budget
// schedule while training and a module pruned to rank 0 in PEFT's files, LoRA+'s learning rate on B,
// PiSSA/OLoRA's factors and their export for the original base, P-tuning's fold, and delta merging
// against the adapters add_weighted_adapter made (tests/data/hf/peft/bert-seqcls-merge).
#include "test_registry.h"
#include "test_util.h"

#include "core/error.h"
#include "data/dataset.h"
#include "delta/delta_set.h"
#include "export/merge_deltas.h"
#include "export/peft_export.h"
#include "export/peft_import.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "train/trainer.h"

#include <torch/torch.h>

#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <random>

using namespace dttest;
using nlohmann::json;

namespace {

std::shared_ptr<dt::TransformerModel> bertSeqcls() { return dt::load_model(hf("bert-seqcls").toStdString()).model; }

dt::DeltaSpec specOf(const json& j) { return dt::DeltaSpec::from_json(j, "spec.json"); }

// label 1 iff token 7 occurs (ids within tiny vocabularies).
dt::Dataset tokenTask(int n, std::uint64_t seed, std::int64_t vocab) {
    dt::Dataset d;
    d.source = "generated";
    std::mt19937_64 rng(seed);
    for (int i = 0; i < n; ++i) {
        dt::Example ex;
        const int len = 6 + static_cast<int>(rng() % 6);
        ex.ids.push_back(2);
        for (int k = 1; k < len; ++k) ex.ids.push_back(10 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(vocab - 10)));
        ex.label = static_cast<std::int64_t>(rng() % 2);
        if (ex.label == 1) ex.ids[1 + rng() % (len - 1)] = 7;
        d.examples.push_back(ex);
    }
    return d;
}

void randomize(dt::TransformerModel& m, const dt::DeltaSet& d, std::uint64_t seed, double scale = 0.1) {
    torch::NoGradGuard ng;
    torch::manual_seed(seed);
    auto params = m.named_parameters(true);
    for (const auto& meth : d.methods())
        for (const auto& name : meth->added())
            if (params[name].requires_grad()) params[name].add_(torch::randn_like(params[name]) * scale);
}

struct StatusLog : dt::TrainObserver {
    const dt::DeltaSet* set = nullptr;
    std::vector<std::int64_t> budgets;
    void on_step(const dt::StepEvent&) override { budgets.push_back(set->methods().front()->status()["budget"].get<std::int64_t>()); }
};

}  // namespace

class TestMethods : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void adaloraFollowsTheBudgetSchedule() {
        // 8 targets x init_r 6 = 48 triplets, falling to target_r 2 x 8 = 16 with the cubic schedule
        // between tinit and total - tfinal, then fixed.
        auto m = bertSeqcls();
        auto d = dt::DeltaSet::apply(*m, specOf({{"methods", {{{"method", "adalora"}, {"init_r", 6}, {"target_r", 2}, {"tinit", 2}, {"tfinal", 3},
                                                                {"deltaT", 1}, {"target_modules", {"query", "key", "value", "intermediate.dense"}}}}},
                                                 {"modules_to_save", {"classifier"}}}));
        const dt::Dataset data = tokenTask(64, 3, 64);
        dt::TrainConfig c;
        c.max_steps = 12;
        c.batch_size = 8;
        c.lr = 1e-2;
        c.seed = 5;
        StatusLog log;
        log.set = &d;
        dt::Trainer t(*m, data, nullptr, c, &log);
        const auto res = t.run();
        QCOMPARE(res.steps, std::int64_t(12));
        const std::int64_t init = 48, target = 16, tinit = 2, tfinal = 3, total = 12;
        for (std::int64_t step = 0; step < total; ++step) {
            std::int64_t want = init;
            if (step > tinit && step <= total - tfinal) {
                const double mul = 1.0 - static_cast<double>(step - tinit) / static_cast<double>(total - tfinal - tinit);
                want = static_cast<std::int64_t>(static_cast<double>(init - target) * mul * mul * mul + static_cast<double>(target));
            } else if (step > total - tfinal) {
                want = target;
            }
            // Ties at the threshold may prune one more (PEFT masks scores <= the k-th smallest).
            QVERIFY2(log.budgets[static_cast<std::size_t>(step)] <= want && log.budgets[static_cast<std::size_t>(step)] >= want - 1,
                     qPrintable(QStringLiteral("step %1: kept %2, schedule %3").arg(step).arg(log.budgets[static_cast<std::size_t>(step)]).arg(want)));
        }
        const json st = d.methods().front()->status();
        QCOMPARE(st["budget"].get<std::int64_t>(), target);
        std::set<std::int64_t> distinct;
        auto params = m->named_parameters(true);
        for (auto& [path, kept] : st["ranks"].items()) {
            distinct.insert(kept.get<std::int64_t>());
            const auto bits = st["rank_pattern"][path + ".lora_E"].get<std::vector<bool>>();
            const at::Tensor E = params[path + ".lora_E"].view(-1);
            for (std::size_t i = 0; i < bits.size(); ++i)
                if (!bits[i]) QCOMPARE(E[static_cast<std::int64_t>(i)].item<double>(), 0.0);
        }
        QVERIFY2(distinct.size() > 1, "every module kept the same rank: nothing was allocated");
        // The export holds the kept triplets only, and imports back to the same outputs.
        QTemporaryDir dir;
        const std::string out = dir.filePath("ada").toStdString();
        dt::export_peft(*m, d, out, "models/bert-seqcls");
        auto f = dt::st::File::open(out + "/adapter_model.safetensors");
        std::int64_t rows = 0;
        for (const auto& info : f->tensors())
            if (info.name.size() > 7 && info.name.compare(info.name.size() - 7, 7, ".lora_E") == 0) rows += info.shape[0];
        QCOMPARE(rows, target);
        auto ref = dt::st::File::open((hf("bert-seqcls") + "/reference.safetensors").toStdString());
        torch::NoGradGuard ng;
        m->eval();
        const at::Tensor want = m->forward(referenceInputs(*ref)).logits;
        auto fresh = bertSeqcls();
        auto again = dt::import_peft(*fresh, out);
        QVERIFY(toleranceRatio(fresh->forward(referenceInputs(*ref)).logits, want) <= 1.0);
    }

    void adaloraModulePrunedToRankZero() {
        auto m = bertSeqcls();
        std::vector<bool> none(4, false), two = {true, false, true, false};
        json pattern = {{"bert.encoder.layer.0.attention.self.query.lora_E", none}, {"bert.encoder.layer.0.attention.self.value.lora_E", two},
                        {"bert.encoder.layer.1.attention.self.query.lora_E", two}, {"bert.encoder.layer.1.attention.self.value.lora_E", two}};
        auto d = dt::DeltaSet::apply(*m, specOf({{"method", "adalora"}, {"init_r", 4}, {"target_r", 2}, {"rank_pattern", pattern}}));
        randomize(*m, d, 7, 0.5);
        auto params = m->named_parameters(true);
        QCOMPARE(params["bert.encoder.layer.0.attention.self.query.lora_A"].size(0), std::int64_t(0));
        auto ref = dt::st::File::open((hf("bert-seqcls") + "/reference.safetensors").toStdString());
        torch::NoGradGuard ng;
        const at::Tensor want = m->forward(referenceInputs(*ref)).logits;
        QTemporaryDir dir;
        const std::string out = dir.filePath("ada0").toStdString();
        dt::export_peft(*m, d, out, "models/bert-seqcls");
        auto f = dt::st::File::open(out + "/adapter_model.safetensors");
        QCOMPARE(f->info("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A").shape, (std::vector<std::int64_t>{0, 48}));
        QCOMPARE(f->info("base_model.model.bert.encoder.layer.0.attention.self.query.lora_B").shape, (std::vector<std::int64_t>{48, 0}));
        const json cfg = dt::json::load_file(out + "/adapter_config.json");
        QCOMPARE(cfg["rank_pattern"]["bert.encoder.layer.0.attention.self.query.lora_E"], json(none));
        auto fresh = bertSeqcls();
        auto again = dt::import_peft(*fresh, out);
        QVERIFY(toleranceRatio(fresh->forward(referenceInputs(*ref)).logits, want) <= 1.0);
    }

    void loraPlusRaisesTheRateOfB() {
        // AdamW's first step moves every entry with a gradient by about lr; with LoRA+ B moves by ratio·lr.
        auto run = [](double ratio) {
            auto m = bertSeqcls();
            auto d = dt::DeltaSet::apply(*m, specOf({{"method", "lora"}, {"r", 4}, {"loraplus_lr_ratio", ratio}}));
            dt::TrainConfig c;
            c.max_steps = 1;
            c.batch_size = 8;
            c.lr = 1e-3;
            c.warmup_ratio = 0;
            c.schedule = "constant";
            c.weight_decay = 0;
            const dt::Dataset data = tokenTask(16, 1, 64);
            dt::Trainer t(*m, data, nullptr, c);
            t.run();
            return m->named_parameters(true)["bert.encoder.layer.0.attention.self.query.lora_B.weight"].abs().max().item<double>();
        };
        const double plain = run(1.0), plus = run(16.0);
        QVERIFY2(std::abs(plain - 1e-3) < 1e-4, qPrintable(QString::number(plain)));
        QVERIFY2(std::abs(plus - 16e-3) < 16e-4, qPrintable(QString::number(plus)));
    }

    void pissaAndOloraFactors() {
        auto m = bertSeqcls();
        const std::string q = "bert.encoder.layer.0.attention.self.query";
        const at::Tensor W = m->named_parameters(true)[q + ".weight"].detach().clone();
        const at::Tensor S = torch::linalg_svdvals(W);
        {
            auto d = dt::DeltaSet::apply(*m, specOf({{"method", "lora"}, {"r", 4}, {"lora_alpha", 8}, {"init_lora_weights", "pissa"}}));
            auto p = m->named_parameters(true);
            // The base keeps W minus its top-4 part: its largest singular value is W's fifth.
            QVERIFY(std::abs(torch::linalg_svdvals(p[q + ".weight"])[0].item<double>() - S[4].item<double>()) < 1e-4);
            QVERIFY((torch::matmul(p[q + ".lora_B.weight"], p[q + ".lora_A.weight"]) * 2.0 + p[q + ".weight"] - W).abs().max().item<double>() < 1e-5);
            d.remove(*m);
            QVERIFY((m->named_parameters(true)[q + ".weight"] - W).abs().max().item<double>() < 1e-5);  // detach gives W back
        }
        {
            auto d = dt::DeltaSet::apply(*m, specOf({{"method", "lora"}, {"r", 4}, {"init_lora_weights", "pissa"}, {"pissa_niter", 8}}));
            auto p = m->named_parameters(true);
            // The randomized SVD finds nearly the same top part.
            QVERIFY(torch::linalg_svdvals(p[q + ".weight"])[0].item<double>() < S[4].item<double>() * 1.05);
            d.remove(*m);
        }
        {
            auto d = dt::DeltaSet::apply(*m, specOf({{"method", "lora"}, {"r", 4}, {"init_lora_weights", "olora"}}));
            const at::Tensor B = m->named_parameters(true)[q + ".lora_B.weight"];
            QVERIFY((torch::matmul(B.t(), B) - torch::eye(4)).abs().max().item<double>() < 1e-5);  // Q's orthonormal columns
            d.remove(*m);
        }
    }

    void pissaExportsForTheOriginalBase() {
        // PEFT's conversion: rank 2r, alpha doubled, and the adapter loads on the untouched base.
        for (const char* init : {"pissa", "olora"}) {
            auto m = bertSeqcls();
            auto d = dt::DeltaSet::apply(*m, specOf({{"method", "lora"}, {"r", 4}, {"lora_alpha", 8}, {"init_lora_weights", init}}));
            randomize(*m, d, 3, 0.05);
            auto ref = dt::st::File::open((hf("bert-seqcls") + "/reference.safetensors").toStdString());
            torch::NoGradGuard ng;
            const at::Tensor want = m->forward(referenceInputs(*ref)).logits;
            QTemporaryDir dir;
            const std::string out = dir.filePath("pissa").toStdString();
            dt::export_peft(*m, d, out, "models/bert-seqcls");
            const json cfg = dt::json::load_file(out + "/adapter_config.json");
            QCOMPARE(cfg["r"].get<int>(), 8);
            QCOMPARE(cfg["lora_alpha"].get<double>(), 16.0);
            QCOMPARE(cfg["init_lora_weights"], json(true));
            auto fresh = bertSeqcls();
            auto again = dt::import_peft(*fresh, out);
            QVERIFY2(toleranceRatio(fresh->forward(referenceInputs(*ref)).logits, want) <= 1.0, init);
        }
    }

    void ptuningFoldsAndRoundTrips_data() {
        QTest::addColumn<QString>("encoder");
        QTest::newRow("mlp") << "MLP";
        QTest::newRow("lstm") << "LSTM";
    }
    void ptuningFoldsAndRoundTrips() {
        QFETCH(QString, encoder);
        auto m = bertSeqcls();
        auto d = dt::DeltaSet::apply(*m, specOf({{"methods", {{{"method", "ptuning"}, {"num_virtual_tokens", 5}, {"encoder_hidden_size", 16},
                                                                {"encoder_reparameterization_type", encoder.toStdString()}}}},
                                                 {"modules_to_save", {"classifier"}}}));
        const auto acc = d.accounting(*m);
        QVERIFY(acc.per_method[0].added > 5 * 48);  // the encoder trains too
        randomize(*m, d, 4, 0.3);
        m->eval();
        auto ref = dt::st::File::open((hf("bert-seqcls") + "/reference.safetensors").toStdString());
        torch::NoGradGuard ng;
        const at::Tensor before = m->forward(referenceInputs(*ref)).logits;
        auto& meth = *d.methods().front();
        QVERIFY(meth.can_fold());
        meth.fold(*m);
        QVERIFY(!meth.can_fold());
        QCOMPARE(meth.added(), std::vector<std::string>{"prompt_encoder.embedding.weight"});
        QVERIFY(toleranceRatio(m->forward(referenceInputs(*ref)).logits, before) <= 1.0);
        QTemporaryDir dir;
        const std::string out = dir.filePath("pt").toStdString();
        dt::export_peft(*m, d, out, "models/bert-seqcls");
        const json cfg = dt::json::load_file(out + "/adapter_config.json");
        QCOMPARE(cfg["peft_type"], json("P_TUNING"));
        QCOMPARE(cfg["encoder_reparameterization_type"], json(encoder.toStdString()));
        auto fresh = bertSeqcls();
        auto again = dt::import_peft(*fresh, out);
        QVERIFY(toleranceRatio(fresh->forward(referenceInputs(*ref)).logits, before) <= 1.0);
    }

    void mergeReproducesPeft_data() {
        QTest::addColumn<QString>("kind");
        for (const char* k : {"linear", "svd", "cat", "ties"}) QTest::newRow(k) << k;
    }
    void mergeReproducesPeft() {
        QFETCH(QString, kind);
        const QString root = hf("peft/bert-seqcls-merge");
        const json call = dt::json::load_file((root + "/merged-" + kind + "/meta.json").toStdString());
        auto m = bertSeqcls();
        dt::MergeOptions o;
        o.sources = {(root + "/a").toStdString(), (root + "/b").toStdString()};
        o.weights = {0.7, 0.5};
        o.combination = kind.toStdString();
        o.density = 0.5;
        o.majority_sign = "total";
        auto merged = dt::merge_deltas(*m, o);
        auto ref = dt::st::File::open((root + "/merged-" + kind + "/reference.safetensors").toStdString());
        torch::NoGradGuard ng;
        const at::Tensor got = m->forward(referenceInputs(*ref)).logits;
        QVERIFY2(toleranceRatio(got, ref->tensor("logits")) <= 1.0, qPrintable(QString::fromStdString(call.dump())));
        // Its PEFT folder has PEFT's layout and loads back to the same outputs.
        QTemporaryDir dir;
        const std::string out = dir.filePath("merged").toStdString();
        dt::export_peft(*m, merged, out, "models/bert-seqcls");
        const json mine = dt::json::load_file(out + "/adapter_config.json");
        const json theirs = dt::json::load_file((root + "/merged-" + kind + "/adapter_config.json").toStdString());
        QCOMPARE(mine["r"], theirs["r"]);
        QCOMPARE(mine["lora_alpha"].get<double>(), theirs["lora_alpha"].get<double>());
        QCOMPARE(mine["target_modules"].get<std::set<std::string>>(), theirs["target_modules"].get<std::set<std::string>>());
        auto fresh = bertSeqcls();
        auto again = dt::import_peft(*fresh, out);
        QVERIFY(toleranceRatio(fresh->forward(referenceInputs(*ref)).logits, ref->tensor("logits")) <= 1.0);
    }

    void peftsMergedFoldersImport_data() {
        QTest::addColumn<QString>("kind");
        for (const char* k : {"linear", "svd", "cat", "ties", "dare_linear"}) QTest::newRow(k) << k;
    }
    void peftsMergedFoldersImport() {
        QFETCH(QString, kind);
        const QString dir = hf("peft/bert-seqcls-merge/merged-" + kind);
        auto m = bertSeqcls();
        auto set = dt::import_peft(*m, dir.toStdString());
        auto ref = dt::st::File::open((dir + "/reference.safetensors").toStdString());
        torch::NoGradGuard ng;
        QVERIFY(toleranceRatio(m->forward(referenceInputs(*ref)).logits, ref->tensor("logits")) <= 1.0);
    }

    void dareKeepsItsDensity() {
        // One source weighted 1, the other 0: the merged tensors are that source's DARE mask times
        // its entries / density, so the kept fraction is the density and the kept values are exact.
        const QString root = hf("peft/bert-seqcls-merge");
        auto m = bertSeqcls();
        dt::MergeOptions o;
        o.sources = {(root + "/a").toStdString(), (root + "/a").toStdString()};
        o.weights = {1.0, 0.0};
        o.combination = "dare_linear";
        o.density = 0.3;
        o.seed = 11;
        auto merged = dt::merge_deltas(*m, o);
        auto src = dt::st::File::open((root + "/a/adapter_model.safetensors").toStdString());
        auto p = m->named_parameters(true);
        std::int64_t kept = 0, total = 0;
        const double sqrt_ws = std::sqrt(1.0 * 2.0);  // √(w · scaling), scaling 8 / 4
        for (const auto& info : src->tensors()) {
            if (info.name.find("lora_") == std::string::npos) continue;
            const std::string name = info.name.substr(std::string("base_model.model.").size());
            const at::Tensor mine = p[name].detach(), theirs = src->tensor(info.name);
            const at::Tensor nz = mine != 0;
            kept += nz.sum().item<std::int64_t>();
            total += mine.numel();
            QVERIFY((mine.masked_select(nz) - theirs.masked_select(nz) * sqrt_ws / 0.3).abs().max().item<double>() < 1e-5);
        }
        QVERIFY2(std::abs(static_cast<double>(kept) / static_cast<double>(total) - 0.3) < 0.03, qPrintable(QString::number(double(kept) / double(total))));
        // Seeded: the same seed gives the same mask.
        merged.remove(*m);
        auto again = dt::merge_deltas(*m, o);
        std::int64_t kept2 = 0;
        for (const auto& e : m->named_parameters(true))
            if (e.key().find("lora_") != std::string::npos) kept2 += (e.value() != 0).sum().item<std::int64_t>();
        QCOMPARE(kept2, kept);
    }

    void mergeRefusesMismatches() {
        const QString root = hf("peft/bert-seqcls-merge");
        auto m = bertSeqcls();
        const auto names = m->named_parameters(true).keys();
        dt::MergeOptions o;
        o.sources = {(root + "/a").toStdString(), hf("peft/bert-seqcls-ia3").toStdString()};
        o.weights = {0.5, 0.5};
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::merge_deltas(*m, o));
        o.sources = {(root + "/a").toStdString(), (root + "/b").toStdString()};
        o.weights = {0.5};
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::merge_deltas(*m, o));
        o.weights = {0.5, 0.5};
        o.combination = "average";
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::merge_deltas(*m, o));
        QCOMPARE(m->named_parameters(true).keys(), names);
    }
};

DT_REGISTER_TEST(TestMethods);
#include "test_methods.moc"
