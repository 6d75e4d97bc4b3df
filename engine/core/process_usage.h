// What this process uses now: resident memory, its peak, CPU time, and GPU memory where CUDA is
// present (the workbench's resource monitor and the memory probe read it).
#pragma once

#include <cstdint>

namespace dt {

struct ProcessUsage {
    std::int64_t rss_bytes = 0;       // resident set now (/proc/self/statm)
    std::int64_t peak_rss_bytes = 0;  // the process's peak resident set (getrusage)
    double cpu_seconds = 0;           // user + system time of all its threads
    std::int64_t gpu_bytes = -1;      // bytes LibTorch's CUDA allocator holds for tensors, all visible GPUs;
                                      // -1: not read (no GPU, or a build without CUDA headers)
};
ProcessUsage process_usage();

}  // namespace dt
