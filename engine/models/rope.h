// Rotary position embeddings as transformers computes them (rotate_half layout), shared by the
// Llama family and GPT-NeoX: the frequencies, the rope_scaling variants (linear, dynamic NTK,
// llama3) and partial rotary (GPT-NeoX's rotary_pct).
#pragma once

#include "models/config.h"

#include <ATen/Tensor.h>

#include <string>
#include <utility>

namespace dt {

struct RopeConfig {
    std::int64_t dim = 0;        // rotated dims per head (even)
    double theta = 10000.0;      // base
    std::int64_t max_positions = 2048;
    std::string type = "default";  // default | linear | dynamic | llama3
    double factor = 1.0;
    double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
    std::int64_t original_max_positions = 8192;             // llama3

    // Reads config.json's rope_scaling ("type" or "rope_type", "factor", llama3's fields); throws
    // dt::Error naming the field for an unknown type or a factor below 1.
    static RopeConfig from(const ModelConfig& c, std::int64_t dim, double theta, std::int64_t max_positions);
};

// inv_freq (dim / 2) for a forward whose keys span `seq_len` positions (dynamic NTK depends on it).
at::Tensor rope_inv_freq(const RopeConfig& r, std::int64_t seq_len);

// cos and sin (T, dim) for positions first..first+T-1, with seq_len keys in all.
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const RopeConfig& r, std::int64_t first, std::int64_t T, std::int64_t seq_len);

// cos and sin (B, T, dim) for per-row positions (B, T) (left-padded batches, cached decoding).
std::pair<at::Tensor, at::Tensor> rope_cos_sin_at(const RopeConfig& r, const at::Tensor& positions, std::int64_t seq_len);

// x (..., D): rotates the first `cos.size(-1)` dims of the last axis (rotate_half) and passes the
// rest through; cos/sin broadcast against x's leading axes.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace dt
