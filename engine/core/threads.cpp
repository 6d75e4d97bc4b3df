#include "core/threads.h"

#include "core/error.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <string>
#include <thread>

namespace dt {

int configure_threads(int requested) {
    int n = requested;
    if (n <= 0) {
        if (const char* env = std::getenv("DELTATUNE_THREADS"); env && *env) {
            char* end = nullptr;
            long v = std::strtol(env, &end, 10);
            if (*end != '\0' || v <= 0 || v > 4096)
                throw Error("expected a positive integer, got '" + std::string(env) + "'", "DELTATUNE_THREADS",
                            "unset it to use every core");
            n = static_cast<int>(v);
        }
    }
    if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    at::set_num_threads(n);
    return n;
}

}  // namespace dt
