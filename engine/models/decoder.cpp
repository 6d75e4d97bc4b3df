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
    d.mask = in.attention_mask.defined() ? in.attention_mask.to(torch::kLong) : torch::ones({B, T0}, lopts);
    d.h = embeddings;
    if (prompt) {
        const at::Tensor p = prompt();
        d.h = torch::cat({p.unsqueeze(0).expand({B, p.size(0), embeddings.size(2)}).to(embeddings.dtype()), embeddings}, 1);
        d.mask = torch::cat({torch::ones({B, p.size(0)}, lopts), d.mask}, 1);
    }
    const auto T = d.h.size(1);
    d.prefix_kv.resize(attentions.size());
    for (std::size_t i = 0; i < attentions.size(); ++i)
        if (attentions[i].prefix && *attentions[i].prefix) {
            d.prefix_kv[i] = (*attentions[i].prefix)(B);
            d.past = d.prefix_kv[i].first.size(2);
        }
    if (d.past + T > max_positions)
        throw Error(std::to_string(T) + " positions" + (d.past ? " after " + std::to_string(d.past) + " prefix positions" : std::string()) +
                        " exceed " + max_positions_field + " " + std::to_string(max_positions),
                    "input_ids");
    const float neg = std::numeric_limits<float>::lowest();
    // Keys k in 0..past+T-1 (prefix first), queries q = past + i.
    const auto S = d.past + T;
    const at::Tensor q = torch::arange(d.past, S, torch::kLong).unsqueeze(1), k = torch::arange(0, S, torch::kLong).unsqueeze(0);
    at::Tensor blocked = k > q;
    if (sliding_window > 0) blocked = blocked | (q - k >= sliding_window);
    at::Tensor pad = (d.mask == 0).unsqueeze(1);  // (B, 1, T)
    if (d.past > 0) pad = torch::cat({torch::zeros({B, 1, d.past}, pad.options()), pad}, 2);
    const at::Tensor all = blocked.unsqueeze(0) | pad;  // (B, T, S)
    d.mask_prefixed = torch::zeros({B, T, S}, d.h.options()).masked_fill(all, neg).unsqueeze(1);
    d.mask_real = d.past > 0 ? d.mask_prefixed.narrow(3, d.past, T) : d.mask_prefixed;
    return d;
}

}  // namespace dt
