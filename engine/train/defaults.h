// The training defaults, in one struct: TrainConfig starts from it, and the workbench's controls, the
// experiment tabs, run specs built by the run builder and `deltatune bench` read it. The learning rate
// is the one docs/demo.md measures the built-in demo with (LoRA, 300-400 steps).
#pragma once

#include <algorithm>
#include <cstdint>

namespace dt {

struct TrainingDefaults {
    static constexpr std::int64_t max_steps = 300;
    static constexpr std::int64_t batch_size = 16;
    static constexpr double lr = 5e-3;
    static constexpr double weight_decay = 0.01;
    static constexpr double warmup_ratio = 0.06;
    static constexpr std::int64_t transfer_steps = 400;  // per task delta of a transfer matrix
    static constexpr std::int64_t evaluations = 10;      // evaluations per run when eval_every is not given
    static constexpr std::int64_t checkpoints = 10;      // periodic checkpoints per run when checkpoint_every is not given

    static std::int64_t eval_every(std::int64_t steps) { return std::max<std::int64_t>(1, steps / evaluations); }
    static std::int64_t checkpoint_every(std::int64_t steps) { return std::max<std::int64_t>(1, steps / checkpoints); }
};

}  // namespace dt
