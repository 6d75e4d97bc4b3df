#include "core/process_usage.h"

#include "core/devices.h"

#include <torch/cuda.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace dt {

ProcessUsage process_usage() {
    ProcessUsage u;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
        long long size = 0, resident = 0;
        if (std::fscanf(f, "%lld %lld", &size, &resident) == 2) u.rss_bytes = resident * static_cast<long long>(sysconf(_SC_PAGESIZE));
        std::fclose(f);
    }
    rusage ru{};
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        u.peak_rss_bytes = static_cast<std::int64_t>(ru.ru_maxrss) * 1024;  // kilobytes on Linux
        u.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                        static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
    }
    if (DT_WITH_CUDA && torch::cuda::is_available()) {  // every visible GPU's allocated bytes
        u.gpu_bytes = 0;
        for (std::size_t i = 0; i < torch::cuda::device_count(); ++i)
            u.gpu_bytes += std::max<std::int64_t>(0, device_memory_allocated(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i))));
    }
    return u;
}

}  // namespace dt
