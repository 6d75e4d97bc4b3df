// Masked-language-model pretraining for the BERT family, span corruption for T5: `deltatune pretrain`. Every parameter is
// trained (no delta); the result is a Hugging Face model folder (config.json, model.safetensors,
// tokenizer.json, pretrain.json with the run's numbers), written as a whole or not at all.
#pragma once

#include "train/trainer.h"

#include <map>
#include <string>

namespace dt {

struct PretrainOptions {
    std::string model;      // a config.json (random init with `seed`), a model folder, or a built-in
    std::string corpus;     // plain text, one line per sentence group
    std::string tokenizer;  // tokenizer.json
    std::string out_dir;
    std::size_t seq_len = 64;
    std::size_t max_lines = 0;        // 0: the whole corpus
    double valid_fraction = 0.02;     // held-out sequences for the masked-token accuracy
    double mlm_probability = 0.15;
    // Encoder-decoders (T5) pretrain by span corruption instead: this share of the tokens hidden, in
    // spans of this mean length, behind the mask token (or <extra_id_0>), EOS from the model config.
    double noise_density = 0.15, mean_span = 3.0;
    TrainConfig training;             // steps, batch, lr, schedule, seed (also the init seed)
};

struct PretrainResult {
    TrainResult train;
    std::map<std::string, double> initial, final;  // held-out masked-LM metrics before and after
    std::int64_t parameters = 0, sequences = 0, tokens = 0;
};

PretrainResult pretrain_mlm(const PretrainOptions& o, TrainObserver* observer = nullptr, TrainControl* control = nullptr);

}  // namespace dt
