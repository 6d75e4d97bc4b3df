// The families beyond BERT, GPT-2 and Llama: Mistral (sliding window), Llama variants (attention
// biases, tied head, head_dim, rope_scaling), Qwen2, GPT-NeoX, DistilBERT and T5, against outputs
// dumped from transformers 4.35 (tests/data/hf); the LM loss against transformers' own; bad configs.
#include "test_registry.h"
#include "test_util.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "models/rope.h"
#include "tree/module_tree.h"

#include <torch/torch.h>

#include <cmath>
#include <random>

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

using namespace dttest;

namespace {

void archExpectClose(const at::Tensor& got, const at::Tensor& ref, const QString& what) {
    QVERIFY2(got.defined(), qPrintable(what + " missing"));
    QVERIFY2(got.sizes() == ref.sizes(), qPrintable(what + ": shape " + QString::fromStdString(c10::str(got.sizes())) + " vs " +
                                                     QString::fromStdString(c10::str(ref.sizes()))));
    const double r = toleranceRatio(got, ref);
    QVERIFY2(r <= 1.0, qPrintable(QStringLiteral("%1 off by %2x the tolerance").arg(what).arg(r)));
}

// Loads `folder` with its config.json edited (`from` replaced by `to`) and expects a dt::Error
// whose message holds every needle.
void archConfigError(const QString& folder, const QByteArray& from, const QByteArray& to, const QStringList& needles) {
    QTemporaryDir dir;
    QVERIFY(QFile::copy(hf(folder) + "/model.safetensors", dir.path() + "/model.safetensors"));
    QFile src(hf(folder) + "/config.json");
    QVERIFY(src.open(QIODevice::ReadOnly));
    const QByteArray good = src.readAll();
    QVERIFY2(good.contains(from), from.constData());
    writeBytes(dir.path() + "/config.json", QByteArray(good).replace(from, to));
    try {
        dt::load_model(dir.path().toStdString());
        QFAIL(qPrintable("no error for " + QString::fromUtf8(to)));
    } catch (const dt::Error& e) {
        const QString msg = QString::fromStdString(e.what());
        for (const auto& n : needles) QVERIFY2(msg.contains(n), qPrintable("'" + n + "' not in: " + msg));
    }
}

// Compares every output of reference.safetensors that the model produces.
void archCompareReference(const QString& name, const QString& arch) {
    auto loaded = dt::load_model(hf(name).toStdString());
    QCOMPARE(QString::fromStdString(loaded.model->name()), arch);
    QVERIFY(loaded.report.missing.empty());
    QVERIFY(loaded.report.unexpected.empty());
    auto ref = dt::st::File::open((hf(name) + "/reference.safetensors").toStdString());
    torch::NoGradGuard ng;
    const auto out = loaded.model->forward(referenceInputs(*ref, true));
    archExpectClose(out.logits, ref->tensor("logits"), "logits");
    if (ref->contains("last_hidden_state")) archExpectClose(out.last_hidden_state, ref->tensor("last_hidden_state"), "last_hidden_state");
    if (ref->contains("encoder_last_hidden_state"))
        archExpectClose(out.encoder_last_hidden_state, ref->tensor("encoder_last_hidden_state"), "encoder_last_hidden_state");
    // Decoder-only and encoder models: hidden_states_<i>; T5: decoder_ and encoder_hidden_states_<i>.
    const bool seq2seq = ref->contains("decoder_hidden_states_0");
    for (const auto& [key, got] : {std::make_pair(std::string(seq2seq ? "decoder_hidden_states_" : "hidden_states_"), &out.hidden_states),
                                   std::make_pair(std::string("encoder_hidden_states_"), &out.encoder_hidden_states)}) {
        int layers = 0;
        while (ref->contains(key + std::to_string(layers))) ++layers;
        QCOMPARE(static_cast<int>(got->size()), layers);
        for (int i = 0; i < layers; ++i)
            archExpectClose((*got)[i], ref->tensor(key + std::to_string(i)), QString::fromStdString(key + std::to_string(i)));
    }
}

// tiny-t5 (random, seeded) and a batch with right padding in the encoder input.
std::shared_ptr<dt::TransformerModel> archTinyT5() { return dt::create_model(dt::builtin_config("tiny-t5"), 4); }
dt::ForwardInputs archT5Batch() {
    torch::manual_seed(12);
    dt::ForwardInputs in;
    in.input_ids = torch::randint(2, 1024, {2, 7}, torch::kLong);
    in.attention_mask = torch::ones({2, 7}, torch::kLong);
    in.attention_mask[1].narrow(0, 5, 2).fill_(0);
    in.decoder_input_ids = torch::randint(2, 1024, {2, 5}, torch::kLong);
    in.decoder_input_ids.select(1, 0).fill_(0);
    return in;
}
dt::DeltaSpec archSpec(const nlohmann::json& j) { return dt::DeltaSpec::from_json(j, "spec.json"); }
void archPerturb(dt::TransformerModel& m, const dt::DeltaSet& d) {
    torch::NoGradGuard ng;
    torch::manual_seed(5);
    auto params = m.named_parameters(true);
    for (const auto& meth : d.methods())
        for (const auto& name : meth->added()) {
            auto& t = params[name];
            if (name.find("ia3_l") != std::string::npos || name.find("magnitude") != std::string::npos) t.add_(torch::randn_like(t) * 0.1);
            else t.copy_(torch::randn_like(t) * 0.1);
        }
}

}  // namespace

