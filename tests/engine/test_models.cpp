// BERT-family models against outputs dumped from Hugging Face transformers (and peft for the
// prefix/prompt injection points), save/load round trips, prefix handling and bad input.
#include "test_registry.h"
#include "test_util.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "export/peft_export.h"
#include "export/peft_import.h"
#include "io/weight_set.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "tree/module_tree.h"

#include <torch/torch.h>

#include <map>

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <functional>

using namespace dttest;

namespace {


void expectClose(const at::Tensor& got, const at::Tensor& ref, const char* what) {
    const double r = toleranceRatio(got, ref);
    QVERIFY2(r <= 1.0, qPrintable(QStringLiteral("%1 off by %2x the tolerance").arg(what).arg(r)));
}

void expectError(const std::function<void()>& f, const QStringList& needles) {
    try {
        f();
        QFAIL("no error raised");
    } catch (const dt::Error& e) {
        const QString msg = QString::fromStdString(e.what());
        for (const auto& n : needles) QVERIFY2(msg.contains(n), qPrintable("'" + n + "' not in: " + msg));
    }
}

void copyFile(const QString& from, const QString& to) { QVERIFY(QFile::copy(from, to)); }

}  // namespace

class TestModels : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void parityWithTransformers_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("arch");
        QTest::newRow("bert-mlm") << "bert-mlm" << "BertForMaskedLM";
        QTest::newRow("bert-seqcls") << "bert-seqcls" << "BertForSequenceClassification";
        QTest::newRow("roberta-mlm") << "roberta-mlm" << "RobertaForMaskedLM";
        QTest::newRow("llama-gqa-lm") << "llama-gqa-lm" << "LlamaForCausalLM";
        QTest::newRow("gpt2-lm") << "gpt2-lm" << "GPT2LMHeadModel";
    }
    void parityWithTransformers() {
        QFETCH(QString, name);
        QFETCH(QString, arch);
        auto loaded = dt::load_model(hf(name).toStdString());
        QCOMPARE(QString::fromStdString(loaded.model->name()), arch);
        QVERIFY(loaded.report.missing.empty());
        QVERIFY(loaded.report.unexpected.empty());
        auto ref = dt::st::File::open((hf(name) + "/reference.safetensors").toStdString());
        torch::NoGradGuard ng;
        auto out = loaded.model->forward(referenceInputs(*ref, true));
        expectClose(out.logits, ref->tensor("logits"), "logits");
        expectClose(out.last_hidden_state, ref->tensor("last_hidden_state"), "last_hidden_state");
        if (ref->contains("pooler_output")) expectClose(out.pooler_output, ref->tensor("pooler_output"), "pooler_output");
        int layers = 0;
        while (ref->contains("hidden_states_" + std::to_string(layers))) ++layers;
        QCOMPARE(static_cast<int>(out.hidden_states.size()), layers);
        for (int i = 0; i < layers; ++i)
            expectClose(out.hidden_states[i], ref->tensor("hidden_states_" + std::to_string(i)),
                        qPrintable(QStringLiteral("hidden_states_%1").arg(i)));
    }

    void gpt2Conv1dLayoutAndLora() {
        // GPT-2 stores Conv1D weights as (in, out): saving writes them back that way, byte for byte
        // what transformers wrote; LoRA's default target is c_attn, merges exactly, and trains.
        auto loaded = dt::load_model(hf("gpt2-lm").toStdString());
        QTemporaryDir dir;
        dt::save_model(*loaded.model, dir.path().toStdString());
        auto orig = dt::st::File::open((hf("gpt2-lm") + "/model.safetensors").toStdString());
        auto mine = dt::st::File::open((dir.path() + "/model.safetensors").toStdString());
        int compared = 0;
        for (const auto& t : mine->tensors()) {
            QVERIFY2(orig->contains(t.name), t.name.c_str());
            QCOMPARE(orig->info(t.name).shape, t.shape);
            QVERIFY2(torch::equal(orig->tensor(t.name), mine->tensor(t.name)), t.name.c_str());
            ++compared;
        }
        QVERIFY(compared >= 20);
        QCOMPARE(mine->info("transformer.h.0.attn.c_attn.weight").shape, (std::vector<std::int64_t>{48, 144}));
        auto set = dt::DeltaSet::apply(*loaded.model, dt::DeltaSpec::from_json({{"method", "lora"}, {"r", 4}}, "spec"));
        QCOMPARE(set.accounting(*loaded.model).trainable_params, std::int64_t(2 * 4 * (48 + 144)));
        auto ref = dt::st::File::open((hf("gpt2-lm") + "/reference.safetensors").toStdString());
        const auto in = referenceInputs(*ref, false);
        {
            torch::NoGradGuard ng;
            for (auto& p : dt::trainable_parameters(*loaded.model)) p.add_(torch::randn_like(p) * 0.05);
        }
        torch::NoGradGuard ng;
        const at::Tensor unmerged = loaded.model->forward(in).logits;
        QVERIFY((unmerged - ref->tensor("logits")).abs().max().item<double>() > 1e-3);  // the delta acts
        // The PEFT export marks the adapter fan_in_fan_out and imports back to the same outputs.
        dt::export_peft(*loaded.model, set, dir.filePath("peft").toStdString(), "gpt2-lm");
        QVERIFY(dt::json::load_file(dir.filePath("peft/adapter_config.json").toStdString())["fan_in_fan_out"].get<bool>());
        auto fresh = dt::load_model(hf("gpt2-lm").toStdString()).model;
        auto back = dt::import_peft(*fresh, dir.filePath("peft").toStdString());
        QVERIFY(torch::equal(fresh->forward(in).logits, unmerged));
        QCOMPARE(set.merge(), 1);
        QVERIFY(toleranceRatio(loaded.model->forward(in).logits, unmerged) <= 1.0);
    }

    void tiedDecoderSharesEmbeddings() {
        auto loaded = dt::load_model(hf("bert-mlm").toStdString());
        auto params = loaded.model->named_parameters(true);
        QVERIFY(params["cls.predictions.decoder.weight"].is_same(params["bert.embeddings.word_embeddings.weight"]));
        QVERIFY(params["cls.predictions.decoder.bias"].is_same(params["cls.predictions.bias"]));
        // Unique parameter count equals what the checkpoint stores (tied copies are not in the file).
        auto w = dt::WeightSet::open_folder(hf("bert-mlm").toStdString());
        std::int64_t stored = 0;
        for (const auto& n : w.names()) stored += w.tensor(n).numel();
        QCOMPARE(dt::ModuleTree::build(*loaded.model).total_params(), stored);
    }

    void saveLoadRoundTrip() {
        auto a = dt::load_model(hf("roberta-mlm").toStdString());
        QTemporaryDir dir;
        dt::save_model(*a.model, dir.path().toStdString());
        auto b = dt::load_model(dir.path().toStdString());
        QVERIFY(b.report.missing.empty() && b.report.unexpected.empty());
        auto ref = dt::st::File::open((hf("roberta-mlm") + "/reference.safetensors").toStdString());
        torch::NoGradGuard ng;
        QVERIFY(torch::equal(a.model->forward(referenceInputs(*ref, true)).logits, b.model->forward(referenceInputs(*ref, true)).logits));
        // Tied copies are not written, as transformers does.
        auto f = dt::st::File::open((dir.path() + "/model.safetensors").toStdString());
        QVERIFY(!f->contains("lm_head.decoder.weight"));
        QVERIFY(f->contains("roberta.embeddings.word_embeddings.weight"));
    }

    void shardedSaveLoadsBack() {
        // Past the limit the weights go into shards with transformers' names and index; a tensor
        // larger than the limit gets a shard of its own; the folder loads back to the same outputs.
        auto a = dt::load_model(hf("bert-mlm").toStdString());
        QTemporaryDir dir;
        const std::uint64_t limit = 20000;
        dt::save_model(*a.model, dir.path().toStdString(), limit);
        QVERIFY(!QFile::exists(dir.filePath("model.safetensors")));
        const auto index = dt::json::load_file(dir.filePath("model.safetensors.index.json").toStdString());
        std::map<std::string, std::uint64_t> shard_bytes, shard_tensors;
        std::uint64_t total = 0;
        for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
            const std::string shard = it.value().get<std::string>();
            auto f = dt::st::File::open(dir.filePath(QString::fromStdString(shard)).toStdString());
            QVERIFY2(f->contains(it.key()), it.key().c_str());
            const auto t = f->tensor(it.key());
            shard_bytes[shard] += static_cast<std::uint64_t>(t.numel()) * t.element_size();
            ++shard_tensors[shard];
            total += static_cast<std::uint64_t>(t.numel()) * t.element_size();
        }
        QCOMPARE(index["metadata"]["total_size"].get<std::uint64_t>(), total);
        QVERIFY(shard_bytes.size() > 2);
        const std::string last = QString("model-%1-of-%2.safetensors").arg(shard_bytes.size(), 5, 10, QChar('0')).arg(shard_bytes.size(), 5, 10, QChar('0')).toStdString();
        QVERIFY2(shard_bytes.count(last), last.c_str());
        for (const auto& [shard, bytes] : shard_bytes) QVERIFY2(bytes <= limit || shard_tensors[shard] == 1, shard.c_str());
        auto b = dt::load_model(dir.path().toStdString());
        QVERIFY(b.report.missing.empty() && b.report.unexpected.empty());
        auto ref = dt::st::File::open((hf("bert-mlm") + "/reference.safetensors").toStdString());
        torch::NoGradGuard ng;
        QVERIFY(torch::equal(a.model->forward(referenceInputs(*ref, true)).logits, b.model->forward(referenceInputs(*ref, true)).logits));
        // Under the limit: one file, no index.
        QTemporaryDir one;
        dt::save_model(*a.model, one.path().toStdString());
        QVERIFY(QFile::exists(one.filePath("model.safetensors")) && !QFile::exists(one.filePath("model.safetensors.index.json")));
    }

    void byteSizes() {
        QCOMPARE(dt::parse_byte_size("5GB", "f"), std::uint64_t(5000000000ULL));
        QCOMPARE(dt::parse_byte_size("500MB", "f"), std::uint64_t(500000000ULL));
        QCOMPARE(dt::parse_byte_size("64MiB", "f"), std::uint64_t(64ULL << 20));
        QCOMPARE(dt::parse_byte_size("1234", "f"), std::uint64_t(1234));
        for (const char* bad : {"", "GB", "5 GB", "0", "-1", "5XB", "1.5GB"}) {
            try {
                dt::parse_byte_size(bad, "--max-shard-size");
                QFAIL(bad);
            } catch (const dt::Error& e) {
                QVERIFY(std::string(e.what()).find("--max-shard-size") != std::string::npos);
            }
        }
    }

    void builtinSavesAndReloads() {
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 7);
        QTemporaryDir dir;
        dt::save_model(*m, dir.path().toStdString());
        auto back = dt::load_model(dir.path().toStdString());
        torch::NoGradGuard ng;
        dt::ForwardInputs in;
        in.input_ids = torch::randint(0, 1024, {2, 9}, torch::kLong);
        QVERIFY(torch::equal(m->forward(in).logits, back.model->forward(in).logits));
        // Same seed, same weights; another seed, other weights.
        auto again = dt::create_model(dt::builtin_config("tiny-bert"), 7);
        auto other = dt::create_model(dt::builtin_config("tiny-bert"), 8);
        QVERIFY(torch::equal(m->forward(in).logits, again->forward(in).logits));
        QVERIFY(!torch::equal(m->forward(in).logits, other->forward(in).logits));
    }

    void baseCheckpointIntoHeadModelAndBack() {
        // A BertModel checkpoint (no "bert." prefix) loads into BertForSequenceClassification and the
        // head is reported missing; a head checkpoint loads into BertModel with the head unexpected.
        auto seq = dt::load_model(hf("bert-seqcls").toStdString());
        QTemporaryDir dir;
        dt::st::NamedTensors base;
        for (auto& [n, t] : dt::state_tensors(*seq.model))
            if (n.rfind("bert.", 0) == 0) base.emplace_back(n.substr(5), t);
        dt::st::save((dir.path() + "/model.safetensors").toStdString(), base);
        QFile cfg(hf("bert-seqcls") + "/config.json");
        QVERIFY(cfg.open(QIODevice::ReadOnly));
        QByteArray text = cfg.readAll().replace("BertForSequenceClassification", "BertModel");
        writeBytes(dir.path() + "/config.json", text);
        auto bare = dt::load_model(dir.path().toStdString());
        QCOMPARE(QString::fromStdString(bare.model->name()), QStringLiteral("BertModel"));
        QVERIFY(bare.report.missing.empty());
        auto ref = dt::st::File::open((hf("bert-seqcls") + "/reference.safetensors").toStdString());
        torch::NoGradGuard ng;
        auto out = bare.model->forward(referenceInputs(*ref, true));
        expectClose(out.pooler_output, ref->tensor("pooler_output"), "pooler_output of BertModel");

        QTemporaryDir dir2;
        writeBytes(dir2.path() + "/config.json", text);
        copyFile(hf("bert-seqcls") + "/model.safetensors", dir2.path() + "/model.safetensors");
        auto stripped = dt::load_model(dir2.path().toStdString());
        QCOMPARE(stripped.report.unexpected, (std::vector<std::string>{"classifier.bias", "classifier.weight"}));

        QTemporaryDir dir3;
        copyFile(hf("bert-seqcls") + "/config.json", dir3.path() + "/config.json");
        copyFile(dir.path() + "/model.safetensors", dir3.path() + "/model.safetensors");
        auto headless = dt::load_model(dir3.path().toStdString());
        QCOMPARE(headless.report.missing, (std::vector<std::string>{"classifier.bias", "classifier.weight"}));
        // Missing parameters get transformers' init (N(0, 0.02), zero bias), never leftover memory.
        auto hp = headless.model->named_parameters(true);
        QVERIFY(torch::equal(hp["classifier.bias"], torch::zeros({3})));
        const double sd = hp["classifier.weight"].std().item<double>();
        QVERIFY2(sd > 0.005 && sd < 0.05, qPrintable(QString::number(sd)));
        // Loaded parameters are untouched by that init.
        QVERIFY(torch::equal(hp["bert.pooler.dense.weight"], seq.model->named_parameters(true)["bert.pooler.dense.weight"]));
    }

    void badFoldersAndConfigs() {
        QTemporaryDir dir;
        const QString d = dir.path();
        copyFile(hf("bert-mlm") + "/model.safetensors", d + "/model.safetensors");
        QFile src(hf("bert-mlm") + "/config.json");
        QVERIFY(src.open(QIODevice::ReadOnly));
        const QByteArray good = src.readAll();
        const auto load = [&] { dt::load_model(d.toStdString()); };

        writeBytes(d + "/config.json", QByteArray(good).replace("\"hidden_size\": 48,", ""));
        expectError(load, {"config.json", "missing field 'hidden_size'"});
        writeBytes(d + "/config.json", QByteArray(good).replace("\"hidden_size\": 48", "\"hidden_size\": \"48\""));
        expectError(load, {"config.json", "'hidden_size' must be an integer"});
        writeBytes(d + "/config.json", QByteArray(good).replace("BertForMaskedLM", "BertForPreTrainingPlus"));
        expectError(load, {"config.json", "unknown architecture 'BertForPreTrainingPlus'", "supported:"});
        writeBytes(d + "/config.json", QByteArray(good).replace("\"intermediate_size\": 96", "\"intermediate_size\": 97"));
        expectError(load, {"model.safetensors", "intermediate.dense.bias", "[97]", "config.json does not match"});
        writeBytes(d + "/config.json", QByteArray(good).replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 5"));
        expectError(load, {"config.json", "not a multiple of num_attention_heads"});
        writeBytes(d + "/config.json", good.left(good.size() / 2));
        expectError(load, {"config.json", "invalid JSON"});

        writeBytes(d + "/config.json", good);
        QFile::remove(d + "/model.safetensors");
        expectError(load, {d, "no model.safetensors"});
        copyFile(hf("bert-mlm") + "/model.safetensors", d + "/model.safetensors");
        QFile w(d + "/model.safetensors");
        QVERIFY(w.resize(w.size() - 100));
        expectError(load, {"model.safetensors", "truncated"});
        expectError([] { dt::load_model("/no/such/folder"); }, {"/no/such/folder", "no such model folder"});
    }

    void weightsForAnotherArchitecture() {
        QTemporaryDir dir;
        dt::st::save((dir.path() + "/model.safetensors").toStdString(), {{"transformer.h.0.attn.c_attn.weight", torch::ones({4})}});
        copyFile(hf("bert-mlm") + "/config.json", dir.path() + "/config.json");
        expectError([&] { dt::load_model(dir.path().toStdString()); }, {"none of the 1 tensors", "another architecture"});
    }

    void badInputsAreNamed() {
        auto m = dt::load_model(hf("bert-mlm").toStdString());
        dt::ForwardInputs in;
        in.input_ids = torch::tensor({{2, 500, 3}}, torch::kLong);
        expectError([&] { m.model->validate_inputs(in); }, {"input_ids", "500", "outside the vocabulary"});
        in.input_ids = torch::zeros({1, 41}, torch::kLong);
        expectError([&] { m.model->validate_inputs(in); }, {"41 tokens", "at most 40"});
        in.input_ids = torch::zeros({1, 4}, torch::kLong);
        in.attention_mask = torch::ones({1, 5}, torch::kLong);
        expectError([&] { m.model->validate_inputs(in); }, {"attention_mask", "shape"});
        in.attention_mask = at::Tensor();
        in.token_type_ids = torch::full({1, 4}, 2, torch::kLong);
        expectError([&] { m.model->validate_inputs(in); }, {"token_type_ids", "type_vocab_size"});
    }

    void promptEqualsPrependedTokens() {
        // A soft prompt equal to the word embeddings of some tokens must give the same hidden states
        // as those tokens written in front of the input (BERT: positions 0..P+T-1, token type 0).
        auto m = dt::load_model(hf("bert-mlm").toStdString());
        torch::NoGradGuard ng;
        at::Tensor prefix_ids = torch::tensor({5, 17, 42}, torch::kLong);
        at::Tensor ids = torch::tensor({{2, 7, 9, 11, 3}}, torch::kLong);
        auto params = m.model->named_parameters(true);
        at::Tensor emb = params["bert.embeddings.word_embeddings.weight"].index_select(0, prefix_ids).clone();
        dt::ForwardInputs plain;
        plain.input_ids = torch::cat({prefix_ids.unsqueeze(0), ids}, 1);
        const at::Tensor want = m.model->forward(plain).last_hidden_state;
        *m.model->prompt() = [emb] { return emb; };
        dt::ForwardInputs with;
        with.input_ids = ids;
        const at::Tensor got = m.model->forward(with).last_hidden_state;
        QCOMPARE(got.sizes().vec(), want.sizes().vec());
        QVERIFY(toleranceRatio(got, want) <= 1.0);
    }

    void prefixMatchesPeft() {
        // peft's prefix tuning (bert-seqcls-prefix): (P, 2L*H*D) viewed as (P, 2L, H, D); layer l takes
        // slot 2l as keys and 2l+1 as values; positions start at P. The classifier is peft's copy.
        auto m = dt::load_model(hf("bert-seqcls").toStdString());
        const QString ad = hf("peft/bert-seqcls-prefix");
        auto adapter = dt::st::File::open((ad + "/adapter_model.safetensors").toStdString());
        auto ref = dt::st::File::open((ad + "/reference.safetensors").toStdString());
        torch::NoGradGuard ng;
        auto params = m.model->named_parameters(true);
        params["classifier.weight"].copy_(adapter->tensor("base_model.classifier.weight"));
        params["classifier.bias"].copy_(adapter->tensor("base_model.classifier.bias"));
        const at::Tensor emb = adapter->tensor("prompt_embeddings").clone();  // (P, 2*L*H*D)
        const auto& atts = m.model->attentions();
        QCOMPARE(static_cast<int>(atts.size()), 2);
        const auto P = emb.size(0), L = static_cast<std::int64_t>(atts.size());
        const auto H = atts[0].num_heads, D = atts[0].head_dim;
        at::Tensor kv = emb.view({P, 2 * L, H, D}).permute({1, 2, 0, 3});  // (2L, H, P, D)
        for (const auto& a : atts) {
            const auto l = a.layer;
            *a.prefix = [kv, l](std::int64_t B) {
                return std::make_pair(kv[2 * l].unsqueeze(0).expand({B, -1, -1, -1}),
                                      kv[2 * l + 1].unsqueeze(0).expand({B, -1, -1, -1}));
            };
        }
        dt::ForwardInputs in = referenceInputs(*ref, true);
        auto out = m.model->forward(in);
        expectClose(out.logits, ref->tensor("logits"), "logits with prefix");
        for (const auto& a : atts) *a.prefix = nullptr;
        const double moved = (m.model->forward(in).logits - ref->tensor("logits")).abs().max().item<double>();
        QVERIFY2(moved > 0.1, "the prefix made no difference");
    }

    void llamaPrefixAndPromptMatchPeft() {
        // Prefix: (P, 2L*G*D) per key/value head, keys used as stored (no RoPE), real tokens' rotary
        // positions start at P. Prompt: P vectors before the embeddings, logits for P + T positions.
        auto m = dt::load_model(hf("llama-gqa-lm").toStdString());
        torch::NoGradGuard ng;
        auto prefix = dt::st::File::open((hf("peft/llama-gqa-lm-prefix") + "/adapter_model.safetensors").toStdString());
        auto pref_ref = dt::st::File::open((hf("peft/llama-gqa-lm-prefix") + "/reference.safetensors").toStdString());
        const at::Tensor emb = prefix->tensor("prompt_embeddings").clone();
        const auto& atts = m.model->attentions();
        const auto P = emb.size(0), L = static_cast<std::int64_t>(atts.size()), G = atts[0].num_heads, D = atts[0].head_dim;
        QCOMPARE(G, 2);
        at::Tensor kv = emb.view({P, 2 * L, G, D}).permute({1, 2, 0, 3});
        for (const auto& a : atts) {
            const auto l = a.layer;
            *a.prefix = [kv, l](std::int64_t B) {
                return std::make_pair(kv[2 * l].unsqueeze(0).expand({B, -1, -1, -1}), kv[2 * l + 1].unsqueeze(0).expand({B, -1, -1, -1}));
            };
        }
        expectClose(m.model->forward(referenceInputs(*pref_ref, true)).logits, pref_ref->tensor("logits"), "llama logits with prefix");
        for (const auto& a : atts) *a.prefix = nullptr;
        auto prompt = dt::st::File::open((hf("peft/llama-gqa-lm-prompt") + "/adapter_model.safetensors").toStdString());
        auto prompt_ref = dt::st::File::open((hf("peft/llama-gqa-lm-prompt") + "/reference.safetensors").toStdString());
        const at::Tensor vecs = prompt->tensor("prompt_embeddings").clone();
        *m.model->prompt() = [vecs] { return vecs; };
        expectClose(m.model->forward(referenceInputs(*prompt_ref, true)).logits, prompt_ref->tensor("logits"), "llama logits with prompt");
    }

    void injectionPointsReachForward() {
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 1);
        torch::NoGradGuard ng;
        dt::ForwardInputs in;
        in.input_ids = torch::randint(1, 1000, {2, 6}, torch::kLong);
        const at::Tensor base = m->forward(in).logits;
        QCOMPARE(static_cast<int>(m->sites().size()), 8);  // 4 layers x (after attention, after FFN)
        int calls = 0;
        m->sites()[0].site->add_hook([&calls](const at::Tensor& h, const at::Tensor&) {
            ++calls;
            return h * 0.5;
        });
        const at::Tensor hooked = m->forward(in).logits;
        QCOMPARE(calls, 1);
        QVERIFY(!torch::allclose(hooked, base));
        m->sites()[0].site->clear();
        QVERIFY(torch::equal(m->forward(in).logits, base));
    }

    // Sizes from config.json are checked against the checkpoint before anything is allocated, and a
    // checkpoint missing whole blocks is refused naming the tensor and the field (only heads may be
    // missing), unless the caller opts in.
    void configThatDoesNotMatchItsWeightsIsRefused() {
        auto withConfig = [](QTemporaryDir& dir, const std::function<void(nlohmann::json&)>& edit) {
            nlohmann::json c = dt::json::load_file((hf("bert-mlm") + "/config.json").toStdString());
            edit(c);
            writeBytes(dir.path() + "/config.json", QByteArray::fromStdString(c.dump()));
            copyFile(hf("bert-mlm") + "/model.safetensors", dir.path() + "/model.safetensors");
            return dir.path().toStdString();
        };
        QTemporaryDir bomb;
        const std::string b = withConfig(bomb, [](nlohmann::json& c) {
            c["hidden_size"] = 262144;
            c["num_hidden_layers"] = 4000;
        });
        try {
            dt::load_model(b);
            QFAIL("built a model of about 10^15 parameters from a 2-layer checkpoint");
        } catch (const dt::Error& e) {
            const QString m = QString::fromUtf8(e.what());
            QVERIFY2(m.contains(QLatin1String("hidden_size 262144")) && m.contains(QLatin1String("num_hidden_layers 4000")) &&
                         m.contains(QLatin1String("config.json")),
                     e.what());
        }
        QTemporaryDir deeper;
        const std::string d = withConfig(deeper, [](nlohmann::json& c) { c["num_hidden_layers"] = 4; });
        try {
            dt::load_model(d);
            QFAIL("initialised two missing layers at random without being asked");
        } catch (const dt::Error& e) {
            const QString m = QString::fromUtf8(e.what());
            QVERIFY2(m.contains(QLatin1String("bert.encoder.layer.2.")) && m.contains(QLatin1String("num_hidden_layers 4")), e.what());
        }
        dt::LoadOptions o;
        o.allow_missing_blocks = true;
        const auto opted = dt::load_model(d, o);
        QCOMPARE(opted.model->num_layers(), std::int64_t(4));
        QVERIFY(opted.report.missing.size() >= 16);  // two layers' tensors, initialised on request
    }
};

DT_REGISTER_TEST(TestModels);
#include "test_models.moc"
