#include "models/rope.h"

#include "core/error.h"

#include <torch/torch.h>

#include <cmath>

namespace dt {

RopeConfig RopeConfig::from(const ModelConfig& c, std::int64_t dim, double theta, std::int64_t max_positions) {
    RopeConfig r;
    r.dim = dim;
    r.theta = theta;
    r.max_positions = max_positions;
    if (dim <= 0 || dim % 2 != 0) throw Error("the rotary dimension must be even and positive, got " + std::to_string(dim), c.source);
    if (!c.raw.contains("rope_scaling") || c.raw["rope_scaling"].is_null()) return r;
    const auto& s = c.raw["rope_scaling"];
    if (!s.is_object()) throw Error("rope_scaling must be an object or null", c.source);
    const std::string type = s.contains("rope_type") ? s.value("rope_type", "") : s.value("type", "");
    if (type != "default" && type != "linear" && type != "dynamic" && type != "llama3")
        throw Error("rope_scaling type '" + type + "' is not supported", c.source, "supported: linear, dynamic, llama3");
    r.type = type;
    if (type == "default") return r;
    if (!s.contains("factor") || !s["factor"].is_number() || s["factor"].get<double>() < 1.0)
        throw Error("rope_scaling.factor must be a number >= 1", c.source);
    r.factor = s["factor"].get<double>();
    if (type == "llama3") {
        r.low_freq_factor = s.value("low_freq_factor", 1.0);
        r.high_freq_factor = s.value("high_freq_factor", 4.0);
        r.original_max_positions = s.value("original_max_position_embeddings", std::int64_t{8192});
        if (!(r.high_freq_factor > r.low_freq_factor) || r.low_freq_factor <= 0 || r.original_max_positions <= 0)
            throw Error("rope_scaling needs 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0", c.source);
    }
    return r;
}

at::Tensor rope_inv_freq(const RopeConfig& r, std::int64_t seq_len) {
    double base = r.theta;
    if (r.type == "dynamic" && seq_len > r.max_positions) {
        const double d = static_cast<double>(r.dim);
        base = base * std::pow(r.factor * static_cast<double>(seq_len) / static_cast<double>(r.max_positions) - (r.factor - 1.0), d / (d - 2.0));
    }
    at::Tensor inv = 1.0 / torch::pow(base, torch::arange(0, r.dim, 2, torch::kFloat) / static_cast<double>(r.dim));
    if (r.type == "llama3") {
        const double old_len = static_cast<double>(r.original_max_positions);
        const double low_wavelen = old_len / r.low_freq_factor, high_wavelen = old_len / r.high_freq_factor;
        const at::Tensor wavelen = 2.0 * M_PI / inv;
        at::Tensor scaled = torch::where(wavelen > low_wavelen, inv / r.factor, inv);
        const at::Tensor smooth = (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
        const at::Tensor smoothed = (1.0 - smooth) * scaled / r.factor + smooth * scaled;
        const at::Tensor medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen);
        inv = torch::where(medium, smoothed, scaled);
    }
    return inv;
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const RopeConfig& r, std::int64_t first, std::int64_t T, std::int64_t seq_len) {
    at::Tensor pos = torch::arange(first, first + T, torch::kFloat);
    if (r.type == "linear") pos = pos / r.factor;
    const at::Tensor freqs = torch::outer(pos, rope_inv_freq(r, seq_len));
    const at::Tensor emb = torch::cat({freqs, freqs}, -1);
    return {emb.cos(), emb.sin()};
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin_at(const RopeConfig& r, const at::Tensor& positions, std::int64_t seq_len) {
    at::Tensor pos = positions.to(torch::kFloat);
    if (r.type == "linear") pos = pos / r.factor;
    const at::Tensor freqs = pos.unsqueeze(-1) * rope_inv_freq(r, seq_len).view({1, 1, -1});
    const at::Tensor emb = torch::cat({freqs, freqs}, -1);
    return {emb.cos(), emb.sin()};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const auto R = cos.size(-1), D = x.size(-1);
    const at::Tensor rot = R == D ? x : x.narrow(-1, 0, R);
    const auto half = R / 2;
    const at::Tensor rotated = torch::cat({-rot.narrow(-1, half, half), rot.narrow(-1, 0, half)}, -1);
    const at::Tensor out = rot * cos + rotated * sin;
    return R == D ? out : torch::cat({out, x.narrow(-1, R, D - R)}, -1);
}

}  // namespace dt
