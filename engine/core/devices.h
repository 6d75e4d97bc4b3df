// The one device probe: what LibTorch build this is, which BLAS it runs on, how many threads, which
// CUDA devices are visible (memory, compute capability, bf16/fp16) and, where CUDA is not offered,
// why. `deltatune doctor`, the trainer's device check and the workbench's device choice all read it.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dt {

struct GpuInfo {
    int index = 0;
    std::string name;
    std::int64_t total_bytes = 0;
    int major = 0, minor = 0;  // compute capability
    bool bf16 = false;         // native bf16 (compute capability 8.0 and later)
};

struct DeviceProbe {
    std::string torch_version;   // e.g. "1.13.0"
    bool cuda_build = false;     // this LibTorch was built with CUDA (its build configuration says so)
    bool cuda_headers = false;   // DeltaTune was compiled with CUDA headers (device names, memory statistics)
    std::vector<GpuInfo> gpus;   // empty: CUDA is not offered, see cuda_reason
    std::string cuda_reason;     // why no CUDA device is offered ("" when some are)
    std::string blas;            // the BLAS library LibTorch runs on, e.g. "OpenBLAS (OpenMP)"
    std::string blas_path;       // the shared library it was loaded from, where it is one
    bool blas_slow = false;      // the reference BLAS: linear layers run many times slower
    std::string cpu_capability;  // the vector instructions LibTorch's CPU kernels use, e.g. "AVX2"
    int threads = 1;             // intra-op threads
    bool cpu_bf16_native = false;  // the CPU has bf16 instructions (avx512_bf16 or AMX); else emulated
    std::string build_config;    // at::show_config()

    // "cpu", then "cuda:0".."cuda:N-1".
    std::vector<std::string> devices() const;
};

// Probes once per call (cheap: no tensor is allocated on any device).
DeviceProbe probe_devices();

// The devices training can use here: "cpu", then "cuda:0".."cuda:N-1" when GPUs are visible.
std::vector<std::string> available_devices();

// "cpu", "cuda" or "cuda:N" checked against what is visible; throws dt::Error (field "device") saying
// why CUDA is not available, or how many GPUs there are.
c10::Device parse_device(const std::string& name);

// Bytes allocated on a CUDA device now and at peak since the last reset (LibTorch's caching
// allocator); -1 where this build cannot read them (CPU, or compiled without CUDA headers).
std::int64_t device_memory_allocated(const c10::Device& d);
std::int64_t device_memory_peak(const c10::Device& d);
void reset_device_memory_peak(const c10::Device& d);

}  // namespace dt
