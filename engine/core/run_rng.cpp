#include "core/run_rng.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>

namespace dt {
namespace {

std::recursive_mutex& default_generator_owner() {
    static std::recursive_mutex m;  // held by the thread whose run's state is in the default generator
    return m;
}

at::Tensor get_default_state() {
    at::Generator g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    return g.get_state();
}

void set_default_state(const at::Tensor& s) {
    at::Generator g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(s);
}

}  // namespace

RunRng::RunRng(std::uint64_t seed) {
    at::Generator g = at::detail::createCPUGenerator(seed);  // as torch::manual_seed(seed) seeds the CPU
    std::lock_guard<std::mutex> lock(g.mutex());
    state_ = g.get_state();
}

void RunRng::set_state(const at::Tensor& s) { state_ = s.clone(); }

RunRng::Scope::Scope(RunRng& rng) : rng_(rng), lock_(default_generator_owner()) {
    saved_ = get_default_state();
    set_default_state(rng_.state_);
}

RunRng::Scope::~Scope() {
    rng_.state_ = get_default_state();
    set_default_state(saved_);
}

}  // namespace dt
