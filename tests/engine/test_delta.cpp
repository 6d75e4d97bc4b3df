// Delta methods: identity at init, gradients only where chosen, frozen base bit-identical after
// AdamW steps, merge == unmerged, finite-difference gradients in double precision, parameter
// accounting against each method's formula, selection, combinations, and bad specs.
#include "test_registry.h"
#include "test_util.h"

#include "core/error.h"
#include "delta/budget.h"
#include "delta/delta_set.h"
#include "train/defaults.h"
#include "models/loader.h"
#include "tree/module_tree.h"

#include <torch/torch.h>

#include <QTest>

using namespace dttest;
using nlohmann::json;

namespace {

std::shared_ptr<dt::TransformerModel> tiny(std::uint64_t seed = 3) { return dt::create_model(dt::builtin_config("tiny-bert"), seed); }

dt::DeltaSpec spec(const json& j) { return dt::DeltaSpec::from_json(j, "spec.json"); }

dt::ForwardInputs batch(std::int64_t B = 2, std::int64_t T = 7, std::uint64_t seed = 11) {
    torch::manual_seed(seed);
    dt::ForwardInputs in;
    in.input_ids = torch::randint(1, 1024, {B, T}, torch::kLong);
    in.attention_mask = torch::ones({B, T}, torch::kLong);
    in.attention_mask[1][T - 1] = 0;
    return in;
}

std::map<std::string, at::Tensor> snapshot(const dt::TransformerModel& m) {
    std::map<std::string, at::Tensor> s;
    for (const auto& p : m.named_parameters(true)) s[p.key()] = p.value().detach().clone();
    return s;
}

// Fills every trainable delta tensor with small random values so merges and gradients are non-trivial.
void perturb(dt::TransformerModel& m, const dt::DeltaSet& d, std::uint64_t seed) {
    torch::NoGradGuard ng;
    torch::manual_seed(seed);
    auto params = m.named_parameters(true);
    for (const auto& meth : d.methods())
        for (const auto& name : meth->added()) {
            auto& t = params[name];
            if (name.find("vera_A") != std::string::npos || name.find("vera_B") != std::string::npos) continue;  // frozen, shared
            if (name.find("ia3_l") != std::string::npos || name.find("magnitude") != std::string::npos || name.find("vera_lambda_d") != std::string::npos)
                t.add_(torch::randn_like(t) * 0.1);
            else
                t.copy_(torch::randn_like(t) * 0.1);
        }
}

const std::vector<std::pair<const char*, json>>& methodSpecs() {
    static const std::vector<std::pair<const char*, json>> v = {
        {"lora", {{"method", "lora"}, {"r", 4}, {"lora_alpha", 8}}},
        {"lora-rslora", {{"method", "lora"}, {"r", 4}, {"lora_alpha", 8}, {"use_rslora", true}}},
        {"lora-dora", {{"method", "lora"}, {"r", 4}, {"use_dora", true}, {"target_modules", {"query", "value", "dense"}}}},
        {"lora-gaussian", {{"method", "lora"}, {"init_lora_weights", "gaussian"}}},
        {"adapter-houlsby", {{"method", "adapter"}, {"size", 8}}},
        {"adapter-pfeiffer", {{"method", "adapter"}, {"size", 8}, {"placement", "pfeiffer"}}},
        {"adapter-parallel", {{"method", "adapter"}, {"size", 8}, {"placement", "parallel"}, {"scaling", 2.0}}},
        {"ia3", {{"method", "ia3"}}},
        {"bitfit", {{"method", "bitfit"}}},
        {"prefix", {{"method", "prefix"}, {"num_virtual_tokens", 5}}},
        {"prefix-projection", {{"method", "prefix"}, {"num_virtual_tokens", 5}, {"prefix_projection", true}, {"encoder_hidden_size", 16}}},
        {"prompt", {{"method", "prompt"}, {"num_virtual_tokens", 4}}},
        {"layernorm", {{"method", "layernorm"}}},
        {"last_layers", {{"method", "last_layers"}, {"num_layers", 2}}},
        {"selective", {{"method", "selective"}, {"k", 3}, {"seed", 5}}},
        {"full", {{"method", "full"}}},
        {"lora-pissa", {{"method", "lora"}, {"r", 4}, {"lora_alpha", 8}, {"init_lora_weights", "pissa"}}},
        {"lora-pissa-niter", {{"method", "lora"}, {"r", 4}, {"init_lora_weights", "pissa"}, {"pissa_niter", 4}}},
        {"lora-olora", {{"method", "lora"}, {"r", 4}, {"lora_alpha", 8}, {"init_lora_weights", "olora"}}},
        {"adalora", {{"method", "adalora"}, {"init_r", 6}, {"target_r", 2}, {"target_modules", {"query", "value", "intermediate.dense"}}}},
        {"loha", {{"method", "loha"}, {"r", 4}, {"alpha", 6}, {"target_modules", {"query", "value", "intermediate.dense"}}}},
        {"lokr", {{"method", "lokr"}, {"r", 2}, {"target_modules", {"query", "intermediate.dense"}}}},
        {"lokr-both", {{"method", "lokr"}, {"r", 1}, {"decompose_both", true}, {"decompose_factor", 4}, {"target_modules", {"query", "intermediate.dense"}}}},
        {"oft", {{"method", "oft"}, {"r", 4}, {"target_modules", {"query", "value", "intermediate.dense"}}}},
        {"oft-uneven-shared", {{"method", "oft"}, {"r", 5}, {"block_share", true}, {"target_modules", {"query", "value"}}}},
        {"vera", {{"method", "vera"}, {"r", 8}, {"target_modules", {"query", "value", "intermediate.dense"}}}},
        {"ptuning-mlp", {{"method", "ptuning"}, {"num_virtual_tokens", 4}, {"encoder_hidden_size", 16}}},
        {"ptuning-lstm", {{"method", "ptuning"}, {"num_virtual_tokens", 4}, {"encoder_hidden_size", 8}, {"encoder_reparameterization_type", "LSTM"}}},
    };
    return v;
}

void addMethodRows() {
    QTest::addColumn<QByteArray>("specJson");
    for (const auto& [name, j] : methodSpecs()) QTest::newRow(name) << QByteArray::fromStdString(j.dump());
}

double lossOf(dt::TransformerModel& m, const dt::ForwardInputs& in, const at::Tensor& w) {
    at::Tensor lg = m.forward(in).logits;
    return (lg.narrow(1, lg.size(1) - w.size(1), w.size(1)) * w).sum().item<double>();
}

}  // namespace

