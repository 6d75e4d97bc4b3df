// `deltatune doctor`: what this install runs on (the device probe) and a self-test on one device, in
// seconds: forward parity of the built-ins against a CPU float64 reference, a LoRA training step in
// each precision the device has (the loss falls, gradients stay finite, frozen tensors stay
// untouched), generation against the CPU's, and a save/load round trip of a delta. Qt-free, so a GPU
// server without Qt can run it.
#pragma once

#include "core/devices.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dt {

struct DoctorCheck {
    std::string name;    // e.g. "forward:tiny-llama", "train:bf16", "generate:tiny-t5", "save-load"
    bool ok = false;
    std::string detail;  // what was measured, and against what
    double seconds = 0;
};

struct DoctorOptions {
    std::string device = "cpu";  // cpu | cuda | cuda:N
    // Testing aid: the named check's result is corrupted before it is compared (a perturbed output,
    // a zero learning rate, a flipped token, a zeroed delta), so that check must fail.
    std::string inject_failure;
};

struct DoctorReport {
    DeviceProbe probe;
    std::string device;
    std::vector<DoctorCheck> checks;
    std::map<std::string, double> step_ms;  // per precision: the median LoRA training step
    std::string step_workload;              // what step_ms timed
    std::int64_t peak_device_bytes = -1;    // CUDA allocator peak during the self-test; -1 on CPU
    std::int64_t peak_rss_bytes = 0;
    std::vector<std::string> warnings;      // e.g. the reference BLAS

    bool ok() const;
    std::vector<std::string> failed() const;
    nlohmann::json to_json() const;
};

// The checks run on `device`, in order.
std::vector<std::string> doctor_check_names(const std::string& device);

// Throws dt::Error only for a device that cannot be used (field "device"); a failing check is
// reported in the result. `progress` is called after each check.
DoctorReport run_doctor(const DoctorOptions& options, const std::function<void(const DoctorCheck&)>& progress = {});

}  // namespace dt
