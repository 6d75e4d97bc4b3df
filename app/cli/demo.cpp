// `deltatune demo data OUT_DIR` (the synthetic language: tokenizer.json, corpus.txt, configs and
// tasks) and `deltatune pretrain` (masked-LM pretraining into a model folder). tools/make_demo.sh
// chains them into the shipped resources/demo.
#include "cli.h"

#include "core/error.h"
#include "demo/synth_language.h"
#include "io/atomic_file.h"
#include "train/pretrain.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>

namespace dt::cli {
namespace {

nlohmann::json bert_mlm_config(std::int64_t vocab, int hidden, int layers, int heads, int intermediate) {
    return {{"architectures", {"BertForMaskedLM"}},
            {"model_type", "bert"},
            {"vocab_size", vocab},
            {"hidden_size", hidden},
            {"num_hidden_layers", layers},
            {"num_attention_heads", heads},
            {"intermediate_size", intermediate},
            {"hidden_act", "gelu"},
            {"hidden_dropout_prob", 0.1},
            {"attention_probs_dropout_prob", 0.1},
            {"max_position_embeddings", 128},
            {"type_vocab_size", 2},
            {"initializer_range", 0.02},
            {"layer_norm_eps", 1e-12},
            {"pad_token_id", 0},
            {"position_embedding_type", "absolute"},
            {"tie_word_embeddings", true}};
}

nlohmann::json t5_config(std::int64_t vocab, std::int64_t eos, int d_model, int layers, int heads, int d_ff) {
    return {{"architectures", {"T5ForConditionalGeneration"}},
            {"model_type", "t5"},
            {"vocab_size", vocab},
            {"d_model", d_model},
            {"d_kv", d_model / heads},
            {"d_ff", d_ff},
            {"num_layers", layers},
            {"num_decoder_layers", layers},
            {"num_heads", heads},
            {"relative_attention_num_buckets", 32},
            {"relative_attention_max_distance", 128},
            {"dropout_rate", 0.1},
            {"layer_norm_epsilon", 1e-6},
            {"initializer_factor", 1.0},
            {"feed_forward_proj", "relu"},
            {"tie_word_embeddings", true},
            {"is_encoder_decoder", true},
            {"pad_token_id", 0},
            {"eos_token_id", eos},
            {"decoder_start_token_id", 0}};
}

class PretrainPrinter : public TrainObserver {
public:
    explicit PretrainPrinter(std::int64_t steps) : steps_(steps) {}
    void on_step(const StepEvent& e) override {
        if (e.step % std::max<std::int64_t>(1, steps_ / 20) == 0 || e.step == steps_)
            std::fprintf(stderr, "step %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  %.0fs\n", static_cast<long long>(e.step),
                         static_cast<long long>(steps_), e.loss, e.lr, e.tokens_per_s, e.elapsed_s);
    }
    void on_eval(const EvalEvent& e) override {
        std::fprintf(stderr, "held-out at step %lld: loss %.4f  hidden-token accuracy %.4f\n", static_cast<long long>(e.step),
                     e.metrics.at("loss"), e.metrics.at("accuracy"));
    }

private:
    std::int64_t steps_;
};

}  // namespace

int cmd_demo(const Args& a) {
    if (a.positional.size() != 2 || a.positional[0] != "data")
        throw Error("usage: deltatune demo data OUT_DIR [--seed N] [--corpus-lines N] [--train N] [--valid N]", "demo");
    const auto seed = static_cast<std::uint64_t>(a.int_value("--seed", 1));
    const auto lines = static_cast<std::size_t>(a.int_value("--corpus-lines", 200000));
    const auto n_train = static_cast<std::size_t>(a.int_value("--train", 1000));
    const auto n_valid = static_cast<std::size_t>(a.int_value("--valid", 400));
    const std::string out = a.positional[1];
    demo::write_demo_data(out, seed, lines, n_train, n_valid);
    const std::int64_t vocab = static_cast<std::int64_t>(demo::tokenizer_json(demo::Lexicon::build(seed))["model"]["vocab"].size());
    write_file_atomic(out + "/config-small.json", bert_mlm_config(vocab, 64, 2, 2, 256).dump(2) + "\n");
    write_file_atomic(out + "/config-base.json", bert_mlm_config(vocab, 128, 4, 4, 512).dump(2) + "\n");
    // The demo T5s: the same vocabulary, [SEP] as </s>, [PAD] as pad and decoder start, [MASK] as the
    // span sentinel; about 0.4M and 1.9M parameters.
    const auto t5_tok = demo::tokenizer_t5_json(demo::Lexicon::build(seed));
    const std::int64_t eos = t5_tok["model"]["vocab"]["[SEP]"].get<std::int64_t>();
    write_file_atomic(out + "/tokenizer-t5.json", t5_tok.dump(1) + "\n");
    write_file_atomic(out + "/config-t5-small.json", t5_config(vocab, eos, 64, 3, 2, 256).dump(2) + "\n");
    write_file_atomic(out + "/config-t5-base.json", t5_config(vocab, eos, 128, 4, 4, 512).dump(2) + "\n");
    std::fprintf(stderr,
                 "wrote tokenizer.json, tokenizer-t5.json (%lld tokens), corpus.txt (%zu lines), config-small.json, config-base.json, "
                 "config-t5-small.json, config-t5-base.json and tasks/ to %s\n",
                 static_cast<long long>(vocab), lines, out.c_str());
    return 0;
}

int cmd_pretrain(const Args& a) {
    PretrainOptions o;
    o.model = a.value("--model");
    o.corpus = a.value("--corpus");
    o.tokenizer = a.value("--tokenizer");
    o.out_dir = a.value("--out");
    for (const auto& [f, v] : {std::pair<const char*, const std::string*>{"--model", &o.model}, {"--corpus", &o.corpus},
                               {"--tokenizer", &o.tokenizer}, {"--out", &o.out_dir}})
        if (v->empty()) throw Error("missing option", f, "deltatune pretrain --model CONFIG.json --corpus FILE --tokenizer tokenizer.json --out DIR");
    o.seq_len = static_cast<std::size_t>(a.int_value("--seq", 64));
    o.max_lines = static_cast<std::size_t>(a.int_value("--lines", 0));
    o.mlm_probability = a.number_value("--mask-prob", 0.15);
    o.noise_density = a.number_value("--noise-density", 0.15);
    o.mean_span = a.number_value("--mean-span", 3.0);
    auto& c = o.training;
    c.max_steps = a.int_value("--steps", 1000);
    c.batch_size = a.int_value("--batch", 64);
    c.lr = a.number_value("--lr", 1e-3);
    c.seed = static_cast<std::uint64_t>(a.int_value("--seed", 0));
    c.schedule = "linear";
    c.warmup_ratio = 0.05;
    c.weight_decay = 0.01;
    c.eval_every = a.int_value("--eval-every", std::max<int>(1, static_cast<int>(c.max_steps / 4)));
    c.save_best = false;
    if (c.max_steps <= 0 || c.batch_size <= 0) throw Error("--steps and --batch must be positive");
    PretrainPrinter printer(c.max_steps);
    const auto r = pretrain_mlm(o, &printer);
    std::fprintf(stderr, "pretrained %lld parameters on %lld sequences (%lld tokens): held-out hidden-token accuracy %.4f -> %.4f; wrote %s\n",
                 static_cast<long long>(r.parameters), static_cast<long long>(r.sequences), static_cast<long long>(r.tokens),
                 r.initial.count("accuracy") ? r.initial.at("accuracy") : 0.0, r.final.count("accuracy") ? r.final.at("accuracy") : 0.0,
                 o.out_dir.c_str());
    return 0;
}

}  // namespace dt::cli