class TestDelta : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void activationEstimate() {
        // BERT-base sizes, batch 8 x 128, fp32: 12 layers x 8·128·768 x (34 + 5·12·128/768) x 2 bytes.
        auto m = dt::create_model(dt::builtin_config("bert-base-shape"), 0);
        QCOMPARE(dt::estimate_activation_bytes(*m, 8, 128), std::int64_t(12) * 8 * 128 * 768 * (34 + 10) * 2);
        QCOMPARE(dt::estimate_activation_bytes(*m, 8, 128, 2) * 2, dt::estimate_activation_bytes(*m, 8, 128, 4));
        QVERIFY(dt::estimate_activation_bytes(*m, 8, 256) > 2 * dt::estimate_activation_bytes(*m, 8, 128));  // attention grows with s²
    }

    void identityAtInit_data() {
        QTest::addColumn<QByteArray>("specJson");
        for (const char* n : {"lora", "lora-rslora", "lora-dora", "lora-gaussian", "adapter-houlsby", "adapter-pfeiffer", "adapter-parallel", "ia3",
                              "lora-pissa", "lora-pissa-niter", "lora-olora", "adalora", "loha", "lokr", "lokr-both", "oft", "oft-uneven-shared", "vera"})
            for (const auto& [name, j] : methodSpecs())
                if (std::string(name) == n) QTest::newRow(name) << QByteArray::fromStdString(j.dump());
    }
    void identityAtInit() {
        QFETCH(QByteArray, specJson);
        auto m = tiny();
        torch::NoGradGuard ng;
        const auto in = batch();
        const at::Tensor base = m->forward(in).logits;
        auto d = dt::DeltaSet::apply(*m, spec(json::parse(specJson.toStdString())));
        const at::Tensor with = m->forward(in).logits;
        QVERIFY2((with - base).abs().max().item<double>() <= 1e-6, "the delta changed the outputs at init");
        perturb(*m, d, 1);
        QVERIFY2((m->forward(in).logits - base).abs().max().item<double>() > 1e-4, "the delta has no effect once trained");
    }

    void promptAndPrefixExtendOnlyTheKeys() {
        auto m = tiny();
        torch::NoGradGuard ng;
        const auto in = batch();
        auto d = dt::DeltaSet::apply(*m, spec({{"method", "prompt"}, {"num_virtual_tokens", 4}}));
        QCOMPARE(m->forward(in).logits.size(1), in.input_ids.size(1) + 4);  // prompt positions come first
        d.remove(*m);
        auto p = dt::DeltaSet::apply(*m, spec({{"method", "prefix"}, {"num_virtual_tokens", 5}}));
        QCOMPARE(m->forward(in).logits.size(1), in.input_ids.size(1));  // prefixes add keys, not positions
        // ...but they shift the positions of the real tokens: too long an input is a clear error.
        dt::ForwardInputs longer;
        longer.input_ids = torch::ones({1, 126}, torch::kLong);
        try {
            m->forward(longer);
            QFAIL("positions past the table accepted");
        } catch (const dt::Error& e) {
            QVERIFY2(QString::fromStdString(e.what()).contains("5 virtual tokens need position 130"), e.what());
        }
    }

    void onlyChosenParametersTrain_data() { addMethodRows(); }
    void onlyChosenParametersTrain() {
        QFETCH(QByteArray, specJson);
        auto m = tiny();
        auto d = dt::DeltaSet::apply(*m, spec(json::parse(specJson.toStdString())));
        m->train();
        const auto before = snapshot(*m);
        auto params = dt::trainable_parameters(*m);
        QVERIFY(!params.empty());
        torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-2).weight_decay(0.01));
        const auto in = batch();
        for (int step = 0; step < 3; ++step) {
            opt.zero_grad();
            at::Tensor lg = m->forward(in).logits;
            (lg.pow(2).mean()).backward();
            for (const auto& p : m->named_parameters(true))
                if (!p.value().requires_grad()) QVERIFY2(!p.value().grad().defined(), p.key().c_str());
            opt.step();
        }
        std::set<std::string> trainable;
        for (const auto& p : m->named_parameters(true))
            if (p.value().requires_grad()) trainable.insert(p.key());
        int moved = 0;
        for (const auto& p : m->named_parameters(true)) {
            auto it = before.find(p.key());
            if (!p.value().requires_grad()) {
                QVERIFY2(torch::equal(p.value(), it->second), qPrintable(QString::fromStdString("frozen tensor changed: " + p.key())));
            } else if (!torch::equal(p.value(), it->second)) {
                ++moved;
            }
        }
        QVERIFY2(moved > 0, "no trainable tensor moved");
        // The trainable set is exactly what the methods claimed or added.
        std::set<std::string> claimed;
        for (const auto& meth : d.methods()) {
            claimed.insert(meth->added().begin(), meth->added().end());
            claimed.insert(meth->unfrozen().begin(), meth->unfrozen().end());
        }
        const auto tied = m->tied_parameters();
        for (const auto& t : trainable) {
            auto c = tied.count(t) ? tied.at(t) : t;
            QVERIFY2(claimed.count(c), qPrintable(QString::fromStdString("trains but unclaimed: " + t)));
        }
    }

    void mergeMatchesUnmerged_data() {
        QTest::addColumn<QByteArray>("specJson");
        for (const char* n : {"lora", "lora-rslora", "lora-dora", "ia3", "lora-pissa", "lora-olora", "adalora", "loha", "lokr", "lokr-both", "oft",
                              "oft-uneven-shared", "vera"})
            for (const auto& [name, j] : methodSpecs())
                if (std::string(name) == n) QTest::newRow(name) << QByteArray::fromStdString(j.dump());
    }
    void mergeMatchesUnmerged() {
        QFETCH(QByteArray, specJson);
        auto m = tiny();
        torch::NoGradGuard ng;
        auto d = dt::DeltaSet::apply(*m, spec(json::parse(specJson.toStdString())));
        perturb(*m, d, 2);
        const auto base = snapshot(*m);  // PiSSA and OLoRA keep a residual in the base from attach on
        const auto in = batch();
        const at::Tensor unmerged = m->forward(in).logits;
        QCOMPARE(d.merge(), 1);
        const at::Tensor merged = m->forward(in).logits;
        QVERIFY2(toleranceRatio(merged, unmerged) <= 1.0, "merged outputs differ");
        QCOMPARE(d.unmerge(), 1);
        for (const auto& [name, t] : base)
            QVERIFY2((m->named_parameters(true)[name] - t).abs().max().item<double>() <= 1e-6,
                     qPrintable(QString::fromStdString("unmerge did not restore " + name)));
        QVERIFY(toleranceRatio(m->forward(in).logits, unmerged) <= 1.0);
    }

    void finiteDifferenceGradients_data() { addMethodRows(); }
    void finiteDifferenceGradients() {
        QFETCH(QByteArray, specJson);
        auto m = tiny(5);
        m->to(torch::kDouble);
        auto d = dt::DeltaSet::apply(*m, spec(json::parse(specJson.toStdString())));
        perturb(*m, d, 3);
        m->eval();
        const auto in = batch(2, 5);
        torch::manual_seed(9);
        const at::Tensor w = torch::randn({2, 5, 1024}, torch::kDouble);
        // Analytic gradients.
        for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
        at::Tensor lg = m->forward(in).logits;
        (lg.narrow(1, lg.size(1) - 5, 5) * w).sum().backward();
        // Central differences on a few entries of every trainable tensor the methods own.
        auto params = m->named_parameters(true);
        std::vector<std::string> names;
        for (const auto& meth : d.methods()) {
            for (const auto& n : meth->added())
                if (params[n].requires_grad()) names.push_back(n);  // VeRA's shared projections are frozen
            names.insert(names.end(), meth->unfrozen().begin(), meth->unfrozen().end());
        }
        if (QTest::currentDataTag() == QByteArray("lora-dora")) {
            // DoRA treats ||W + sBA|| as a constant in the backward pass (as the paper and PEFT do), so
            // only the magnitude's gradient is the true derivative; check that one.
            names.erase(std::remove_if(names.begin(), names.end(),
                                       [](const std::string& n) { return n.find("magnitude") == std::string::npos; }),
                        names.end());
        }
        QVERIFY(!names.empty());
        std::mt19937 rng(1);
        int checked = 0;
        for (std::size_t k = 0; k < names.size() && checked < 24; k += std::max<std::size_t>(1, names.size() / 8)) {
            at::Tensor t = params[names[k]];
            const at::Tensor g = t.grad();
            QVERIFY2(g.defined(), names[k].c_str());
            for (int e = 0; e < 3; ++e) {
                const std::int64_t idx = std::uniform_int_distribution<std::int64_t>(0, t.numel() - 1)(rng);
                const double h = 1e-6;
                double fp, fm;
                {
                    torch::NoGradGuard ng;
                    auto flat = t.view({-1});
                    const double orig = flat[idx].item<double>();
                    flat[idx] = orig + h;
                    fp = lossOf(*m, in, w);
                    flat[idx] = orig - h;
                    fm = lossOf(*m, in, w);
                    flat[idx] = orig;
                }
                const double numeric = (fp - fm) / (2 * h), analytic = g.view({-1})[idx].item<double>();
                QVERIFY2(std::abs(numeric - analytic) <= 1e-5 + 1e-4 * std::abs(numeric),
                         qPrintable(QStringLiteral("%1[%2]: analytic %3 vs numeric %4").arg(QString::fromStdString(names[k])).arg(idx).arg(analytic).arg(numeric)));
                ++checked;
            }
        }
        QVERIFY(checked >= 3);
    }

    void accountingMatchesFormulas() {
        // tiny-bert: d = 64, FFN 256, 4 layers, 4 heads (D = 16), vocab 1024.
        const std::int64_t d = 64, L = 4, ffn = 256;
        struct Case {
            json s;
            std::int64_t added, unfrozen;
        };
        std::int64_t biases = 0, norms = 0, last2 = 0, all = 0;
        {
            auto m = tiny();
            for (auto& [n, t] : dt::state_tensors(*m)) {
                all += t.numel();
                if (n.size() > 5 && n.compare(n.size() - 5, 5, ".bias") == 0) biases += t.numel();
                if (n.find("LayerNorm") != std::string::npos) norms += t.numel();
                if (n.rfind("bert.encoder.layer.2.", 0) == 0 || n.rfind("bert.encoder.layer.3.", 0) == 0) last2 += t.numel();
            }
        }
        const std::vector<Case> cases = {
            {{{"method", "lora"}, {"r", 8}}, L * 2 * 8 * (d + d), 0},                                    // r (d_in + d_out) per target
            {{{"method", "lora"}, {"r", 4}, {"target_modules", {"intermediate.dense"}}}, L * 4 * (d + ffn), 0},
            {{{"method", "lora"}, {"r", 4}, {"use_dora", true}}, L * 2 * (4 * (d + d) + d), 0},            // + d_out magnitude
            {{{"method", "adapter"}, {"size", 8}}, L * 2 * (2 * 8 * d + d + 8), 0},                        // 2md + d + m per site
            {{{"method", "adapter"}, {"size", 8}, {"placement", "pfeiffer"}}, L * (2 * 8 * d + d + 8), 0},
            {{{"method", "ia3"}}, L * (d + d + d + ffn), 0},  // key, value out; attention.output.dense and output.dense inputs
            {{{"method", "prefix"}, {"num_virtual_tokens", 5}}, 5 * 2 * L * d, 0},                        // P 2 L H D
            {{{"method", "prefix"}, {"num_virtual_tokens", 5}, {"prefix_projection", true}, {"encoder_hidden_size", 16}},
             5 * d + (d * 16 + 16) + (16 * 2 * L * d + 2 * L * d), 0},
            {{{"method", "prompt"}, {"num_virtual_tokens", 4}}, 4 * d, 0},                                // P d
            {{{"method", "bitfit"}}, 0, biases},
            {{{"method", "layernorm"}}, 0, norms},
            {{{"method", "last_layers"}, {"num_layers", 2}}, 0, last2},
            {{{"method", "full"}}, 0, all},
        };
        for (const auto& c : cases) {
            auto m = tiny();
            auto ds = dt::DeltaSet::apply(*m, spec(c.s));
            const auto acc = ds.accounting(*m);
            const QByteArray label = QByteArray::fromStdString(c.s.dump());
            QVERIFY2(acc.per_method.size() == 1, label);
            QVERIFY2(acc.per_method[0].added == c.added, label + " added " + QByteArray::number(acc.per_method[0].added));
            QVERIFY2(acc.per_method[0].unfrozen == c.unfrozen, label + " unfrozen " + QByteArray::number(acc.per_method[0].unfrozen));
            QVERIFY2(acc.trainable_params == c.added + c.unfrozen, label);
            QCOMPARE(acc.base_params, all);
            QCOMPARE(acc.total_params, all + c.added);
            QCOMPARE(acc.gradient_bytes, 4 * acc.trainable_params);
            QCOMPARE(acc.adamw_bytes, 8 * acc.trainable_params);
            QCOMPARE(acc.weight_bytes, 4 * acc.total_params);
            QCOMPARE(dt::ModuleTree::build(*m).root().trainable_params, acc.trainable_params);
        }
    }

    // The budget: soft prompt tokens lengthen every sequence in the activation estimate; prefix
    // tuning's table is spread evenly over the layers in the chart (no "other").
    void budgetCountsPromptTokensAndSpreadsPrefixes() {
        auto m = tiny();
        const dt::ModuleTree tree = dt::ModuleTree::build(*m);
        const dt::Budget lora = dt::budget(*m, tree, spec({{"method", "lora"}}));
        const dt::Budget prompt = dt::budget(*m, tree, spec({{"method", "prompt"}, {"num_virtual_tokens", 32}}));
        QCOMPARE(lora.virtual_tokens, std::int64_t(0));
        QCOMPARE(prompt.virtual_tokens, std::int64_t(32));
        QCOMPARE(prompt.activation_bytes, dt::estimate_activation_bytes(*m, dt::TrainingDefaults::batch_size, 128 + 32));
        QVERIFY(prompt.activation_bytes > lora.activation_bytes);
        const dt::Budget prefix = dt::budget(*m, tree, spec({{"method", "prefix"}, {"num_virtual_tokens", 5}}));
        const auto layers = static_cast<std::size_t>(m->num_layers());
        QCOMPARE(prefix.columns.size(), layers + 1);
        double sum = 0;
        for (std::size_t l = 0; l < layers; ++l) {
            QCOMPARE(prefix.counts[0][l], prefix.counts[0][0]);
            sum += prefix.counts[0][l];
        }
        QCOMPARE(prefix.counts[0][layers], 0.0);
        QCOMPARE(sum, static_cast<double>(prefix.accounting.trainable_params));
    }

    void defaultTargetsAndLayerRanges() {
        auto m = dt::load_model((dataDir() + "/hf/bert-mlm").toStdString()).model;
        auto d = dt::DeltaSet::apply(*m, spec({{"method", "lora"}}));
        QCOMPARE(d.methods()[0]->targets(),
                 (std::vector<std::string>{"bert.encoder.layer.0.attention.self.query", "bert.encoder.layer.0.attention.self.value",
                                           "bert.encoder.layer.1.attention.self.query", "bert.encoder.layer.1.attention.self.value"}));
        d.remove(*m);
        auto e = dt::DeltaSet::apply(*m, spec({{"method", "lora"}, {"target_modules", {"query", "key", "value"}}, {"layers_to_transform", {1}}}));
        QCOMPARE(e.methods()[0]->targets(),
                 (std::vector<std::string>{"bert.encoder.layer.1.attention.self.query", "bert.encoder.layer.1.attention.self.key",
                                           "bert.encoder.layer.1.attention.self.value"}));
        QVERIFY(m->named_parameters(true).contains("bert.encoder.layer.1.attention.self.key.lora_A.weight"));
    }

    void combinedMethodsAndClaims() {
        auto m = tiny();
        auto d = dt::DeltaSet::apply(*m, spec(json::parse(R"({"methods": [{"method": "lora"}, {"method": "bitfit"}], "modules_to_save": ["cls.predictions.transform.dense"]})")));
        const auto acc = d.accounting(*m);
        QCOMPARE(acc.per_method.size(), std::size_t(3));
        QCOMPARE(acc.per_method[0].added, 8192);
        QCOMPARE(acc.per_method[2].method, std::string("modules_to_save"));
        QCOMPARE(acc.per_method[2].unfrozen, 64 * 64);  // the bias is already bitfit's
        // bitfit + full overlap on every bias: refused, naming a parameter, and the model is untouched.
        auto m2 = tiny();
        const auto names_before = m2->named_parameters(true).keys();
        try {
            dt::DeltaSet::apply(*m2, spec(json::parse(R"({"methods": [{"method": "lora"}, {"method": "bitfit"}, {"method": "full"}]})")));
            QFAIL("overlap accepted");
        } catch (const dt::Error& e) {
            const QString msg = QString::fromStdString(e.what());
            QVERIFY2(msg.contains("claimed by both bitfit and full") && msg.contains(".bias'"), qPrintable(msg));
        }
        QCOMPARE(m2->named_parameters(true).keys(), names_before);
        for (const auto& p : m2->parameters()) QVERIFY(p.requires_grad());
    }

    void removeRestoresTheBase() {
        auto m = tiny();
        torch::NoGradGuard ng;
        const auto in = batch();
        const at::Tensor base = m->forward(in).logits;
        const auto names = m->named_parameters(true).keys();
        auto d = dt::DeltaSet::apply(*m, spec(json::parse(R"({"methods": [{"method": "lora"}, {"method": "adapter"}, {"method": "ia3"}, {"method": "prefix"}, {"method": "prompt"}]})")));
        perturb(*m, d, 4);
        QVERIFY(!torch::allclose(m->forward(in).logits.narrow(1, 0, 1), base.narrow(1, 0, 1)));
        d.remove(*m);
        QCOMPARE(m->named_parameters(true).keys(), names);
        QVERIFY(torch::equal(m->forward(in).logits, base));
    }

    void prefixFoldKeepsOutputs() {
        auto m = tiny();
        torch::NoGradGuard ng;
        auto d = dt::DeltaSet::apply(*m, spec({{"method", "prefix"}, {"num_virtual_tokens", 3}, {"prefix_projection", true}}));
        const auto in = batch();
        const at::Tensor before = m->forward(in).logits;
        QVERIFY(d.methods()[0]->can_fold());
        d.methods()[0]->fold(*m);
        QCOMPARE(d.methods()[0]->added(), std::vector<std::string>{"prefix_encoder.embedding.weight"});
        QCOMPARE(m->named_parameters(true)["prefix_encoder.embedding.weight"].sizes().vec(), (std::vector<std::int64_t>{3, 2 * 4 * 64}));
        QVERIFY(toleranceRatio(m->forward(in).logits, before) <= 1.0);
    }

    void selectiveIsSeeded() {
        auto pick = [](int seed) {
            auto m = tiny();
            auto d = dt::DeltaSet::apply(*m, spec({{"method", "selective"}, {"k", 4}, {"seed", seed}}));
            return d.methods()[0]->targets();
        };
        QCOMPARE(pick(1), pick(1));
        QVERIFY(pick(1) != pick(2));
        QCOMPARE(pick(1).size(), std::size_t(4));
    }

    void loraBiasModes() {
        auto m = tiny();
        auto d = dt::DeltaSet::apply(*m, spec({{"method", "lora"}, {"bias", "lora_only"}}));
        QCOMPARE(d.accounting(*m).per_method[0].unfrozen, 4 * 2 * 64);
        d.remove(*m);
        auto all = dt::DeltaSet::apply(*m, spec({{"method", "lora"}, {"bias", "all"}}));
        auto bit = tiny();
        auto b = dt::DeltaSet::apply(*bit, spec({{"method", "bitfit"}}));
        QCOMPARE(all.accounting(*m).per_method[0].unfrozen, b.accounting(*bit).per_method[0].unfrozen);
    }

    void badSpecs_data() {
        QTest::addColumn<QByteArray>("specJson");
        QTest::addColumn<QStringList>("needles");
        QTest::newRow("unknown method") << QByteArray(R"({"method": "loraa"})") << QStringList{"unknown method 'loraa'", "methods: lora"};
        QTest::newRow("r zero") << QByteArray(R"({"method": "lora", "r": 0})") << QStringList{"(lora)", "'r' must be at least 1"};
        QTest::newRow("r not int") << QByteArray(R"({"method": "lora", "r": "8"})") << QStringList{"'r' must be an integer"};
        QTest::newRow("no match") << QByteArray(R"({"method": "lora", "target_modules": ["q_proj"]})") << QStringList{"target_modules", "matched no Linear"};
        QTest::newRow("not linear") << QByteArray(R"({"method": "lora", "target_modules": ["attention"]})") << QStringList{"target_modules", "matched no Linear"};
        QTest::newRow("typo field") << QByteArray(R"({"method": "lora", "lora_alpah": 16})") << QStringList{"unknown field 'lora_alpah'", "lora_alpha"};
        QTest::newRow("bad placement") << QByteArray(R"({"method": "adapter", "placement": "middle"})") << QStringList{"placement", "houlsby"};
        QTest::newRow("bad activation") << QByteArray(R"({"method": "adapter", "activation": "sigmoidish"})") << QStringList{"activation"};
        QTest::newRow("too many layers") << QByteArray(R"({"method": "last_layers", "num_layers": 9})") << QStringList{"num_layers", "4 blocks"};
        QTest::newRow("two loras") << QByteArray(R"({"methods": [{"method": "lora"}, {"method": "lora", "target_modules": ["value"]}]})")
                                   << QStringList{"already has LoRA", "self.value"};
        QTest::newRow("bad group") << QByteArray(R"({"method": "bitfit", "groups": ["queries"]})") << QStringList{"groups", "queries"};
        QTest::newRow("empty methods") << QByteArray(R"({"methods": []})") << QStringList{"'methods'"};
        QTest::newRow("selective needs targets") << QByteArray(R"({"method": "selective"})") << QStringList{"target_modules or k"};
        QTest::newRow("dropout range") << QByteArray(R"({"method": "lora", "lora_dropout": 1.5})") << QStringList{"lora_dropout"};
    }
    void badSpecs() {
        QFETCH(QByteArray, specJson);
        QFETCH(QStringList, needles);
        auto m = tiny();
        const auto names = m->named_parameters(true).keys();
        try {
            dt::DeltaSet::apply(*m, spec(json::parse(specJson.toStdString())));
            QFAIL("bad spec accepted");
        } catch (const dt::Error& e) {
            const QString msg = QString::fromStdString(e.what());
            QVERIFY2(msg.contains("spec.json"), qPrintable(msg));
            for (const auto& n : needles) QVERIFY2(msg.contains(n), qPrintable("'" + n + "' not in: " + msg));
        }
        QCOMPARE(m->named_parameters(true).keys(), names);  // nothing left half-attached
    }

    void everyMethodRunsOnLlama() {
        // Methods touch only injection points, so they work on another family unchanged.
        auto m = dt::load_model((dataDir() + "/hf/llama-gqa-lm").toStdString()).model;
        dt::ForwardInputs in;
        torch::manual_seed(3);
        in.input_ids = torch::randint(1, 320, {2, 6}, torch::kLong);
        at::Tensor base;
        {
            torch::NoGradGuard ng;
            base = m->forward(in).logits;
        }
        for (const char* name : {"lora", "ia3", "adapter", "prefix", "prompt", "layernorm", "last_layers", "full"}) {
            auto d = dt::DeltaSet::apply(*m, spec({{"method", name}}));
            at::Tensor out = m->forward(in).logits;
            const std::string n = name;
            if (n == "lora" || n == "ia3" || n == "adapter")
                QVERIFY2((out - base).abs().max().item<double>() <= 1e-6, name);
            out.pow(2).mean().backward();
            int with_grad = 0;
            for (const auto& p : m->named_parameters(true)) {
                if (p.value().requires_grad()) with_grad += p.value().grad().defined();
                else QVERIFY2(!p.value().grad().defined(), p.key().c_str());
            }
            QVERIFY2(with_grad > 0, name);
            for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
            d.remove(*m);
        }
        auto d = dt::DeltaSet::apply(*m, spec({{"method", "lora"}}));
        QCOMPARE(d.methods()[0]->targets().front(), std::string("model.layers.0.self_attn.q_proj"));
    }

    void adapterNeedsSites() {
        // A model without Sites (a stand-in for an architecture that exposes none).
        struct NoSites : dt::TransformerModel {
            NoSites() : dt::TransformerModel("NoSites") { register_module("proj", dt::Linear(4, 4)); }
            dt::ForwardOutputs forward(const dt::ForwardInputs&) override { return {}; }
            void validate_inputs(const dt::ForwardInputs&) const override {}
            std::string base_model_prefix() const override { return "x"; }
            bool is_base_model() const override { return true; }
            std::int64_t num_layers() const override { return 0; }
            std::string word_embeddings_path() const override { return "none"; }
            std::int64_t hidden_size() const override { return 4; }
            void init_weights(std::uint64_t, const std::set<std::string>*) override {}
        } model;
        try {
            dt::DeltaSet::apply(model, spec({{"method", "adapter"}}));
            QFAIL("adapter attached to a model without sites");
        } catch (const dt::Error& e) {
            QVERIFY2(QString::fromStdString(e.what()).contains("has no adapter sites"), e.what());
        }
        auto d = dt::DeltaSet::apply(model, spec({{"method", "lora"}, {"target_modules", {"proj"}}}));
        QCOMPARE(d.methods()[0]->targets(), std::vector<std::string>{"proj"});
    }
};

DT_REGISTER_TEST(TestDelta);
#include "test_delta.moc"
