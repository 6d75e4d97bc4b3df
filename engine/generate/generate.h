// Text generation for every causal LM and T5, as transformers' generate() does it: greedy, beam
// search (length penalty, early stopping) or sampled (temperature, top-k, top-p, seeded), a KV cache (or full recomputation, which must agree),
// left-padded batches with positions from the attention mask, EOS per row with finished rows padded,
// and whatever delta is attached to the model (LoRA, IA3, adapters, prefixes, prompts).
#pragma once

#include "models/model.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dt {

struct GenerationOptions {
    std::int64_t max_new_tokens = 20;
    bool do_sample = false;
    double temperature = 1.0;
    std::int64_t top_k = 50;  // 0: no top-k filter (transformers' default is 50 when sampling)
    double top_p = 1.0;
    std::uint64_t seed = 0;
    std::vector<std::int64_t> eos_token_ids;  // a row stops at any of them
    std::int64_t pad_token_id = -1;           // finished rows continue with it; -1: the first EOS id
    std::int64_t decoder_start_token_id = -1; // encoder-decoders; -1: the model config's
    bool use_cache = true;
    // Beam search (num_beams > 1; not with do_sample). A finished hypothesis scores
    // sum(log p) / generated_length ** length_penalty, its EOS counted in the length, as transformers
    // >= 4.36 scores them. early_stopping: "true" stops a row once num_beams hypotheses are finished;
    // "false" (transformers' default) also when no live beam can beat the worst of them at today's
    // length; "never" only when none could at any length up to max_new_tokens.
    std::int64_t num_beams = 1;
    double length_penalty = 1.0;
    std::string early_stopping = "false";

    // The model's defaults: config.json, overridden by generation_config.json in `folder` (if any).
    static GenerationOptions for_model(const ModelConfig& cfg, const std::string& folder);
    // Throws dt::Error naming the option that is out of range.
    void validate() const;
};

// Called after each step with the tokens just chosen (B; beam search: each row's best live beam's);
// returning false stops generation.
using GenerationStep = std::function<bool(const at::Tensor& next_tokens)>;

// input_ids (B, T), attention_mask (B, T) or undefined (all ones); left padding for decoder-only
// models. Returns what transformers' generate returns: for decoder-only models the prompt followed
// by the new tokens (B, T + n); for encoder-decoders decoder_start_token_id then the new tokens
// (B, 1 + n). n <= max_new_tokens: generation ends early when every row has emitted EOS. Beam search
// returns each row's best hypothesis, followed by EOS where it ended before the longest, then pads.
at::Tensor generate(TransformerModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask, const GenerationOptions& opts,
                    const GenerationStep& on_step = {});

}  // namespace dt
