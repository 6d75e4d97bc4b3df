#include "core/autocast.h"

#include "core/torch_compat.h"

#include <ATen/autocast_mode.h>

namespace dt {

AutocastScope::AutocastScope(const std::string& precision, c10::DeviceType device) : on_(precision != "fp32"), device_(device) {
    if (!on_) return;
    const auto dtype = precision == "fp16" ? at::kHalf : at::kBFloat16;
    prev_ = autocast_enabled(device_);
#if DT_AUTOCAST_BY_DEVICE
    at::autocast::set_autocast_dtype(device_, dtype);
    at::autocast::set_autocast_enabled(device_, true);
#else
    if (device_ == c10::DeviceType::CUDA) {
        at::autocast::set_autocast_gpu_dtype(dtype);
        at::autocast::set_enabled(true);
    } else {
        at::autocast::set_autocast_cpu_dtype(dtype);
        at::autocast::set_cpu_enabled(true);
    }
#endif
}

AutocastScope::~AutocastScope() {
    if (!on_) return;
#if DT_AUTOCAST_BY_DEVICE
    at::autocast::set_autocast_enabled(device_, prev_);
#else
    if (device_ == c10::DeviceType::CUDA) at::autocast::set_enabled(prev_);
    else at::autocast::set_cpu_enabled(prev_);
#endif
    at::autocast::clear_cache();
}

bool autocast_enabled(c10::DeviceType device) {
#if DT_AUTOCAST_BY_DEVICE
    return at::autocast::is_autocast_enabled(device);
#else
    return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

c10::ScalarType autocast_dtype(c10::DeviceType device) {
#if DT_AUTOCAST_BY_DEVICE
    return at::autocast::get_autocast_dtype(device);
#else
    return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

}  // namespace dt
