// The collective operations data-parallel training needs, as the trainer sees them: this process's
// rank in a group of world_size processes, and an in-place all-reduce. The implementation is
// torch.distributed's own C++ engine, c10d (dist/process_group.h: a TCPStore rendezvous, then a Gloo
// group on CPU or an NCCL group on CUDA); the trainer knows only this interface.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>

namespace dt {

class Collective {
public:
    enum class Op { Sum, Max };
    virtual ~Collective() = default;
    virtual int rank() const = 0;
    virtual int world_size() const = 0;
    virtual int local_rank() const = 0;
    // Where the tensors given to the collectives must live: the CPU for Gloo, this rank's GPU for NCCL.
    virtual c10::Device device() const = 0;
    // Every rank calls it with a tensor of the same shape and dtype (CPU, or the group's device); on
    // return each holds the reduction. Throws dt::Error naming the rank when the group broke (a peer
    // died, a timeout).
    virtual void all_reduce(at::Tensor& t, Op op) = 0;
    // "backend rank/world at host:port", for messages and events.
    virtual std::string describe() const = 0;
};

}  // namespace dt
