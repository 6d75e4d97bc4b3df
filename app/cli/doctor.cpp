// `deltatune doctor [--device cpu|cuda|cuda:N] [--json]`: what this install runs on, then the
// engine's self-test on that device (train/doctor.h). Exit 0 when every check passes, 1 naming the
// failing checks, 2 for a device that cannot be used.
#include "cli.h"

#include "core/error.h"
#include "train/doctor.h"

#include <cstdio>

namespace dt::cli {
namespace {

std::string gib(std::int64_t b) {
    char s[32];
    std::snprintf(s, sizeof s, "%.1f GiB", static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0));
    return s;
}

std::string mib(std::int64_t b) {
    char s[32];
    std::snprintf(s, sizeof s, "%.0f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
    return s;
}

void print_probe(const DeviceProbe& p) {
    std::printf("LibTorch   %s (%s)\n", p.torch_version.c_str(), p.cuda_build ? "CUDA build" : "CPU-only build");
    std::printf("BLAS       %s%s%s\n", p.blas.c_str(), p.blas_path.empty() ? "" : "  ", p.blas_path.c_str());
    std::printf("threads    %d intra-op%s%s\n", p.threads, p.cpu_capability.empty() ? "" : ", CPU kernels ", p.cpu_capability.c_str());
    std::printf("CPU bf16   %s\n", p.cpu_bf16_native ? "native (avx512_bf16/AMX)" : "emulated (no bf16 instructions: slower than fp32)");
    if (p.gpus.empty()) std::printf("CUDA       not offered: %s\n", p.cuda_reason.c_str());
    for (const auto& g : p.gpus) {
        if (p.cuda_headers)
            std::printf("cuda:%d     %s, %s, compute %d.%d, bf16 %s, fp16 yes\n", g.index, g.name.c_str(), gib(g.total_bytes).c_str(), g.major,
                        g.minor, g.bf16 ? "yes" : "no");
        else
            std::printf("cuda:%d     (built without CUDA headers: name and memory not read)\n", g.index);
    }
}

}  // namespace

int cmd_doctor(const Args& a) {
    if (!a.positional.empty()) throw Error("takes no positional argument, got '" + a.positional[0] + "'", "doctor", "deltatune doctor --device cuda");
    DoctorOptions o;
    o.device = a.value("--device", "cpu");
    o.inject_failure = a.value("--inject-failure");
    const bool json = a.has("--json");
    if (!json) {
        print_probe(probe_devices());
        std::printf("\nself-test on %s:\n", o.device.c_str());
        std::fflush(stdout);
    }
    const DoctorReport r = run_doctor(o, [&](const DoctorCheck& c) {
        if (json) return;
        std::printf("  %-4s  %-20s %6.2f s  %s\n", c.ok ? "ok" : "FAIL", c.name.c_str(), c.seconds, c.detail.c_str());
        std::fflush(stdout);
    });
    if (json) {
        std::printf("%s\n", r.to_json().dump(2).c_str());
    } else {
        std::printf("\nstep time (%s):", r.step_workload.c_str());
        for (const auto& s : r.step_ms) std::printf(" %s %.1f ms", s.first.c_str(), s.second);
        std::printf("\npeak memory: %s resident", mib(r.peak_rss_bytes).c_str());
        if (r.peak_device_bytes >= 0) std::printf(", %s allocated on %s", mib(r.peak_device_bytes).c_str(), r.device.c_str());
        std::printf("\n");
        for (const auto& w : r.warnings) std::printf("warning: %s\n", w.c_str());
    }
    const auto failed = r.failed();
    if (failed.empty()) {
        if (!json) std::printf("result: all %zu checks passed on %s\n", r.checks.size(), r.device.c_str());
        return 0;
    }
    std::string names;
    for (const auto& f : failed) names += (names.empty() ? "" : ", ") + f;
    std::fprintf(stderr, "error: %zu of %zu checks failed on %s: %s\n", failed.size(), r.checks.size(), r.device.c_str(), names.c_str());
    return 1;
}

}  // namespace dt::cli
