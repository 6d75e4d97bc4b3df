// A quantized frozen base (QLoRA-style): the weights of frozen Linear modules stored as
//  - int8: per output row, absmax scaling (w = q * absmax / 127), about 1 byte per weight;
//  - nf4: 4-bit NormalFloat codes (Dettmers et al. 2023, the 16 quantiles of N(0, 1) scaled to
//    [-1, 1]) with one absmax per block of 64 consecutive weights, 0.5 byte per weight plus 4 bytes
//    per block; with double quantisation the absmax values are themselves stored as int8 around
//    their mean, with one fp32 scale per 256 of them (0.127 bits per weight instead of 0.5).
// The matmul dequantizes the weight in forward and again in backward (nothing dequantized is kept
// for backward), computing in the activations' type (bf16 under autocast). Deltas stay fp32.
// A quantized Linear's `weight` parameter keeps its shape but no storage of its own (a broadcast
// zero), so the parameter count is unchanged; writing such a model is refused (save_model), and
// methods that read the frozen weight in forward (OFT, DoRA) refuse a quantized host.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

namespace torch::nn {
class Module;
}

namespace dt {

class LinearImpl;

enum class QuantKind { Int8, NF4 };

struct QuantizedWeight {
    QuantKind kind = QuantKind::Int8;
    std::int64_t out = 0, in = 0;
    bool double_quant = false;
    at::Tensor codes;    // int8 (out, in) | uint8 (ceil(out*in / 2)) two NF4 codes per byte, high nibble first
    at::Tensor scales;   // fp32: (out) int8 row absmax | (blocks) NF4 block absmax; int8 codes when double-quantised
    at::Tensor scales2;  // double quantisation: fp32 absmax per 256 scales
    double offset = 0;   // double quantisation: the mean the scales were centred on
    static constexpr std::int64_t kBlock = 64, kBlock2 = 256;

    static QuantizedWeight quantize(const at::Tensor& w, QuantKind kind, bool double_quant);
    at::Tensor dequantize(at::ScalarType dtype) const;  // (out, in)
    std::int64_t bytes() const;                         // storage of codes and scales
};

// The 16 NF4 levels, ascending, from -1 to 1 (0 included).
const float* nf4_levels();

// "none" | "int8" | "nf4" -> kind; throws dt::Error naming `field` otherwise.
bool parse_quantize(const std::string& name, QuantKind* kind, const std::string& field);

// x W^T + b with W quantized (see above); bias may be undefined.
at::Tensor quantized_linear(const at::Tensor& x, const QuantizedWeight& q, const at::Tensor& bias);

struct QuantizeReport {
    int linears = 0;
    std::int64_t bytes_before = 0, bytes_after = 0;
};
// Quantizes every frozen Linear weight under `root` (not the embeddings, and not Linears whose
// weight trains). Throws dt::Error naming the module where a method on it reads the frozen weight.
QuantizeReport quantize_frozen_linears(torch::nn::Module& root, QuantKind kind, bool double_quant);

// The parameters' memory with the base's frozen matrices kept each way: fp32; bf16 (Linear and
// embedding weights); int8 (per-row scales) and NF4 with double quantisation, as the workbench's
// choices make them (Linear weights that are not tied; the rest fp32). Trainable tensors count at their own size in every column.
struct StorageBytes {
    std::int64_t fp32 = 0, bf16 = 0, int8 = 0, nf4 = 0;
};
StorageBytes base_storage_bytes(const torch::nn::Module& root);

// Bytes a frozen (out x in) matrix takes when quantized so.
std::int64_t quantized_bytes(QuantKind kind, bool double_quant, std::int64_t out, std::int64_t in);

}  // namespace dt