class TestArchitectures : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void parity_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("arch");
        QTest::newRow("mistral-lm") << "mistral-lm" << "MistralForCausalLM";
        QTest::newRow("llama-bias-lm") << "llama-bias-lm" << "LlamaForCausalLM";
        QTest::newRow("gptneox-lm") << "gptneox-lm" << "GPTNeoXForCausalLM";
        QTest::newRow("distilbert-seqcls") << "distilbert-seqcls" << "DistilBertForSequenceClassification";
        QTest::newRow("t5-cg") << "t5-cg" << "T5ForConditionalGeneration";
        QTest::newRow("t5-gated-cg") << "t5-gated-cg" << "T5ForConditionalGeneration";
    }
    void parity() {
        QFETCH(QString, name);
        QFETCH(QString, arch);
        archCompareReference(name, arch);
    }

    // transformers' loss with labels (generate.safetensors): -100 ignored, shifted for causal LMs;
    // T5 shifts the labels right into decoder_input_ids.
    void lossMatchesTransformers_data() {
        QTest::addColumn<QString>("name");
        for (const char* n : {"gpt2-lm", "llama-gqa-lm", "mistral-lm", "llama-bias-lm", "gptneox-lm", "t5-cg", "t5-gated-cg"}) QTest::newRow(n) << QString(n);
    }
    void lossMatchesTransformers() {
        QFETCH(QString, name);
        auto m = dt::load_model(hf(name).toStdString());
        auto gen = dt::st::File::open((hf(name) + "/generate.safetensors").toStdString());
        dt::ForwardInputs in;
        in.input_ids = gen->tensor("input_ids");
        in.attention_mask = gen->tensor("attention_mask");
        in.labels = gen->tensor("labels");
        torch::NoGradGuard ng;
        const auto out = m.model->forward(in);
        archExpectClose(out.loss, gen->tensor("loss"), "loss");
        // Ignored targets matter: counting the -100 positions as class 0 changes the loss.
        QVERIFY((in.labels == -100).any().item<bool>());
    }

    void slidingWindowMasks() {
        // Mistral's window: positions before the window's end see the same keys with or without it,
        // later ones do not.
        auto windowed = dt::load_model(hf("mistral-lm").toStdString());
        QTemporaryDir dir;
        QVERIFY(QFile::copy(hf("mistral-lm") + "/model.safetensors", dir.path() + "/model.safetensors"));
        QFile src(hf("mistral-lm") + "/config.json");
        QVERIFY(src.open(QIODevice::ReadOnly));
        writeBytes(dir.path() + "/config.json", src.readAll().replace("\"sliding_window\": 4", "\"sliding_window\": null"));
        auto full = dt::load_model(dir.path().toStdString());
        dt::ForwardInputs in;
        in.input_ids = torch::arange(1, 13, torch::kLong).unsqueeze(0);
        torch::NoGradGuard ng;
        const at::Tensor a = windowed.model->forward(in).logits, b = full.model->forward(in).logits;
        QVERIFY(toleranceRatio(a.narrow(1, 0, 4), b.narrow(1, 0, 4)) <= 1.0);
        QVERIFY((a.narrow(1, 4, 8) - b.narrow(1, 4, 8)).abs().max().item<double>() > 1e-2);
    }

    void ropeScaling() {
        dt::ModelConfig c = dt::ModelConfig::from_json({{"model_type", "llama"}}, "test");
        // linear: positions divided by the factor.
        c.raw["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
        auto lin = dt::RopeConfig::from(c, 8, 10000.0, 32);
        auto plain = dt::RopeConfig::from(dt::ModelConfig::from_json({{"model_type", "llama"}}, "test"), 8, 10000.0, 32);
        QVERIFY(torch::allclose(dt::rope_cos_sin(lin, 8, 1, 9).first, dt::rope_cos_sin(plain, 2, 1, 3).first));
        // dynamic NTK: unchanged up to max_position_embeddings, a larger base beyond.
        c.raw["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
        auto dyn = dt::RopeConfig::from(c, 8, 10000.0, 32);
        QVERIFY(torch::equal(dt::rope_inv_freq(dyn, 32), dt::rope_inv_freq(plain, 32)));
        const double base = 10000.0 * std::pow(2.0 * 64 / 32 - 1.0, 8.0 / 6.0);
        QVERIFY(std::abs(dt::rope_inv_freq(dyn, 64)[1].item<double>() - std::pow(base, -2.0 / 8.0)) < 1e-6);
        // llama3: high frequencies kept, low ones divided by the factor, the middle band smoothed.
        c.raw["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                                 {"original_max_position_embeddings", 64}};
        auto l3 = dt::RopeConfig::from(c, 16, 10000.0, 512);
        const auto plain16 = dt::RopeConfig::from(dt::ModelConfig::from_json({{"model_type", "llama"}}, "test"), 16, 10000.0, 512);
        const at::Tensor inv = dt::rope_inv_freq(l3, 16), raw = dt::rope_inv_freq(plain16, 16);
        for (int i = 0; i < 8; ++i) {
            const double f = raw[i].item<double>(), wavelen = 2 * M_PI / f;
            double want = f;
            if (wavelen > 64.0) want = f / 8.0;
            else if (wavelen >= 16.0) {
                const double s = (64.0 / wavelen - 1.0) / 3.0;
                want = (1 - s) * f / 8.0 + s * f;
            }
            QVERIFY2(std::abs(inv[i].item<double>() - want) < 1e-7 * std::max(1.0, want), qPrintable(QString::number(i)));
        }
        QVERIFY(inv[0].item<double>() == raw[0].item<double>());
        QVERIFY(inv[7].item<double>() < raw[7].item<double>());
        c.raw["rope_scaling"] = {{"type", "yarn"}, {"factor", 2.0}};
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::RopeConfig::from(c, 8, 10000.0, 32));
    }

    void qwen2AndHeadDim() {
        // Qwen2: biases on q, k, v but not o; head_dim from the config when set.
        dt::ModelConfig c = dt::ModelConfig::from_json({{"architectures", {"Qwen2ForCausalLM"}}, {"model_type", "qwen2"}, {"vocab_size", 50},
                                                        {"hidden_size", 16}, {"num_hidden_layers", 1}, {"num_attention_heads", 4},
                                                        {"num_key_value_heads", 2}, {"intermediate_size", 32}, {"head_dim", 6}},
                                                       "qwen2-config");
        auto m = dt::create_model(c, 1);
        auto p = m->named_parameters(true);
        QVERIFY(p.contains("model.layers.0.self_attn.q_proj.bias"));
        QVERIFY(p.contains("model.layers.0.self_attn.v_proj.bias"));
        QVERIFY(!p.contains("model.layers.0.self_attn.o_proj.bias"));
        QCOMPARE(p["model.layers.0.self_attn.q_proj.weight"].size(0), 24);
        QCOMPARE(p["model.layers.0.self_attn.k_proj.weight"].size(0), 12);
        QCOMPARE(p["model.layers.0.self_attn.o_proj.weight"].size(1), 24);
        dt::ForwardInputs in;
        in.input_ids = torch::arange(0, 7, torch::kLong).unsqueeze(0);
        QCOMPARE(m->forward(in).logits.size(2), 50);
    }

    // Every method on T5 through the injection points: identity at init where the method promises
    // it, gradients only on its own tensors, and finite differences in double precision.
    void everyMethodOnT5_data() {
        QTest::addColumn<QByteArray>("specJson");
        QTest::addColumn<bool>("identity");
        const std::vector<std::pair<const char*, nlohmann::json>> rows = {
            {"lora", {{"method", "lora"}, {"r", 4}}},
            {"lora-dora-all-linear", {{"method", "lora"}, {"r", 2}, {"use_dora", true}, {"target_modules", "all-linear"}}},
            {"adapter", {{"method", "adapter"}, {"size", 8}}},
            {"adapter-parallel", {{"method", "adapter"}, {"size", 8}, {"placement", "parallel"}}},
            {"ia3", {{"method", "ia3"}}},
            {"prefix", {{"method", "prefix"}, {"num_virtual_tokens", 3}}},
            {"prompt", {{"method", "prompt"}, {"num_virtual_tokens", 3}}},
            {"layernorm", {{"method", "layernorm"}}},
            {"last_layers", {{"method", "last_layers"}, {"num_layers", 1}}},
            {"selective", {{"method", "selective"}, {"k", 2}, {"seed", 1}}},
        };
        for (const auto& [name, j] : rows) {
            const std::string n = name;
            QTest::newRow(name) << QByteArray::fromStdString(j.dump()) << (n.rfind("lora", 0) == 0 || n.rfind("adapter", 0) == 0 || n == "ia3");
        }
    }
    void everyMethodOnT5() {
        QFETCH(QByteArray, specJson);
        QFETCH(bool, identity);
        auto m = archTinyT5();
        m->to(torch::kDouble);
        const auto in = archT5Batch();
        at::Tensor base;
        {
            torch::NoGradGuard ng;
            base = m->forward(in).logits;
        }
        auto d = dt::DeltaSet::apply(*m, archSpec(nlohmann::json::parse(specJson.toStdString())));
        if (identity) {
            torch::NoGradGuard ng;
            QVERIFY2((m->forward(in).logits - base).abs().max().item<double>() <= 1e-9, "the delta changed the outputs at init");
        }
        archPerturb(*m, d);
        torch::manual_seed(9);
        const at::Tensor w = torch::randn({2, 5, 1024}, torch::kDouble);
        const auto loss = [&] { return (m->forward(in).logits * w).sum(); };
        loss().backward();
        std::vector<std::string> names;
        for (const auto& meth : d.methods()) {
            names.insert(names.end(), meth->added().begin(), meth->added().end());
            names.insert(names.end(), meth->unfrozen().begin(), meth->unfrozen().end());
        }
        if (QTest::currentDataTag() == QByteArray("lora-dora-all-linear"))  // DoRA's norm is a constant in backward
            names.erase(std::remove_if(names.begin(), names.end(), [](const std::string& n) { return n.find("magnitude") == std::string::npos; }),
                        names.end());
        QVERIFY(!names.empty());
        auto params = m->named_parameters(true);
        for (const auto& p : params)  // the frozen base gets no gradient
            if (!p.value().requires_grad()) QVERIFY2(!p.value().grad().defined(), p.key().c_str());
        std::mt19937 rng(2);
        int checked = 0;
        for (std::size_t k = 0; k < names.size() && checked < 12; k += std::max<std::size_t>(1, names.size() / 4)) {
            at::Tensor t = params[names[k]];
            QVERIFY2(t.grad().defined(), names[k].c_str());
            for (int e = 0; e < 3; ++e) {
                const auto idx = std::uniform_int_distribution<std::int64_t>(0, t.numel() - 1)(rng);
                double fp, fm;
                {
                    torch::NoGradGuard ng;
                    auto flat = t.view({-1});
                    const double orig = flat[idx].item<double>();
                    flat[idx] = orig + 1e-6;
                    fp = loss().item<double>();
                    flat[idx] = orig - 1e-6;
                    fm = loss().item<double>();
                    flat[idx] = orig;
                }
                const double numeric = (fp - fm) / 2e-6, analytic = t.grad().view({-1})[idx].item<double>();
                QVERIFY2(std::abs(numeric - analytic) <= 1e-5 + 1e-4 * std::abs(numeric),
                         qPrintable(QStringLiteral("%1[%2]: %3 vs %4").arg(QString::fromStdString(names[k])).arg(idx).arg(analytic).arg(numeric)));
                ++checked;
            }
        }
        QVERIFY(checked >= 3);
    }

    void t5MethodDefaultsFollowPeft() {
        auto m = archTinyT5();
        // LoRA: q and v in the encoder's self-attention, the decoder's self- and cross-attention.
        auto lora = dt::DeltaSet::apply(*m, archSpec({{"method", "lora"}}));
        QCOMPARE(static_cast<int>(lora.methods()[0]->targets().size()), 3 * 2 + 3 * 2 * 2);
        QVERIFY(std::find(lora.methods()[0]->targets().begin(), lora.methods()[0]->targets().end(), "decoder.block.1.layer.1.EncDecAttention.v") !=
                lora.methods()[0]->targets().end());
        lora.remove(*m);
        // IA3: k, v and wo, with wo scaling its input (feed-forward).
        auto ia3 = dt::DeltaSet::apply(*m, archSpec({{"method", "ia3"}}));
        auto p = m->named_parameters(true);
        QCOMPARE(p["encoder.block.0.layer.1.DenseReluDense.wo.ia3_l"].sizes(), (c10::IntArrayRef{1, 128}));
        QCOMPARE(p["decoder.block.0.layer.1.EncDecAttention.k.ia3_l"].sizes(), (c10::IntArrayRef{64, 1}));
        ia3.remove(*m);
        // T5 has no biases: BitFit refuses instead of training nothing, and names the way out.
        try {
            dt::DeltaSet::apply(*m, archSpec({{"method", "bitfit"}}));
            QFAIL("bitfit accepted a model without biases");
        } catch (const dt::Error& e) {
            QVERIFY2(QString(e.what()).contains("no bias terms"), e.what());
            QVERIFY2(QString(e.what()).contains("layernorm"), e.what());
        }
    }

    void t5TreeFoldsEachStack() {
        // Block 0 of each stack holds the relative position table, so blocks 1.. fold, separately
        // in the encoder and in the decoder.
        const std::string text = dt::ModuleTree::build(*archTinyT5()).to_text();
        QVERIFY2(text.find("encoder  T5Stack") != std::string::npos, text.c_str());
        const auto enc = text.find("encoder  T5Stack"), dec = text.find("decoder  T5Stack");
        QVERIFY(dec != std::string::npos && dec > enc);
        const auto fold_enc = text.find("block.1-2  T5Block x2", enc), fold_dec = text.find("block.1-2  T5Block x2", dec);
        QVERIFY2(fold_enc != std::string::npos && fold_enc < dec, text.c_str());
        QVERIFY2(fold_dec != std::string::npos, text.c_str());
        QVERIFY(text.find("block.0  T5Block") != std::string::npos);
    }

    void t5MergeMatchesUnmerged_data() {
        QTest::addColumn<QByteArray>("specJson");
        QTest::newRow("lora") << QByteArray(R"({"method": "lora", "r": 4})");
        QTest::newRow("ia3") << QByteArray(R"({"method": "ia3", "target_modules": ["k", "v", "wo", "wi_0"], "feedforward_modules": ["wo", "wi_0"]})");
    }
    void t5MergeMatchesUnmerged() {
        QFETCH(QByteArray, specJson);
        auto m = archTinyT5();
        m->to(torch::kDouble);  // T5's unscaled logits are large: compare merges without float32 rounding
        torch::NoGradGuard ng;
        std::map<std::string, at::Tensor> before;
        for (const auto& p : m->named_parameters(true)) before[p.key()] = p.value().clone();
        auto d = dt::DeltaSet::apply(*m, archSpec(nlohmann::json::parse(specJson.toStdString())));
        archPerturb(*m, d);
        const auto in = archT5Batch();
        const at::Tensor unmerged = m->forward(in).logits;
        QCOMPARE(d.merge(), 1);
        QVERIFY(toleranceRatio(m->forward(in).logits, unmerged) <= 1.0);
        QCOMPARE(d.unmerge(), 1);
        for (const auto& [name, t] : before)
            QVERIFY2((m->named_parameters(true)[name] - t).abs().max().item<double>() <= 1e-6, name.c_str());
    }

    void badConfigsNameTheField() {
        archConfigError("mistral-lm", "\"sliding_window\": 4", "\"sliding_window\": 0", {"config.json", "sliding_window"});
        archConfigError("mistral-lm", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", {"config.json", "num_key_value_heads"});
        archConfigError("llama-bias-lm", "\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 0.5}",
                        {"config.json", "rope_scaling.factor"});
        archConfigError("t5-cg", "\"relative_attention_num_buckets\": 32,", "", {"config.json", "relative_attention_num_buckets"});
        archConfigError("t5-cg", "\"feed_forward_proj\": \"relu\"", "\"feed_forward_proj\": \"gated-frob\"", {"config.json", "frob"});
        archConfigError("gptneox-lm", "\"rotary_pct\": 0.25", "\"rotary_pct\": 1.5", {"config.json", "rotary_pct"});
    }
};

DT_REGISTER_TEST(TestArchitectures);
#include "test_architectures.moc"
