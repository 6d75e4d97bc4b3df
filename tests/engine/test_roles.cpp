// Role tables: the built-in architectures' roles give PEFT's default targets, BitFit's groups and
// the head; and an architecture defined here, with module names no method knows, is registered
// with its role table and works with LoRA, BitFit and IA3 without touching a method file.
#include "test_registry.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "delta/methods.h"
#include "models/loader.h"
#include "models/registry.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <QTest>

#include <algorithm>

using namespace dttest;
using nlohmann::json;

namespace {

// A toy architecture with unusual names: tok -> blocks.N.{mix.{wq, wk, wv, wo}, ff.{lift, drop},
// nrm} -> out. Tensor legend: B batch, T tokens, C = 8 hidden, F = 16 feed-forward, V = 32 vocabulary.
constexpr std::int64_t kToyC = 8, kToyF = 16, kToyV = 32, kToyLayers = 2;

const dt::RoleTable& toyRoles() {
    static const dt::RoleTable roles = dt::RoleTable()
                                           .set(dt::Role::AttnQ, {"mix.wq"})
                                           .set(dt::Role::AttnK, {"mix.wk"})
                                           .set(dt::Role::AttnV, {"mix.wv"})
                                           .set(dt::Role::AttnOut, {"mix.wo"})
                                           .set(dt::Role::FfnUp, {"ff.lift"})
                                           .set(dt::Role::FfnDown, {"ff.drop"})
                                           .set(dt::Role::Norm, {"nrm"})
                                           .set(dt::Role::Embed, {"tok"})
                                           .set(dt::Role::Head, {"out"});
    return roles;
}

struct ToyBlock {
    dt::Linear wq{nullptr}, wk{nullptr}, wv{nullptr}, wo{nullptr}, lift{nullptr}, drop{nullptr};
    dt::LayerNorm nrm{nullptr};
};

class ToyRoleModel : public dt::TransformerModel {
public:
    explicit ToyRoleModel(const dt::ModelConfig& cfg) : dt::TransformerModel("ToyRoleModel") {
        config_ = cfg;
        tok_ = register_module("tok", dt::Embedding(kToyV, kToyC));
        auto list = register_module("blocks", torch::nn::ModuleList());
        for (std::int64_t i = 0; i < kToyLayers; ++i) {
            auto block = std::make_shared<torch::nn::Module>("ToyBlock");
            auto mix = block->register_module("mix", std::make_shared<torch::nn::Module>("ToyMix"));
            auto ff = block->register_module("ff", std::make_shared<torch::nn::Module>("ToyFF"));
            ToyBlock b;
            b.wq = mix->register_module("wq", dt::Linear(kToyC, kToyC));
            b.wk = mix->register_module("wk", dt::Linear(kToyC, kToyC));
            b.wv = mix->register_module("wv", dt::Linear(kToyC, kToyC));
            b.wo = mix->register_module("wo", dt::Linear(kToyC, kToyC));
            b.lift = ff->register_module("lift", dt::Linear(kToyC, kToyF));
            b.drop = ff->register_module("drop", dt::Linear(kToyF, kToyC));
            b.nrm = block->register_module("nrm", dt::LayerNorm(kToyC, 1e-5));
            list->push_back(block);
            blocks_.push_back("blocks." + std::to_string(i));
            parts_.push_back(b);
        }
        out_ = register_module("out", dt::Linear(kToyC, kToyV));
    }

