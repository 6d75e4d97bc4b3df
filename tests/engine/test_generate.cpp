// Generation against transformers' greedy generate() on every causal and T5 fixture (ids exact),
// cached decoding against full recomputation (logits and ids, with deltas attached), sampling.
#include "test_registry.h"
#include "test_util.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "generate/generate.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "train/text_metrics.h"

#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <limits>

#include <QTest>

using namespace dttest;

namespace {

dt::GenerationOptions genOptionsFor(const QString& name, bool cache) {
    auto m = dt::load_model(hf(name).toStdString());
    auto g = dt::GenerationOptions::for_model(m.model->config(), hf(name).toStdString());
    g.max_new_tokens = 6;
    g.use_cache = cache;
    return g;
}

QString genIds(const at::Tensor& t) { return QString::fromStdString(c10::str(t)); }

// A causal LM with a 4-token vocabulary (EOS = 2), small enough to enumerate every continuation.
std::shared_ptr<dt::TransformerModel> fourTokenLm(std::uint64_t seed) {
    auto m = dt::create_model(dt::ModelConfig::from_json({{"model_type", "llama"}, {"architectures", {"LlamaForCausalLM"}}, {"vocab_size", 4},
                                                          {"hidden_size", 16}, {"num_hidden_layers", 2}, {"num_attention_heads", 2},
                                                          {"intermediate_size", 32}, {"eos_token_id", 2}, {"pad_token_id", 0},
                                                          {"initializer_range", 0.2}}, "four-token"), seed);
    m->eval();
    return m;
}

// Exhaustive search: every continuation of at most n tokens (ended by EOS or by the length limit),
// each scored sum(log p) / length ** lp from full recomputation. Returns the prompt plus the best one.
std::vector<std::int64_t> bestByEnumeration(dt::TransformerModel& m, const std::vector<std::int64_t>& prompt, int n, double lp) {
    torch::NoGradGuard ng;
    double best = -std::numeric_limits<double>::infinity();
    std::vector<std::int64_t> best_seq;
    std::function<void(std::vector<std::int64_t>, double)> walk = [&](std::vector<std::int64_t> seq, double sum) {
        const auto generated = static_cast<std::int64_t>(seq.size() - prompt.size());
        const bool ended = generated > 0 && seq.back() == 2;
        if (ended || generated == n) {
            const double score = sum / std::pow(static_cast<double>(generated), lp);
            if (score > best) {
                best = score;
                best_seq = seq;
            }
            return;
        }
        dt::ForwardInputs in;
        in.input_ids = torch::tensor(seq, torch::kLong).unsqueeze(0);
        const at::Tensor logp = torch::log_softmax(m.forward(in).logits[0][-1].to(torch::kFloat), 0);
        for (std::int64_t t = 0; t < 4; ++t) {
            auto next = seq;
            next.push_back(t);
            walk(next, sum + logp[t].item<double>());
        }
    };
    walk(prompt, 0);
    return best_seq;
}

}  // namespace

