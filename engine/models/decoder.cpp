#include "models/decoder.h"

#include "core/error.h"

#include <torch/torch.h>

#include <limits>

namespace dt {

DecoderInputs prepare_decoder(const ForwardInputs& in, const at::Tensor& embeddings, const PromptProvider& prompt,
                              const std::vector<AttentionRef>& attentions, std::int64_t max_positions, const char* max_positions_field,
                              std::int64_t sliding_window) {
    DecoderInputs d;
    const auto B = in.input_ids.size(0), T0 = in.input_ids.size(1);
    const auto lopts = in.input_ids.options().dtype(torch::kLong);
    KVCache* cache = in.cache;
    d.cached = cache ? cache->length() : 0;
    d.mask = in.attention_mask.defined() ? in.attention_mask.to(torch::kLong) : torch::ones({B, T0}, lopts);
    d.h = embeddings;
    if (prompt && d.cached == 0) {  // a soft prompt goes in front once; later steps find it in the cache
        const at::Tensor p = prompt();
        d.h = torch::cat({p.unsqueeze(0).expand({B, p.size(0), embeddings.size(2)}).to(embeddings.dtype()), embeddings}, 1);
        d.mask = torch::cat({torch::ones({B, p.size(0)}, lopts), d.mask}, 1);
    }
    const auto T = d.h.size(1);
    if (cache && cache->layers.empty()) cache->layers.resize(attentions.size());
    if (cache && cache->layers.size() != attentions.size()) throw Error("the cache belongs to another model", "cache");
    if (cache && d.cached > 0 && cache->mask.size(0) != B) throw Error("the cache holds another batch size", "cache");
    d.prefix_kv.resize(attentions.size());
    d.has_prefix.assign(attentions.size(), false);
    for (std::size_t i = 0; i < attentions.size(); ++i) {
        std::pair<at::Tensor, at::Tensor> kv;
        if (attentions[i].prefix && *attentions[i].prefix) {
            kv = (*attentions[i].prefix)(B);
            d.prefix = kv.first.size(2);
            d.has_prefix[i] = true;
        }
        if (d.cached > 0) {
            const auto& c = cache->layers[i];
            kv = kv.first.defined() ? std::make_pair(torch::cat({kv.first.to(c.first.dtype()), c.first}, 2), torch::cat({kv.second.to(c.second.dtype()), c.second}, 2))
                                    : c;
        }
        d.prefix_kv[i] = kv;
    }
    d.past = d.prefix + d.cached;
    if (d.past + T > max_positions)
        throw Error(std::to_string(T) + " positions" + (d.past ? " after " + std::to_string(d.past) + " earlier positions" : std::string()) +
                        " exceed " + max_positions_field + " " + std::to_string(max_positions),
                    "input_ids");
    if (in.position_ids.defined()) {
        if (in.position_ids.sizes() != in.input_ids.sizes()) throw Error("'position_ids' must have the shape of input_ids", "position_ids");
        d.positions = in.position_ids.to(torch::kLong);
        if (T > T0) d.positions = torch::cat({torch::arange(0, T - T0, lopts).unsqueeze(0).expand({B, T - T0}), d.positions + (T - T0)}, 1);
    } else {
        d.positions = torch::arange(d.past, d.past + T, lopts).unsqueeze(0).expand({B, T});
    }
    const float neg = std::numeric_limits<float>::lowest();
    // Keys k in 0..past+T-1 (prefix, cache, new), queries q = past + i.
    const auto S = d.past + T;
    const at::Tensor q = torch::arange(d.past, S, torch::kLong).unsqueeze(1), k = torch::arange(0, S, torch::kLong).unsqueeze(0);
    at::Tensor blocked = k > q;
    if (sliding_window > 0) blocked = blocked | (q - k >= sliding_window);
    at::Tensor keys_real = d.mask;
    if (d.cached > 0) keys_real = torch::cat({cache->mask.to(torch::kLong), keys_real}, 1);
    at::Tensor pad = (keys_real == 0).unsqueeze(1);  // (B, 1, cached + T)
    if (d.prefix > 0) pad = torch::cat({torch::zeros({B, 1, d.prefix}, pad.options()), pad}, 2);
    at::Tensor all = blocked.unsqueeze(0) | pad;  // (B, T, S)
    if (in.segment_ids.defined()) {  // packed rows: no attention across examples
        if (in.segment_ids.sizes() != in.input_ids.sizes()) throw Error("'segment_ids' must have the shape of input_ids", "segment_ids");
        if (S != T || T != T0)
            throw Error("sequence packing cannot be combined with a soft prompt, prefix keys or a KV cache", "packing",
                        "turn packing off for prompt and prefix tuning");
        const at::Tensor seg = in.segment_ids.to(lopts.device()).to(torch::kLong);
        all = all | (seg.unsqueeze(2) != seg.unsqueeze(1));
    }
    d.mask_prefixed = torch::zeros({B, T, S}, d.h.options()).masked_fill(all, neg).unsqueeze(1);
    d.mask_real = d.prefix > 0 ? d.mask_prefixed.narrow(3, d.prefix, S - d.prefix) : d.mask_prefixed;
    return d;
}

void DecoderInputs::record(const ForwardInputs& in, std::size_t layer, const std::pair<at::Tensor, at::Tensor>& present) const {
    if (!in.cache) return;
    auto& c = in.cache->layers[layer];
    c = cached > 0 ? std::make_pair(torch::cat({c.first, present.first}, 2), torch::cat({c.second, present.second}, 2)) : present;
}

void DecoderInputs::finish(const ForwardInputs& in) const {
    if (!in.cache) return;
    in.cache->mask = cached > 0 ? torch::cat({in.cache->mask, mask}, 1) : mask;
}

}  // namespace dt
