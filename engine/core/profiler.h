// Where a training step's time goes, measured from LibTorch's own operator hooks (RecordFunction):
// the self time of every operator, by phase (forward, backward, optimizer) and by model region.
// Regions are marked in the model code with DT_PROFILE_REGION ("attention", "delta", "head",
// "loss", "embeddings"); a backward operator is charged to the region of the forward operator that
// created it (matched by autograd sequence number). Everything else is "layers" (the frozen
// projections, feed-forward and norms). Without an OpProfiler alive the markers cost one check.
#pragma once

#include <ATen/record_function.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

// Marks the rest of the enclosing C++ scope as a model region for the profiler.
#define DT_PROFILE_REGION(name) RECORD_USER_SCOPE(name)

namespace dt {

class OpProfiler {
public:
    enum class Phase { Forward, Backward, Optimizer, Other };
    OpProfiler();   // starts recording (one profiler at a time; a second one throws dt::Error)
    ~OpProfiler();  // stops
    OpProfiler(const OpProfiler&) = delete;
    OpProfiler& operator=(const OpProfiler&) = delete;

    void set_phase(Phase p);
    // Wall time of a phase, measured by the caller around it (the operators' self times add up to
    // less: the gap is dispatch and framework overhead outside any operator).
    void add_wall(Phase p, double seconds);

    struct Cell {
        double seconds = 0;
        std::int64_t calls = 0;
    };
    struct Report {
        std::map<Phase, double> wall;                                  // seconds
        std::map<std::pair<Phase, std::string>, Cell> by_op;          // self time per operator
        std::map<std::pair<Phase, std::string>, Cell> by_region;      // self time per region
    };
    Report report() const;
    // A table per step: phases, regions (forward / backward), operator classes and the top operators.
    static std::string format(const Report& r, int steps);
    // The class of an operator name: matmul, attention-softmax, norm, activation, dropout,
    // embedding, copy, elementwise, reduction, loss, optimizer or other.
    static std::string op_class(const std::string& op);

    struct State;

private:
    std::shared_ptr<State> state_;
    std::uint64_t handle_ = 0;
};

}  // namespace dt
