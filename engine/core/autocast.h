// Autocast of the forward pass on this thread (autocast state is thread-local): bf16 on CPU; bf16 or
// fp16 on CUDA. "fp32" does nothing. The previous state comes back when the scope ends.
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace dt {

class AutocastScope {
public:
    AutocastScope(const std::string& precision, c10::DeviceType device);
    ~AutocastScope();
    AutocastScope(const AutocastScope&) = delete;
    AutocastScope& operator=(const AutocastScope&) = delete;

private:
    bool on_;
    c10::DeviceType device_;
    bool prev_ = false;
};

// Whether autocast is on for `device` on this thread.
bool autocast_enabled(c10::DeviceType device);
// The type autocast computes in on `device` (bf16 on CPU by default).
c10::ScalarType autocast_dtype(c10::DeviceType device);

}  // namespace dt
