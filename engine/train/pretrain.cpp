#include "train/pretrain.h"

#include "core/error.h"
#include "data/text_data.h"
#include "delta/delta_set.h"
#include "io/atomic_file.h"
#include "models/config.h"
#include "models/loader.h"
#include "io/json_util.h"
#include "models/model.h"
#include "tokenizers/tokenizer.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace dt {

PretrainResult pretrain_mlm(const PretrainOptions& o, TrainObserver* observer, TrainControl* control) {
    if (o.out_dir.empty()) throw Error("no output folder", "--out");
    const auto tk = tok::Tokenizer::from_file(o.tokenizer);
    std::shared_ptr<TransformerModel> model;
    const bool from_config = o.model.size() > 5 && o.model.compare(o.model.size() - 5, 5, ".json") == 0;
    if (from_config) {
        model = create_model(ModelConfig::load(o.model), o.training.seed);
    } else {
        LoadOptions lo;
        lo.seed = o.training.seed;
        model = load_model(o.model, lo).model;
    }
    const std::string where = from_config ? o.model : o.model + "/config.json";
    const bool span = model->is_encoder_decoder();
    if (!span && model->name().find("ForMaskedLM") == std::string::npos)
        throw Error("pretraining needs a *ForMaskedLM architecture (masked LM) or T5ForConditionalGeneration (span corruption), got " +
                        model->name(),
                    where, "set \"architectures\": [\"BertForMaskedLM\"] in the config");
    if (span && model->name() != "T5ForConditionalGeneration")
        throw Error("span-corruption pretraining needs a language-model head, got " + model->name(), where,
                    "set \"architectures\": [\"T5ForConditionalGeneration\"]");
    Dataset all = read_mlm_corpus(o.corpus, tk, o.seq_len, o.max_lines, span);
    all.mlm_probability = o.mlm_probability;
    if (span) {
        if (!(o.noise_density > 0 && o.noise_density < 1)) throw Error("must be in (0, 1)", "--noise-density");
        if (!(o.mean_span >= 1)) throw Error("must be at least 1", "--mean-span");
        all.masked_lm = false;
        all.seq2seq = all.span_corruption = true;
        all.noise_density = o.noise_density;
        all.mean_span = o.mean_span;
        all.sentinel_id = tk.token_to_id("<extra_id_0>") >= 0 ? tk.token_to_id("<extra_id_0>") : tk.token_to_id("[MASK]");
        all.eos_id = model->config().get_int_or("eos_token_id", -1);
        if (all.sentinel_id < 0) throw Error("the tokenizer has neither <extra_id_0> nor [MASK] for the hidden spans", o.tokenizer);
        if (all.eos_id < 0) throw Error("the model config has no eos_token_id", where, "set eos_token_id (T5: the id of </s>)");
    }
    auto [train, valid] = split_dataset(all, o.valid_fraction, o.training.seed);
    const std::int64_t vocab = model->config().get_int_or("vocab_size", 0);
    if (vocab < static_cast<std::int64_t>(tk.vocab_size()))
        throw Error("vocab_size " + std::to_string(vocab) + " is smaller than the tokenizer's " + std::to_string(tk.vocab_size()) +
                        " tokens",
                    where, "set vocab_size to at least the tokenizer's size");
    DeltaSet deltas = DeltaSet::apply(*model, DeltaSpec::from_json({{"method", "full"}}, "pretrain"));
    PretrainResult res;
    res.parameters = deltas.accounting(*model).trainable_params;
    res.sequences = static_cast<std::int64_t>(train.size());
    for (const auto& ex : train.examples) res.tokens += static_cast<std::int64_t>(ex.ids.size());
    TrainConfig cfg = o.training;
    cfg.pad_id = model->config().get_int_or("pad_token_id", 0);
    Trainer trainer(*model, train, valid.size() ? &valid : nullptr, cfg, observer);
    if (valid.size()) res.initial = trainer.evaluate(valid);
    res.train = trainer.run(control);
    if (valid.size()) res.final = trainer.evaluate(valid);
    if (res.train.status == "cancelled") return res;  // nothing written: a half-trained model is not a result
    auto base_name = [](const std::string& p) { return p.substr(p.find_last_of('/') + 1); };
    nlohmann::json info = {{"corpus", base_name(o.corpus)}, {"tokenizer", base_name(o.tokenizer)},      {"seq_len", o.seq_len},
                           {"steps", res.train.steps},    {"batch_size", cfg.batch_size},  {"lr", cfg.lr},
                           {"seed", cfg.seed},
                           {"parameters", res.parameters}, {"train_sequences", res.sequences}, {"train_tokens", res.tokens},
                           {"status", res.train.status}};
    if (span) {
        info["objective"] = "span_corruption";
        info["noise_density"] = o.noise_density;
        info["mean_span"] = o.mean_span;
    } else {  // (no "objective" key: the shipped BERT records stay byte-identical)
        info["mlm_probability"] = o.mlm_probability;
    }
    // A curriculum stage continues another pretraining: its record goes along.
    if (!from_config && path_exists(o.model + "/pretrain.json")) info["continued_from"] = json::load_file(o.model + "/pretrain.json");
    else info["initialized_from"] = base_name(o.model);
    for (const auto& [k, v] : res.initial) info["held_out_before"][k] = v;
    for (const auto& [k, v] : res.final) info["held_out_after"][k] = v;
    std::ifstream tin(o.tokenizer, std::ios::binary);
    std::stringstream tok_text;
    tok_text << tin.rdbuf();
    write_folder_atomic(o.out_dir, [&](const std::string& staging) {
        save_model(*model, staging);
        write_file_atomic(staging + "/tokenizer.json", tok_text.str());
        write_file_atomic(staging + "/pretrain.json", info.dump(2) + "\n");
    });
    return res;
}

}  // namespace dt
