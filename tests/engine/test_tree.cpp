// ModuleTree (paths, counts, folding, JSON) and PEFT-style selection, including its edge cases.
#include "test_registry.h"

#include "core/error.h"
#include "models/layers.h"
#include "models/loader.h"
#include "tree/module_tree.h"
#include "tree/selection.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <QTest>

using namespace dttest;

namespace {

std::vector<std::string> sel(const dt::ModuleTree& t, std::vector<std::string> targets, std::vector<int> layers = {}) {
    dt::SelectionSpec s;
    s.targets = std::move(targets);
    s.layers = std::move(layers);
    return dt::select_modules(t, s);
}

// root -> attn -> {query, query_proj, xquery, key}; root -> lm_head
struct Toy : torch::nn::Module {
    Toy() : torch::nn::Module("Toy") {
        auto attn = register_module("attn", std::make_shared<torch::nn::Module>("Attn"));
        attn->register_module("query", dt::Linear(4, 4));
        attn->register_module("query_proj", dt::Linear(4, 4));
        attn->register_module("xquery", dt::Linear(4, 4));
        attn->register_module("key", dt::Linear(4, 4, false));
        register_module("lm_head", dt::Linear(4, 10));
    }
};

}  // namespace

class TestTree : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void pathsTypesAndCounts() {
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 0);
        auto t = dt::ModuleTree::build(*m);
        const int q = t.find("bert.encoder.layer.2.attention.self.query");
        QVERIFY(q > 0);
        QCOMPARE(QString::fromStdString(t.nodes()[q].type), QStringLiteral("Linear"));
        QCOMPARE(t.nodes()[q].own_params, 64 * 64 + 64);
        const int layer = t.find("bert.encoder.layer.2");
        QCOMPARE(QString::fromStdString(t.nodes()[layer].type), QStringLiteral("BertLayer"));
        // own + children == total, everywhere
        for (const auto& n : t.nodes()) {
            std::int64_t sum = n.own_params;
            for (int c : n.children) sum += t.nodes()[c].total_params;
            QCOMPARE(n.total_params, sum);
        }
        // tied decoder: listed, but counted once (at the embeddings)
        const int dec = t.find("cls.predictions.decoder");
        QCOMPARE(t.nodes()[dec].own_params, 0);
        QCOMPARE(QString::fromStdString(t.nodes()[dec].params[0].tied_to),
                 QStringLiteral("bert.embeddings.word_embeddings.weight"));
        std::int64_t unique = 0;
        for (auto& p : dt::state_tensors(*m)) unique += p.second.numel();
        QCOMPARE(t.total_params(), unique);
        QCOMPARE(t.total_bytes(), unique * 4);
    }

    void foldsRepeatedBlocks() {
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 0);
        auto t = dt::ModuleTree::build(*m);
        const auto lines = t.folded();
        auto it = std::find_if(lines.begin(), lines.end(), [](const dt::FoldedLine& l) { return l.count > 1; });
        QVERIFY(it != lines.end());
        QCOMPARE(QString::fromStdString(it->path), QStringLiteral("bert.encoder.layer.0-3"));
        QCOMPARE(QString::fromStdString(it->label), QStringLiteral("layer.0-3"));
        QCOMPARE(it->count, 4);
        const QString text = QString::fromStdString(t.to_text());
        QVERIFY2(text.contains("layer.0-3  BertLayer x4"), qPrintable(text));
        // Only one copy of the block's insides is printed.
        QCOMPARE(text.count("BertSelfAttention"), 1);
        // A block whose structure differs is not folded into its neighbours.
        m->named_modules()["bert.encoder.layer.1.output.dense"]->named_parameters(false)["bias"].set_requires_grad(false);
        auto t2 = dt::ModuleTree::build(*m);
        QString folded;
        for (const auto& l : t2.folded())
            if (l.path.rfind("bert.encoder.layer.", 0) == 0 && l.depth == 2) folded += QString::fromStdString(l.label) + " ";
        QCOMPARE(folded, QStringLiteral("layer.0 layer.1 layer.2-3 "));
    }

    void jsonDocument() {
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 0);
        auto t = dt::ModuleTree::build(*m);
        auto j = nlohmann::json::parse(t.to_json());
        QCOMPARE(QString::fromStdString(j["architecture"].get<std::string>()), QStringLiteral("BertForMaskedLM"));
        QCOMPARE(j["total_params"].get<std::int64_t>(), t.total_params());
        bool found = false;
        for (const auto& mod : j["modules"])
            if (mod["path"] == "bert.encoder.layer.0.intermediate.dense") {
                found = true;
                QCOMPARE(mod["type"].get<std::string>(), std::string("Linear"));
                QCOMPARE(mod["params"].get<std::int64_t>(), 64 * 256 + 256);
                QCOMPARE(mod["total_params"].get<std::int64_t>(), 64 * 256 + 256);
            }
        QVERIFY(found);
    }

    void listMatchesWholeNameOrDotSuffix() {
        Toy toy;
        auto t = dt::ModuleTree::build(toy);
        QCOMPARE(sel(t, {"query"}), (std::vector<std::string>{"attn.query"}));  // not query_proj, not xquery
        QCOMPARE(sel(t, {"attn.query", "key"}), (std::vector<std::string>{"attn.query", "attn.key"}));
        QCOMPARE(sel(t, {"ttn.query"}), std::vector<std::string>{});  // suffix must start at a dot
        QCOMPARE(sel(t, {"attn"}), (std::vector<std::string>{"attn"}));
    }

    void singleStringIsFullMatchRegex() {
        Toy toy;
        auto t = dt::ModuleTree::build(toy);
        dt::SelectionSpec s;
        s.target_regex = "query";
        QCOMPARE(dt::select_modules(t, s), std::vector<std::string>{});  // full match, not search
        s.target_regex = R"(.*\.query.*)";
        QCOMPARE(dt::select_modules(t, s), (std::vector<std::string>{"attn.query", "attn.query_proj"}));
        s.target_regex = "(";
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::select_modules(t, s));
    }

    void allLinearSkipsOutputHead() {
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 0);
        auto t = dt::ModuleTree::build(*m);
        dt::SelectionSpec s;
        s.all_linear = true;
        const auto got = dt::select_modules(t, s);
        QCOMPARE(static_cast<int>(got.size()), 4 * 6 + 1);  // 6 per layer + the MLM transform
        QVERIFY(std::find(got.begin(), got.end(), "cls.predictions.decoder") == got.end());
        QVERIFY(std::find(got.begin(), got.end(), "cls.predictions.transform.dense") != got.end());
    }

    void layersToTransformAndExclude() {
        auto m = dt::create_model(dt::builtin_config("tiny-bert"), 0);
        auto t = dt::ModuleTree::build(*m);
        QCOMPARE(sel(t, {"query", "value"}, {1}),
                 (std::vector<std::string>{"bert.encoder.layer.1.attention.self.query", "bert.encoder.layer.1.attention.self.value"}));
        QCOMPARE(dt::layer_index_of("bert.encoder.layer.3.attention.self.query", {}), 3);
        QCOMPARE(dt::layer_index_of("bert.encoder.layer.3.attention.self.query", {"layer"}), 3);
        QCOMPARE(dt::layer_index_of("bert.encoder.layer.3.attention.self.query", {"layers"}), -1);
        QCOMPARE(dt::layer_index_of("bert.pooler.dense", {}), -1);
        auto spec = dt::SelectionSpec::from_json(
            nlohmann::json::parse(R"({"target_modules": ["dense"], "exclude_modules": ["output.dense"], "layers_to_transform": [0, 2], "layers_pattern": "layer"})"),
            "spec.json");
        QCOMPARE(dt::select_modules(t, spec), (std::vector<std::string>{"bert.encoder.layer.0.intermediate.dense",
                                                                         "bert.encoder.layer.2.intermediate.dense"}));
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::SelectionSpec::from_json(nlohmann::json::parse(R"({"target_modules": 3})"), "x"));
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::select_modules(t, dt::SelectionSpec{}));
    }
};

DT_REGISTER_TEST(TestTree);
#include "test_tree.moc"
