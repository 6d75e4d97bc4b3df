// The only place with LibTorch version guards. Debian 12 ships LibTorch 1.13 (CPU); GPU builds use
// LibTorch 2.x (CUDA). Everything version-dependent goes through the names defined here.
#pragma once

#include <torch/version.h>
#include <c10/core/ScalarType.h>

#define DT_TORCH_VERSION_AT_LEAST(maj, min) \
    (TORCH_VERSION_MAJOR > (maj) || (TORCH_VERSION_MAJOR == (maj) && TORCH_VERSION_MINOR >= (min)))

// Float8 scalar types exist from LibTorch 2.1 on.
#if DT_TORCH_VERSION_AT_LEAST(2, 1)
#define DT_HAS_FLOAT8 1
#else
#define DT_HAS_FLOAT8 0
#endif

// Unsigned 16/32/64-bit scalar types exist from LibTorch 2.3 on.
#if DT_TORCH_VERSION_AT_LEAST(2, 3)
#define DT_HAS_UINT_WIDE 1
#else
#define DT_HAS_UINT_WIDE 0
#endif

// Autocast is set per device type (set_autocast_enabled(device, on), set_autocast_dtype) from
// LibTorch 2.4 on; the per-backend functions (set_cpu_enabled, set_autocast_gpu_dtype, ...) are
// deprecated there. core/autocast.cpp uses one or the other.
#if DT_TORCH_VERSION_AT_LEAST(2, 4)
#define DT_AUTOCAST_BY_DEVICE 1
#else
#define DT_AUTOCAST_BY_DEVICE 0
#endif

// at::scaled_dot_product_attention with an explicit `scale` exists from LibTorch 2.1 on (fused
// flash/memory-efficient kernels on CUDA, a flash kernel on CPU). 1.13 has only a private
// composite (`_scaled_dot_product_attention`) with no speed to gain, so it keeps the plain path.
#if DT_TORCH_VERSION_AT_LEAST(2, 1)
#define DT_HAS_FUSED_SDPA 1
#else
#define DT_HAS_FUSED_SDPA 0
#endif

namespace dt::compat {

inline const char* torch_version_string() { return TORCH_VERSION; }

}  // namespace dt::compat
