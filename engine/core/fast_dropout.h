// Dropout whose mask is drawn fast. LibTorch's CPU dropout draws every element through
// bernoulli_ on the default generator, one element at a time: on BERT-base it took 10% of an fp32
// LoRA step and 18% of a bf16 one (`bench train --profile`). Here one 64-bit seed is drawn from
// the default generator per call (so a run's RunRng, its checkpoints and exact resume govern the
// masks as before), and the mask comes from a counter-based hash of (seed, element), in parallel,
// fused with the scaling; backward reuses the saved one-byte mask. Each element is kept with
// probability 1 - p to within 2^-32. CUDA tensors use LibTorch's own fused dropout.
#pragma once

#include <ATen/core/Tensor.h>

namespace dt {

// x with each element zeroed with probability p and the rest scaled by 1 / (1 - p) when
// `training`; x itself otherwise (or when p is 0). p must lie in [0, 1).
at::Tensor fast_dropout(const at::Tensor& x, double p, bool training);

}  // namespace dt
