// Each run's own random numbers. Dropout (LibTorch's, the methods' branch and module dropout) draws
// from the default CPU generator; two trainings in one process (the workbench's Training and
// Transfer tabs, the Compare tab's methods) would change each other's masks. A RunRng holds one
// run's generator state; while a Scope is alive, the default generator holds that state and other
// runs' scopes wait, so each run's masks depend on its own seed and steps alone, whatever runs
// beside it. The state is what checkpoints save. (CUDA tensors draw from the device's generator,
// which this does not swap: a run on CUDA seeds it at its start, and its checkpoints save and restore
// that generator's state as rng.torch_cuda.)
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <mutex>

namespace dt {

class RunRng {
public:
    explicit RunRng(std::uint64_t seed);
    at::Tensor state() const { return state_; }  // the CPU generator's state, as get_state() gives it
    void set_state(const at::Tensor& s);

    class Scope {
    public:
        explicit Scope(RunRng& rng);
        ~Scope();
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        RunRng& rng_;
        std::unique_lock<std::recursive_mutex> lock_;
        at::Tensor saved_;  // the default generator's state before the scope
    };

private:
    at::Tensor state_;
};

}  // namespace dt
