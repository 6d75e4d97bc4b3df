#include "core/devices.h"

#include "core/error.h"
#include "core/torch_compat.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/cuda.h>

#if DT_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <link.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace dt {
namespace {

// "KEY=value" from the build settings line of show_config(); "" when absent.
std::string build_setting(const std::string& config, const std::string& key) {
    const std::string k = key + "=";
    std::size_t p = 0;
    while ((p = config.find(k, p)) != std::string::npos) {
        if (p == 0 || config[p - 1] == ' ' || config[p - 1] == ',') {
            const std::size_t e = config.find_first_of(", \n", p + k.size());
            return config.substr(p + k.size(), e == std::string::npos ? std::string::npos : e - p - k.size());
        }
        p += k.size();
    }
    return {};
}

int collect_library(dl_phdr_info* info, size_t, void* data) {
    auto* out = static_cast<std::vector<std::string>*>(data);
    if (info->dlpi_name && *info->dlpi_name) out->push_back(info->dlpi_name);
    return 0;
}

// The BLAS library the process has loaded (Debian's LibTorch links libblas.so.3, which the
// alternatives system points at OpenBLAS or the reference BLAS), else what the build says.
void probe_blas(DeviceProbe& p) {
    std::vector<std::string> libs;
    dl_iterate_phdr(collect_library, &libs);
    for (const auto& lib : libs) {
        const std::string base = lib.substr(lib.rfind('/') + 1);
        if (base.rfind("libblas", 0) != 0 && base.rfind("libopenblas", 0) != 0 && base.rfind("libmkl", 0) != 0) continue;
        char real[PATH_MAX];
        const std::string path = ::realpath(lib.c_str(), real) ? std::string(real) : lib;
        p.blas_path = path;
        if (path.find("openblas") != std::string::npos) {
            p.blas = path.find("openmp") != std::string::npos   ? "OpenBLAS (OpenMP)"
                     : path.find("pthread") != std::string::npos ? "OpenBLAS (pthreads)"
                                                                 : "OpenBLAS";
        } else if (path.find("mkl") != std::string::npos) {
            p.blas = "Intel MKL";
        } else if (path.find("blis") != std::string::npos) {
            p.blas = "BLIS";
        } else if (path.find("atlas") != std::string::npos) {
            p.blas = "ATLAS";
        } else {
            p.blas = "reference BLAS (netlib)";
            p.blas_slow = true;
        }
        return;
    }
    const std::string info = build_setting(p.build_config, "BLAS_INFO");
    p.blas = info.empty() ? "unknown" : info == "mkl" ? "Intel MKL (linked into LibTorch)" : info;
}

bool cpu_has_bf16() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("flags", 0) != 0) continue;
        std::istringstream words(line);
        std::string w;
        while (words >> w)
            if (w == "avx512_bf16" || w == "amx_bf16") return true;
        return false;
    }
    return false;
}

}  // namespace

std::vector<std::string> DeviceProbe::devices() const {
    std::vector<std::string> out = {"cpu"};
    for (const auto& g : gpus) out.push_back("cuda:" + std::to_string(g.index));
    return out;
}

DeviceProbe probe_devices() {
    DeviceProbe p;
    p.torch_version = compat::torch_version_string();
    p.build_config = at::show_config();
    p.cuda_build = build_setting(p.build_config, "USE_CUDA") == "ON" || build_setting(p.build_config, "USE_CUDA") == "1";
    p.cuda_headers = DT_WITH_CUDA != 0;
    p.threads = at::get_num_threads();
    const std::string cap = "CPU capability usage: ";
    if (const std::size_t at = p.build_config.find(cap); at != std::string::npos)
        p.cpu_capability = p.build_config.substr(at + cap.size(), p.build_config.find('\n', at) - at - cap.size());
    p.cpu_bf16_native = cpu_has_bf16();
    probe_blas(p);
    const int n = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
    for (int i = 0; i < n; ++i) {
        GpuInfo g;
        g.index = i;
        g.name = "CUDA device " + std::to_string(i);
#if DT_WITH_CUDA
        if (const cudaDeviceProp* prop = at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(i))) {
            g.name = prop->name;
            g.total_bytes = static_cast<std::int64_t>(prop->totalGlobalMem);
            g.major = prop->major;
            g.minor = prop->minor;
            g.bf16 = prop->major >= 8;
        }
#endif
        p.gpus.push_back(g);
    }
    if (p.gpus.empty()) {
        if (!p.cuda_build) {
            p.cuda_reason = "this LibTorch (" + p.torch_version +
                            ") is a CPU-only build; build DeltaTune against a CUDA LibTorch 2.x (see the README, section GPU)";
        } else {
            const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
            p.cuda_reason = std::string("this LibTorch has CUDA, but no GPU is visible (no NVIDIA driver, or ") +
                            (visible ? "CUDA_VISIBLE_DEVICES='" + std::string(visible) + "'" : std::string("no device present")) + ")";
        }
    }
    return p;
}

std::vector<std::string> available_devices() {
    std::vector<std::string> out = {"cpu"};
    if (torch::cuda::is_available())
        for (std::size_t i = 0; i < torch::cuda::device_count(); ++i) out.push_back("cuda:" + std::to_string(i));
    return out;
}

c10::Device parse_device(const std::string& d) {
    if (d == "cpu") return c10::Device(c10::kCPU);
    const bool indexed = d.rfind("cuda:", 0) == 0 && d.size() > 5 && d.find_first_not_of("0123456789", 5) == std::string::npos;
    if (d != "cuda" && !indexed) throw Error("unknown device '" + d + "'", "device", "cpu, cuda or cuda:N");
    if (!torch::cuda::is_available()) throw Error("CUDA is not available: " + probe_devices().cuda_reason, "device", "use \"cpu\"");
    c10::Device dev(d);
    if (dev.has_index() && dev.index() >= static_cast<int>(torch::cuda::device_count()))
        throw Error("there is no " + d + " (" + std::to_string(torch::cuda::device_count()) + " GPU(s) visible)", "device",
                    "cuda:0 to cuda:" + std::to_string(torch::cuda::device_count() - 1));
    return dev;
}

#if DT_WITH_CUDA
namespace {
int cuda_index(const c10::Device& d) { return d.has_index() ? d.index() : static_cast<int>(c10::cuda::current_device()); }
// Index 0 of the allocator's statistics is StatType::AGGREGATE (every pool) in LibTorch 1.13 and 2.x;
// the types' namespace moved in 2.x, so they are not named here.
constexpr std::size_t kAggregate = 0;
}  // namespace

std::int64_t device_memory_allocated(const c10::Device& d) {
    if (!d.is_cuda()) return -1;
    return c10::cuda::CUDACachingAllocator::getDeviceStats(cuda_index(d)).allocated_bytes[kAggregate].current;
}
std::int64_t device_memory_peak(const c10::Device& d) {
    if (!d.is_cuda()) return -1;
    return c10::cuda::CUDACachingAllocator::getDeviceStats(cuda_index(d)).allocated_bytes[kAggregate].peak;
}
void reset_device_memory_peak(const c10::Device& d) {
    if (d.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(cuda_index(d));
}
#else
std::int64_t device_memory_allocated(const c10::Device&) { return -1; }
std::int64_t device_memory_peak(const c10::Device&) { return -1; }
void reset_device_memory_peak(const c10::Device&) {}
#endif

}  // namespace dt
