// Data-parallel process groups on torch.distributed's C++ engine (c10d): the environment torchrun
// sets (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), a TCPStore rendezvous with a
// timeout, and a Gloo group (CPU tensors). See docs/distributed.md.
#pragma once

#include "dist/collective.h"

#include <memory>
#include <optional>
#include <string>

namespace dt {

struct DistEnv {
    int rank = 0, local_rank = 0, world_size = 1;
    std::string master_addr = "127.0.0.1";
    int master_port = 29500;
    double timeout_s = 60;  // rendezvous and every collective; DELTATUNE_DIST_TIMEOUT overrides

    // From the environment; nullopt when WORLD_SIZE is unset (a single process). Throws dt::Error
    // naming the variable that is malformed or inconsistent (RANK >= WORLD_SIZE, a port out of range).
    static std::optional<DistEnv> from_environment();
};

// Whether this build has c10d's Gloo backend (Debian's LibTorch does, with libgloo-dev's headers),
// and its NCCL backend (a CUDA LibTorch with NCCL's headers).
bool have_gloo();
bool have_nccl();

// "gloo" or "nccl": DELTATUNE_DIST_BACKEND if set, else NCCL for a CUDA device where this build has
// it, else Gloo. Throws dt::Error for an unknown or unavailable backend.
std::string choose_backend(const std::string& device);

// Joins the group: rank 0 serves the TCPStore at MASTER_ADDR:MASTER_PORT, the others connect; every
// rank checks that all agree on WORLD_SIZE; then the Gloo group forms. Throws dt::Error naming what
// went wrong (nobody listening at the address, a rank that did not join in time, WORLD_SIZE differing
// between ranks) within the timeout.
std::shared_ptr<Collective> init_process_group(const DistEnv& env, const std::string& backend = "gloo");

}  // namespace dt
