// What the causal decoders (Llama, GPT-2) do alike before their blocks: prepend a soft prompt,
// gather each layer's prefix keys/values, check the positions, and build the additive masks.
#pragma once

#include "models/model.h"

#include <utility>
#include <vector>

namespace dt {

struct DecoderInputs {
    at::Tensor h;     // (B, P + T, C): the prompt (if any, first step only) and the token embeddings
    at::Tensor mask;  // (B, P + T) 1 = attend: the new positions
    // Per layer: the keys/values before the new ones, i.e. the prefix (if any) then the cache (if
    // any); undefined when there are neither.
    std::vector<std::pair<at::Tensor, at::Tensor>> prefix_kv;
    std::vector<bool> has_prefix;
    std::int64_t prefix = 0;  // prefix length
    std::int64_t cached = 0;  // cached positions
    std::int64_t past = 0;    // prefix + cached: the keys before the new tokens
    at::Tensor positions;     // (B, P + T) positions of the new tokens (position_ids, or past + 0..)
    // Additive masks (B, 1, T, cached + T) and (B, 1, T, past + T): future and padded keys get finfo(float32).min,
    // and so do keys `sliding_window` or more positions behind the query (prefix positions count).
    at::Tensor mask_real, mask_prefixed;
    const at::Tensor& mask_for(std::size_t layer) const { return has_prefix[layer] ? mask_prefixed : mask_real; }
    bool checkpoint = false;  // activation checkpointing of the blocks without prefix or cache (the block must capture by value)
    // Runs `n` blocks: h = block(i, h, mask, past keys, past values, present) where `present` (null
    // without a cache) receives the block's new keys/values, which go into in.cache; `hidden` (if
    // given) gets every block's output but the last, as transformers collects them before the final norm.
    template <class Block>
    at::Tensor run_blocks(const ForwardInputs& in, std::size_t n, at::Tensor h, std::vector<at::Tensor>* hidden, Block&& block) const {
        std::pair<at::Tensor, at::Tensor> present;
        for (std::size_t i = 0; i < n; ++i) {
            if (checkpoint && !in.cache && !prefix_kv[i].first.defined() && at::GradMode::is_enabled()) {
                const at::Tensor m = mask_for(i);
                h = checkpointed([block, i, m](const at::Tensor& x) { return block(i, x, m, at::Tensor(), at::Tensor(), static_cast<std::pair<at::Tensor, at::Tensor>*>(nullptr)); }, h);
                if (hidden && i + 1 < n) hidden->push_back(h);
                continue;
            }
            h = block(i, h, mask_for(i), prefix_kv[i].first, prefix_kv[i].second, in.cache ? &present : nullptr);
            record(in, i, present);
            if (hidden && i + 1 < n) hidden->push_back(h);
        }
        finish(in);
        return h;
    }
    // Appends layer `layer`'s new keys/values (as the attention computed them) to in.cache.
    void record(const ForwardInputs& in, std::size_t layer, const std::pair<at::Tensor, at::Tensor>& present) const;
    // After the last layer: the cache's mask grows by the new positions.
    void finish(const ForwardInputs& in) const;
};

// `embeddings` are the token embeddings of in.input_ids; `max_positions_field` names the config field
// in the error when past + T exceeds `max_positions`. sliding_window 0 = none (Mistral's window:
// query i sees key j only if i - W < j <= i).
DecoderInputs prepare_decoder(const ForwardInputs& in, const at::Tensor& embeddings, const PromptProvider& prompt,
                              const std::vector<AttentionRef>& attentions, std::int64_t max_positions, const char* max_positions_field,
                              std::int64_t sliding_window = 0);

}  // namespace dt