    dt::ForwardOutputs forward(const dt::ForwardInputs& in) override {
        at::Tensor h = tok_->forward(in.input_ids.to(torch::kLong));  // (B, T, C)
        for (auto& b : parts_) {
            h = h + b.wo->forward(b.wv->forward(h) * torch::sigmoid(b.wq->forward(h) + b.wk->forward(h)));
            h = b.nrm->forward(h + b.drop->forward(torch::gelu(b.lift->forward(h))));
        }
        dt::ForwardOutputs o;
        o.last_hidden_state = h;
        o.logits = out_->forward(h);  // (B, T, V)
        return o;
    }
    void validate_inputs(const dt::ForwardInputs& in) const override { dt::check_token_inputs(in, kToyV, 64); }
    std::string base_model_prefix() const override { return "toy"; }
    bool is_base_model() const override { return false; }
    std::int64_t num_layers() const override { return kToyLayers; }
    std::int64_t hidden_size() const override { return kToyC; }
    const dt::RoleTable& roles() const override { return toyRoles(); }
    void init_weights(std::uint64_t seed, const std::set<std::string>*) override {
        torch::NoGradGuard ng;
        torch::manual_seed(seed);
        for (auto& p : named_parameters(true)) p.value().normal_(0.0, 0.02);
    }

private:
    dt::Embedding tok_{nullptr};
    std::vector<ToyBlock> parts_;
    dt::Linear out_{nullptr};
};

dt::ModelConfig toyConfig() {
    return dt::ModelConfig::from_json({{"architectures", {"ToyRoleModel"}}, {"model_type", "toyroles"}}, "builtin:toyroles");
}

std::shared_ptr<dt::TransformerModel> makeToy() { return dt::create_model(toyConfig(), 1); }

std::vector<std::string> perLayer(const std::vector<std::string>& suffixes) {
    std::vector<std::string> v;
    for (std::int64_t i = 0; i < kToyLayers; ++i)
        for (const auto& s : suffixes) v.push_back("blocks." + std::to_string(i) + "." + s);
    return v;
}

QString joined(const std::vector<std::string>& v) {
    QStringList l;
    for (const auto& s : v) l << QString::fromStdString(s);
    return l.join(", ");
}

std::vector<std::string> sortedCopy(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

dt::DeltaSet applyOne(dt::TransformerModel& m, const json& method) {
    return dt::DeltaSet::apply(m, dt::DeltaSpec::from_json({{"methods", {method}}}, "roles-test"));
}

std::shared_ptr<dt::TransformerModel> builtin(const json& cfg) {
    return dt::create_model(dt::ModelConfig::from_json(cfg, "roles-test"), 2);
}

std::shared_ptr<dt::TransformerModel> tinyRoberta(const char* arch) {
    return builtin({{"architectures", {arch}}, {"model_type", "roberta"}, {"vocab_size", 64}, {"hidden_size", 16},
                    {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"intermediate_size", 32},
                    {"max_position_embeddings", 40}});
}

std::shared_ptr<dt::TransformerModel> tinyGpt2(const char* arch) {
    return builtin({{"architectures", {arch}}, {"model_type", "gpt2"}, {"vocab_size", 64}, {"n_embd", 16}, {"n_layer", 2},
                    {"n_head", 2}, {"n_positions", 32}});
}

}  // namespace

class TestRoles : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() {
        for (const auto& e : dt::architecture_table())
            if (e.architecture == "ToyRoleModel") return;
        dt::register_architecture({"ToyRoleModel", "toyroles", "base", true,
                                   [](const dt::ModelConfig& c) { return std::make_shared<ToyRoleModel>(c); }});
    }

    void roleNames() {
        for (dt::Role r : dt::all_roles()) QCOMPARE(dt::role_from_name(dt::role_name(r)), std::optional<dt::Role>(r));
        QCOMPARE(std::string(dt::role_name(dt::Role::AttnQKV)), std::string("attn_qkv"));
        QVERIFY(!dt::role_from_name("query"));
        QCOMPARE(dt::all_roles().size(), std::size_t(11));
    }