class TestGenerate : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void greedyMatchesTransformers_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<bool>("cache");
        for (const char* n : {"gpt2-lm", "llama-gqa-lm", "mistral-lm", "llama-bias-lm", "gptneox-lm", "t5-cg", "t5-gated-cg"}) {
            QTest::newRow(qPrintable(QStringLiteral("%1 cached").arg(n))) << QString(n) << true;
            QTest::newRow(qPrintable(QStringLiteral("%1 recomputed").arg(n))) << QString(n) << false;
        }
    }
    void greedyMatchesTransformers() {
        QFETCH(QString, name);
        QFETCH(bool, cache);
        auto m = dt::load_model(hf(name).toStdString()).model;
        auto ref = dt::st::File::open((hf(name) + "/generate.safetensors").toStdString());
        const at::Tensor got = dt::generate(*m, ref->tensor("input_ids"), ref->tensor("attention_mask"), genOptionsFor(name, cache));
        const at::Tensor want = ref->tensor("generated_ids");
        QVERIFY2(got.sizes() == want.sizes() && torch::equal(got, want), qPrintable(genIds(got) + "\nvs\n" + genIds(want)));
    }

    // One cached step equals the same positions computed from scratch, left padding included.
    void cachedStepEqualsRecomputation_data() {
        QTest::addColumn<QString>("name");
        for (const char* n : {"gpt2-lm", "llama-gqa-lm", "mistral-lm", "gptneox-lm", "t5-gated-cg"}) QTest::newRow(n) << QString(n);
    }
    void cachedStepEqualsRecomputation() {
        QFETCH(QString, name);
        auto m = dt::load_model(hf(name).toStdString()).model;
        auto ref = dt::st::File::open((hf(name) + "/generate.safetensors").toStdString());
        const at::Tensor ids = ref->tensor("input_ids"), mask = ref->tensor("attention_mask");
        torch::NoGradGuard ng;
        const bool t5 = m->is_encoder_decoder();
        const auto T = t5 ? 4 : ids.size(1);
        // The whole sequence at once.
        dt::ForwardInputs full;
        at::Tensor seq = t5 ? torch::randint(2, 100, {2, T}, torch::kLong) : ids;
        if (!t5) {
            full.position_ids = (mask.cumsum(1) - 1).masked_fill(mask == 0, 1);
            full.attention_mask = mask;
        } else {
            full.attention_mask = mask;
            full.decoder_input_ids = seq;
        }
        full.input_ids = ids;
        const at::Tensor all = m->forward(full).logits;
        // The same, first T - 3 positions then three single steps through the cache.
        dt::KVCache cache;
        at::Tensor last;
        for (std::int64_t end : {T - 3, T - 2, T - 1, T}) {
            const auto begin = cache.length() == 0 ? 0 : end - 1;
            dt::ForwardInputs in;
            in.cache = &cache;
            in.input_ids = ids;
            if (t5) {
                in.attention_mask = mask;
                in.decoder_input_ids = seq.narrow(1, begin, end - begin);
            } else {
                in.input_ids = ids.narrow(1, begin, end - begin);
                in.attention_mask = mask.narrow(1, begin, end - begin);
                in.position_ids = full.position_ids.narrow(1, begin, end - begin);
            }
            last = m->forward(in).logits;
            at::Tensor want = all.narrow(1, begin, end - begin);
            if (!t5) {
                // A left pad's query sees no key at all (softmax over nothing but masked keys, as in
                // transformers), so its output depends on how many keys there are: compare real tokens.
                const at::Tensor real = mask.narrow(1, begin, end - begin).unsqueeze(2).to(torch::kBool);
                last = last.masked_fill(~real, 0);
                want = want.masked_fill(~real, 0);
            }
            QVERIFY2(toleranceRatio(last, want) <= 1.0, qPrintable(QStringLiteral("positions %1..%2").arg(begin).arg(end)));
        }
        QCOMPARE(cache.length(), T);
    }

    void deltasTakePartInCachedGeneration_data() {
        QTest::addColumn<QString>("model");
        QTest::addColumn<QByteArray>("spec");
        for (const char* model : {"tiny-llama", "tiny-gptneox", "tiny-t5"})
            for (const char* spec : {R"({"method": "lora"})", R"({"method": "prefix", "num_virtual_tokens": 3})",
                                     R"({"method": "prompt", "num_virtual_tokens": 3})", R"({"method": "adapter", "size": 8})"})
                QTest::newRow(qPrintable(QStringLiteral("%1 %2").arg(model, spec))) << QString(model) << QByteArray(spec);
    }
    void deltasTakePartInCachedGeneration() {
        QFETCH(QString, model);
        QFETCH(QByteArray, spec);
        auto m = dt::create_model(dt::builtin_config(model.toStdString()), 2);
        auto d = dt::DeltaSet::apply(*m, dt::DeltaSpec::from_json(nlohmann::json::parse(spec.toStdString()), "spec"));
        {
            torch::NoGradGuard ng;
            torch::manual_seed(3);
            for (const auto& meth : d.methods())
                for (const auto& n : meth->added()) {
                    auto t = m->named_parameters(true)[n];
                    t.add_(torch::randn_like(t) * 0.5);
                }
        }
        torch::manual_seed(4);
        at::Tensor ids = torch::randint(3, 1000, {2, 6}, torch::kLong);
        at::Tensor mask = torch::ones({2, 6}, torch::kLong);
        if (!m->is_encoder_decoder()) mask[1].narrow(0, 0, 2).fill_(0);  // left padding
        else mask[1].narrow(0, 4, 2).fill_(0);
        dt::GenerationOptions g;
        g.max_new_tokens = 5;
        g.use_cache = true;
        const at::Tensor cached = dt::generate(*m, ids, mask, g);
        g.use_cache = false;
        const at::Tensor recomputed = dt::generate(*m, ids, mask, g);
        QVERIFY2(torch::equal(cached, recomputed), qPrintable(genIds(cached) + "\nvs\n" + genIds(recomputed)));
        // The delta matters to what is generated.
        d.remove(*m);
        const at::Tensor base = dt::generate(*m, ids, mask, g);
        QVERIFY(!torch::equal(base, recomputed));
    }

    void samplingIsSeededAndFiltered() {
        auto m = dt::create_model(dt::builtin_config("tiny-llama"), 1);
        const at::Tensor ids = torch::arange(5, 11, torch::kLong).unsqueeze(0).repeat({2, 1});
        dt::GenerationOptions g;
        g.max_new_tokens = 8;
        const at::Tensor greedy = dt::generate(*m, ids, {}, g);
        g.do_sample = true;
        g.seed = 7;
        g.temperature = 2.0;
        g.top_k = 0;
        const at::Tensor a = dt::generate(*m, ids, {}, g), b = dt::generate(*m, ids, {}, g);
        QVERIFY(torch::equal(a, b));  // same seed, same tokens
        g.seed = 8;
        QVERIFY(!torch::equal(dt::generate(*m, ids, {}, g), a));
        g.top_k = 1;  // top-1 sampling is greedy
        QVERIFY(torch::equal(dt::generate(*m, ids, {}, g), greedy));
        g.top_k = 0;
        g.top_p = 1e-6;  // so is a nucleus holding only the best token
        QVERIFY(torch::equal(dt::generate(*m, ids, {}, g), greedy));
        g.top_p = 0.0;
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::generate(*m, ids, {}, g));
    }

    // Hand-worked cases (SQuAD's normalisation; ROUGE-L over the longest common word subsequence).
    void textMetrics() {
        QCOMPARE(QString::fromStdString(dt::normalize_answer("The  Cat, sat!  on a mat.")), QString("cat sat on mat"));
        QCOMPARE(dt::exact_match("the Eiffel Tower.", "Eiffel tower"), 1.0);
        QCOMPARE(dt::exact_match("Eiffel", "Eiffel tower"), 0.0);
        // pred {eiffel, tower, paris} vs ref {eiffel, tower}: P 2/3, R 1, F1 0.8.
        QVERIFY(std::abs(dt::token_f1("Eiffel Tower, Paris", "the Eiffel Tower") - 0.8) < 1e-12);
        // Repeated words count once per occurrence: pred {a..} "cat cat" vs "cat": P 1/2, R 1.
        QVERIFY(std::abs(dt::token_f1("cat cat", "cat") - 2.0 / 3.0) < 1e-12);
        QCOMPARE(dt::token_f1("", ""), 1.0);       // both empty (after normalisation: "the" is empty too)
        QCOMPARE(dt::token_f1("the", ""), 1.0);
        QCOMPARE(dt::token_f1("", "cat"), 0.0);    // empty prediction
        QCOMPARE(dt::token_f1("cat", ""), 0.0);    // empty reference
        // ROUGE-L: pred "the cat was found under the bed" vs ref "the cat was under the bed":
        // LCS "the cat was under the bed" = 6, P 6/7, R 6/6, F = 12/13.
        QVERIFY(std::abs(dt::rouge_l("the cat was found under the bed", "the cat was under the bed") - 12.0 / 13.0) < 1e-12);
        // Order matters for ROUGE-L, not for F1: "b a" vs "a b" has LCS 1.
        QVERIFY(std::abs(dt::rouge_l("b a", "a b") - 0.5) < 1e-12);
        QCOMPARE(dt::token_f1("b a", "a b"), 1.0);
        QCOMPARE(dt::rouge_l("", "a b"), 0.0);
        QCOMPARE(dt::rouge_l("a b", "..."), 0.0);
        // Unicode: letters of every script are words, lower-cased with the Unicode tables.
        QCOMPARE(dt::exact_match("Ärger im Büro!", "ärger im büro"), 1.0);
        QVERIFY(std::abs(dt::rouge_l("Москва — столица", "столица Москва") - 0.5) < 1e-12);
        QCOMPARE(dt::token_f1("東京", "東京"), 1.0);
        const auto m = dt::text_metrics({"Eiffel Tower", "no"}, {"the eiffel tower", "yes"});
        QCOMPARE(m.at("exact_match"), 0.5);
        QCOMPARE(m.at("f1"), 0.5);
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::text_metrics({"a"}, {}));
    }

    // With more beams than continuations, beam search must find what enumerating every continuation
    // finds, for any length penalty, in every row of a batch.
    void beamSearchEqualsExhaustiveSearch_data() {
        QTest::addColumn<double>("lp");
        QTest::addColumn<bool>("cache");
        for (double lp : {1.0, 0.0, 2.0, -1.0}) {
            QTest::newRow(qPrintable(QStringLiteral("lp %1 cached").arg(lp))) << lp << true;
            QTest::newRow(qPrintable(QStringLiteral("lp %1 recomputed").arg(lp))) << lp << false;
        }
    }
    void beamSearchEqualsExhaustiveSearch() {
        QFETCH(double, lp);
        QFETCH(bool, cache);
        const std::vector<std::vector<std::int64_t>> prompts = {{1, 3}, {3, 3}, {0, 1}};
        int differs_from_greedy = 0;
        for (std::uint64_t seed : {1, 2, 3, 4, 5}) {
            auto m = fourTokenLm(seed);
            std::vector<std::int64_t> flat;
            for (const auto& p : prompts) flat.insert(flat.end(), p.begin(), p.end());
            const at::Tensor ids = torch::tensor(flat, torch::kLong).view({3, 2});
            dt::GenerationOptions g;
            g.max_new_tokens = 3;
            g.eos_token_ids = {2};
            g.pad_token_id = 0;
            g.use_cache = cache;
            g.num_beams = 40;  // at the third step 3 x 3 live beams x 4 tokens = 36 candidates: all of them kept
            g.length_penalty = lp;
            g.early_stopping = "never";
            const at::Tensor got = dt::generate(*m, ids, {}, g);
            g.num_beams = 1;
            const at::Tensor greedy = dt::generate(*m, ids, {}, g);
            for (std::int64_t r = 0; r < 3; ++r) {
                const auto want = bestByEnumeration(*m, prompts[static_cast<std::size_t>(r)], 3, lp);
                std::vector<std::int64_t> row(got[r].data_ptr<std::int64_t>(), got[r].data_ptr<std::int64_t>() + got.size(1));
                QVERIFY2(row.size() >= want.size(), qPrintable(genIds(got)));
                for (std::size_t c = 0; c < want.size(); ++c)
                    QVERIFY2(row[c] == want[c], qPrintable(QStringLiteral("seed %1 row %2: ").arg(seed).arg(r) + genIds(got[r]) + " vs " +
                                                           genIds(torch::tensor(want))));
                for (std::size_t c = want.size(); c < row.size(); ++c) QCOMPARE(row[c], std::int64_t{0});  // padded after its end
                if (!torch::equal(got[r].narrow(0, 0, std::min(got.size(1), greedy.size(1))),
                                  greedy[r].narrow(0, 0, std::min(got.size(1), greedy.size(1)))))
                    ++differs_from_greedy;
            }
        }
        QVERIFY2(differs_from_greedy > 0, "beam search never differed from greedy: the test would not see a greedy beam search");
    }

    // Beam search with a delta attached: the cache is reordered with the beams (cached = recomputed),
    // and num_beams 1 is greedy.
    void beamSearchCachedEqualsRecomputed_data() {
        QTest::addColumn<QString>("model");
        for (const char* model : {"tiny-llama", "tiny-t5", "tiny-gptneox"}) QTest::newRow(model) << QString(model);
    }
    void beamSearchCachedEqualsRecomputed() {
        QFETCH(QString, model);
        auto m = dt::create_model(dt::builtin_config(model.toStdString()), 2);
        auto d = dt::DeltaSet::apply(*m, dt::DeltaSpec::from_json({{"method", "prefix"}, {"num_virtual_tokens", 2}}, "spec"));
        torch::manual_seed(5);
        at::Tensor ids = torch::randint(3, 1000, {2, 5}, torch::kLong);
        at::Tensor mask = torch::ones({2, 5}, torch::kLong);
        if (!m->is_encoder_decoder()) mask[1].narrow(0, 0, 2).fill_(0);
        dt::GenerationOptions g;
        g.max_new_tokens = 6;
        g.num_beams = 4;
        g.eos_token_ids = {1};
        g.pad_token_id = 0;
        const at::Tensor cached = dt::generate(*m, ids, mask, g);
        g.use_cache = false;
        const at::Tensor recomputed = dt::generate(*m, ids, mask, g);
        QVERIFY2(torch::equal(cached, recomputed), qPrintable(genIds(cached) + "\nvs\n" + genIds(recomputed)));
        g.num_beams = 0;
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::generate(*m, ids, mask, g));
        g.num_beams = 2;
        g.do_sample = true;
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::generate(*m, ids, mask, g));
    }

    void eosStopsRowsAndPads() {
        // t5-gated-cg's row 0 emits EOS early in transformers' generation: it is padded afterwards.
        auto ref = dt::st::File::open((hf("t5-gated-cg") + "/generate.safetensors").toStdString());
        const at::Tensor got = ref->tensor("generated_ids");
        const auto eos_at = (got[0] == 1).nonzero();
        QVERIFY(eos_at.size(0) >= 1);
        const auto first = eos_at[0][0].item<std::int64_t>();
        QVERIFY(first < got.size(1) - 1);
        QVERIFY(torch::all(got[0].narrow(0, first + 1, got.size(1) - first - 1) == 0).item<bool>());
        // A base model cannot generate.
        auto base = dt::create_model(dt::ModelConfig::from_json({{"model_type", "llama"}, {"architectures", {"LlamaModel"}}, {"vocab_size", 50},
                                                                {"hidden_size", 16}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                                                                {"intermediate_size", 32}}, "cfg"), 1);
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::generate(*base, torch::ones({1, 3}, torch::kLong), {}, dt::GenerationOptions()));
    }
};

DT_REGISTER_TEST(TestGenerate);
#include "test_generate.moc"