    // The built-in tables give exactly what default_targets() returned before roles (PEFT's lists).
    void builtinDefaultTargets_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("lora");
        QTest::addColumn<QString>("ia3");
        QTest::addColumn<QString>("ia3ff");
        QTest::newRow("bert") << "bert" << "query, value" << "key, value, output.dense" << "output.dense";
        QTest::newRow("roberta") << "roberta" << "query, value" << "key, value, output.dense" << "output.dense";
        QTest::newRow("llama") << "llama" << "q_proj, v_proj" << "k_proj, v_proj, down_proj" << "down_proj";
        QTest::newRow("gpt2") << "gpt2" << "c_attn" << "c_attn, mlp.c_proj" << "mlp.c_proj";
        QTest::newRow("toy") << "toy" << "mix.wq, mix.wv" << "mix.wk, mix.wv, ff.drop" << "ff.drop";
    }
    void builtinDefaultTargets() {
        QFETCH(QString, arch);
        QFETCH(QString, lora);
        QFETCH(QString, ia3);
        QFETCH(QString, ia3ff);
        std::shared_ptr<dt::TransformerModel> m;
        if (arch == "bert") m = dt::create_model(dt::builtin_config("tiny-bert"), 1);
        else if (arch == "roberta") m = tinyRoberta("RobertaForMaskedLM");
        else if (arch == "llama") m = dt::create_model(dt::builtin_config("tiny-llama"), 1);
        else if (arch == "gpt2") m = tinyGpt2("GPT2LMHeadModel");
        else m = makeToy();
        QCOMPARE(joined(dt::default_targets("lora", m->roles())), lora);
        QCOMPARE(joined(dt::default_targets("ia3", m->roles())), ia3);
        QCOMPARE(joined(dt::default_targets("ia3", m->roles(), true)), ia3ff);
        QVERIFY(dt::default_targets("adapter", m->roles()).empty());
        // The same lists through the model's own role table reached from the architecture table.
        QVERIFY(&dt::find_architecture(m->config()).make(m->config())->roles() == &m->roles());
    }

    // The head role gives what each model listed by hand before (all-linear leaves these out).
    void builtinHeadsAndEmbeddings() {
        auto bert = dt::create_model(dt::builtin_config("tiny-bert"), 1);
        QCOMPARE(joined(bert->output_head_paths()), QString("cls.predictions.decoder"));
        QCOMPARE(bert->word_embeddings_path(), std::string("bert.embeddings.word_embeddings"));
        QCOMPARE(joined(tinyRoberta("RobertaForSequenceClassification")->output_head_paths()),
                 QString("classifier.dense, classifier.out_proj"));
        QCOMPARE(joined(tinyRoberta("RobertaForMaskedLM")->output_head_paths()), QString("lm_head.decoder"));
        QCOMPARE(joined(tinyRoberta("RobertaModel")->output_head_paths()), QString());
        QCOMPARE(tinyRoberta("RobertaModel")->word_embeddings_path(), std::string("embeddings.word_embeddings"));
        auto bcls = builtin({{"architectures", {"BertForSequenceClassification"}}, {"model_type", "bert"}, {"vocab_size", 64},
                             {"hidden_size", 16}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                             {"intermediate_size", 32}, {"max_position_embeddings", 32}});
        QCOMPARE(joined(bcls->output_head_paths()), QString("classifier"));
        auto llama = dt::create_model(dt::builtin_config("tiny-llama"), 1);
        QCOMPARE(joined(llama->output_head_paths()), QString("lm_head"));
        QCOMPARE(llama->word_embeddings_path(), std::string("model.embed_tokens"));
        QCOMPARE(joined(tinyGpt2("GPT2LMHeadModel")->output_head_paths()), QString("lm_head"));
        QCOMPARE(joined(tinyGpt2("GPT2Model")->output_head_paths()), QString());
        QCOMPARE(tinyGpt2("GPT2Model")->word_embeddings_path(), std::string("wte"));
    }

    // Longest name wins: BERT's attention.output.dense is attn_out although output.dense (ffn_down)
    // matches it too; BitFit's groups follow.
    void bertRolesAndBitFitGroups() {
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 1);
        const auto& r = m->roles();
        QCOMPARE(r.role_of("bert.encoder.layer.0.attention.output.dense"), std::optional<dt::Role>(dt::Role::AttnOut));
        QCOMPARE(r.role_of("bert.encoder.layer.0.output.dense"), std::optional<dt::Role>(dt::Role::FfnDown));
        QCOMPARE(r.role_of("bert.encoder.layer.0.attention.output.LayerNorm"), std::optional<dt::Role>(dt::Role::Norm));
        QVERIFY(!r.role_of("cls.predictions.transform.dense"));
        const int L = static_cast<int>(m->num_layers());
        auto biasesOf = [&](const char* group) {
            auto fresh = dt::create_model(dt::builtin_config("tiny-bert"), 1);
            auto d = applyOne(*fresh, {{"method", "bitfit"}, {"groups", {group}}});
            return d.methods()[0]->unfrozen();
        };
        auto layers = [&](const std::string& suffix) {
            std::vector<std::string> v;
            for (int i = 0; i < L; ++i) v.push_back("bert.encoder.layer." + std::to_string(i) + "." + suffix + ".bias");
            return v;
        };
        QCOMPARE(joined(sortedCopy(biasesOf("attention_output"))), joined(sortedCopy(layers("attention.output.dense"))));
        QCOMPARE(joined(sortedCopy(biasesOf("output"))), joined(sortedCopy(layers("output.dense"))));
        QCOMPARE(joined(sortedCopy(biasesOf("intermediate"))), joined(sortedCopy(layers("intermediate.dense"))));
        QCOMPARE(joined(sortedCopy(biasesOf("query"))), joined(sortedCopy(layers("attention.self.query"))));
        QCOMPARE(joined(sortedCopy(biasesOf("other"))), QString("cls.predictions.bias, cls.predictions.transform.dense.bias"));
        const auto norms = biasesOf("layernorm");
        QCOMPARE(norms.size(), std::size_t(2 * L + 2));  // two per layer, the embeddings' and the MLM transform's

        // GPT-2: c_proj is attention output in attn and feed-forward output in mlp; the fused c_attn is "other".
        auto gptBiases = [&](const char* group) {
            auto g = tinyGpt2("GPT2LMHeadModel");
            return joined(sortedCopy(applyOne(*g, {{"method", "bitfit"}, {"groups", {group}}}).methods()[0]->unfrozen()));
        };
        QCOMPARE(gptBiases("attention_output"), QString("transformer.h.0.attn.c_proj.bias, transformer.h.1.attn.c_proj.bias"));
        QCOMPARE(gptBiases("output"), QString("transformer.h.0.mlp.c_proj.bias, transformer.h.1.mlp.c_proj.bias"));
        QCOMPARE(gptBiases("intermediate"), QString("transformer.h.0.mlp.c_fc.bias, transformer.h.1.mlp.c_fc.bias"));
        QCOMPARE(gptBiases("other"), QString("transformer.h.0.attn.c_attn.bias, transformer.h.1.attn.c_attn.bias"));
    }

    void toyRoleOf() {
        const auto& r = toyRoles();
        QCOMPARE(r.role_of("blocks.1.mix.wq"), std::optional<dt::Role>(dt::Role::AttnQ));
        QCOMPARE(r.role_of("blocks.1.ff.drop"), std::optional<dt::Role>(dt::Role::FfnDown));
        QCOMPARE(r.role_of("out"), std::optional<dt::Role>(dt::Role::Head));
        QVERIFY(!r.role_of("blocks.1.mix"));
        QVERIFY(!r.role_of("blocks.1.mix.wqx"));  // dot-boundary suffixes only
        auto m = makeToy();
        QCOMPARE(joined(m->output_head_paths()), QString("out"));
        QCOMPARE(m->word_embeddings_path(), std::string("tok"));
    }

    // LoRA's defaults land on exactly the toy's attn_q and attn_v; all-linear leaves its head out.
    void toyLora() {
        auto m = makeToy();
        auto d = applyOne(*m, {{"method", "lora"}, {"r", 2}});
        const auto expected = perLayer({"mix.wq", "mix.wv"});
        QCOMPARE(joined(d.methods()[0]->targets()), joined(expected));
        std::vector<std::string> hosts;
        for (const auto& p : m->named_parameters(true)) {
            const std::string suf = ".lora_A.weight";
            const auto& k = p.key();
            if (k.size() > suf.size() && k.compare(k.size() - suf.size(), suf.size(), suf) == 0)
                hosts.push_back(k.substr(0, k.size() - suf.size()));
        }
        QCOMPARE(joined(sortedCopy(hosts)), joined(sortedCopy(expected)));
        d.remove(*m);

        auto all = applyOne(*m, {{"method", "lora"}, {"r", 2}, {"target_modules", "all-linear"}});
        const auto& t = all.methods()[0]->targets();
        QCOMPARE(t.size(), std::size_t(kToyLayers * 6));
        QVERIFY(std::find(t.begin(), t.end(), "out") == t.end());
    }

    void toyBitFitGroups_data() {
        QTest::addColumn<QString>("group");
        QTest::addColumn<QString>("biases");
        auto row = [](const char* g, const std::vector<std::string>& modules) {
            std::vector<std::string> b;
            for (const auto& mod : modules) b.push_back(mod + ".bias");
            QTest::newRow(g) << g << joined(sortedCopy(b));
        };
        row("query", perLayer({"mix.wq"}));
        row("key", perLayer({"mix.wk"}));
        row("value", perLayer({"mix.wv"}));
        row("attention_output", perLayer({"mix.wo"}));
        row("intermediate", perLayer({"ff.lift"}));
        row("output", perLayer({"ff.drop"}));
        row("layernorm", perLayer({"nrm"}));
        row("other", {"out"});
    }
    void toyBitFitGroups() {
        QFETCH(QString, group);
        QFETCH(QString, biases);
        auto m = makeToy();
        auto d = applyOne(*m, {{"method", "bitfit"}, {"groups", {group.toStdString()}}});
        QCOMPARE(joined(sortedCopy(d.methods()[0]->unfrozen())), biases);
        for (const auto& p : m->named_parameters(true)) {
            const bool chosen = biases.split(", ").contains(QString::fromStdString(p.key()));
            QVERIFY2(p.value().requires_grad() == chosen, p.key().c_str());
        }
    }

    // IA3's defaults: the toy's attn_k and attn_v rescale outputs (C, 1); its ffn_down, the
    // feed-forward default, rescales its input (1, F).
    void toyIa3FeedForward() {
        auto m = makeToy();
        auto d = applyOne(*m, {{"method", "ia3"}});
        QCOMPARE(joined(d.methods()[0]->targets()), joined(perLayer({"mix.wk", "mix.wv", "ff.drop"})));
        auto params = m->named_parameters(true);
        for (const auto& path : perLayer({"mix.wk", "mix.wv"}))
            QCOMPARE(params[path + ".ia3_l"].sizes().vec(), (std::vector<std::int64_t>{kToyC, 1}));
        for (const auto& path : perLayer({"ff.drop"}))
            QCOMPARE(params[path + ".ia3_l"].sizes().vec(), (std::vector<std::int64_t>{1, kToyF}));
        // Identity at init: the toy's forward is unchanged.
        dt::ForwardInputs in;
        in.input_ids = torch::randint(0, kToyV, {2, 5}, torch::kLong);
        auto fresh = makeToy();
        QVERIFY(torch::allclose(m->forward(in).logits, fresh->forward(in).logits));
    }
};

DT_REGISTER_TEST(TestRoles);
#include "test_roles.moc"
