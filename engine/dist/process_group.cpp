#include "dist/process_group.h"

#include "core/error.h"
#include "dist/backends.h"  // generated: DT_HAS_GLOO, DT_HAS_NCCL

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>

#if DT_HAS_GLOO || DT_HAS_NCCL
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#if DT_HAS_GLOO
#define USE_C10D_GLOO 1  // the c10d headers hide their Gloo and NCCL classes without these
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if DT_HAS_NCCL
#define USE_C10D_NCCL 1
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace dt {
namespace {

// An integer environment variable; nullopt when unset.
std::optional<long> env_int(const char* name, long lo, long hi) {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(v, &end, 10);
    if (!*v || *end || errno || n < lo || n > hi)
        throw Error("environment variable " + std::string(name) + "='" + v + "' is not an integer from " + std::to_string(lo) + " to " +
                        std::to_string(hi),
                    name);
    return n;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

std::optional<DistEnv> DistEnv::from_environment() {
    const auto world = env_int("WORLD_SIZE", 1, 65536);
    if (!world) {
        if (std::getenv("RANK")) throw Error("RANK is set but WORLD_SIZE is not", "WORLD_SIZE", "set both, as torchrun does");
        return std::nullopt;
    }
    DistEnv e;
    e.world_size = static_cast<int>(*world);
    const auto rank = env_int("RANK", 0, LONG_MAX);
    if (!rank && e.world_size > 1) throw Error("WORLD_SIZE is " + std::to_string(e.world_size) + " but RANK is not set", "RANK");
    e.rank = static_cast<int>(rank.value_or(0));
    if (e.rank >= e.world_size)
        throw Error("RANK " + std::to_string(e.rank) + " is not below WORLD_SIZE " + std::to_string(e.world_size), "RANK",
                    "ranks go from 0 to WORLD_SIZE-1");
    e.local_rank = static_cast<int>(env_int("LOCAL_RANK", 0, 65535).value_or(e.rank));
    if (const char* a = std::getenv("MASTER_ADDR"); a && *a) e.master_addr = a;
    e.master_port = static_cast<int>(env_int("MASTER_PORT", 1, 65535).value_or(29500));
    if (const char* t = std::getenv("DELTATUNE_DIST_TIMEOUT")) {
        char* end = nullptr;
        const double s = std::strtod(t, &end);
        if (!*t || *end || !(s > 0)) throw Error(std::string("DELTATUNE_DIST_TIMEOUT='") + t + "' is not a positive number of seconds", "DELTATUNE_DIST_TIMEOUT");
        e.timeout_s = s;
    }
    return e;
}

bool have_gloo() { return DT_HAS_GLOO != 0; }
bool have_nccl() { return DT_HAS_NCCL != 0; }

namespace {
// Throws dt::Error naming what this build lacks for `b`.
void require_backend(const std::string& b) {
    if (b != "gloo" && b != "nccl") throw Error("unknown backend '" + b + "'", "DELTATUNE_DIST_BACKEND", "gloo or nccl");
    if (b == "nccl" && !have_nccl())
        throw Error("this build has no NCCL backend", "DELTATUNE_DIST_BACKEND", "build against a CUDA LibTorch with NCCL's headers, or use gloo");
    if (b == "gloo" && !have_gloo())
        throw Error("this build has no torch.distributed Gloo backend", "WORLD_SIZE",
                    "build against a LibTorch with c10d and Gloo headers (Debian: install libgloo-dev), or unset WORLD_SIZE");
}
}  // namespace

std::string choose_backend(const std::string& device) {
    const char* forced = std::getenv("DELTATUNE_DIST_BACKEND");
    const std::string b = forced && *forced ? forced : (device.rfind("cuda", 0) == 0 && have_nccl() ? "nccl" : "gloo");
    require_backend(b);
    return b;
}

#if DT_HAS_GLOO || DT_HAS_NCCL

namespace {

// One c10d process group (ProcessGroupGloo or ProcessGroupNCCL: the same collective calls).
template <typename Group>
class C10dCollective : public Collective {
public:
    C10dCollective(const DistEnv& env, c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<Group> pg, std::string backend, c10::Device device)
        : env_(env), store_(std::move(store)), pg_(std::move(pg)), backend_(std::move(backend)), device_(device),
          timeout_(static_cast<long>(env.timeout_s * 1000)) {}
    int rank() const override { return env_.rank; }
    int world_size() const override { return env_.world_size; }
    int local_rank() const override { return env_.local_rank; }
    c10::Device device() const override { return device_; }
    void all_reduce(at::Tensor& t, Op op) override {
        std::vector<at::Tensor> v{t};
        c10d::AllreduceOptions o;
        o.reduceOp = op == Op::Sum ? c10d::ReduceOp::SUM : c10d::ReduceOp::MAX;
        o.timeout = timeout_;
        run("all-reduce", [&] { pg_->allreduce(v, o)->wait(timeout_); });
    }
    std::string describe() const override {
        return backend_ + " rank " + std::to_string(env_.rank) + "/" + std::to_string(env_.world_size) + " at " + env_.master_addr + ":" +
               std::to_string(env_.master_port) + (device_.is_cuda() ? " on " + device_.str() : std::string());
    }

private:
    template <typename F>
    void run(const char* what, F&& f) {
        try {
            f();
        } catch (const std::exception& e) {
            throw Error("rank " + std::to_string(env_.rank) + ": the process group broke during " + what + " (" + first_line(e.what()) + ")",
                        "distributed", "another rank stopped or failed: its message says why");
        }
    }
    DistEnv env_;
    c10::intrusive_ptr<c10d::Store> store_;
    c10::intrusive_ptr<Group> pg_;
    std::string backend_;
    c10::Device device_;
    std::chrono::milliseconds timeout_;
};

}  // namespace

std::shared_ptr<Collective> init_process_group(const DistEnv& env, const std::string& backend) {
    require_backend(backend);
    const auto timeout = std::chrono::milliseconds(static_cast<long>(env.timeout_s * 1000));
    const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
    const std::string secs = std::to_string(static_cast<long>(env.timeout_s)) + " s";
    c10::intrusive_ptr<c10d::Store> store;
    try {
        c10d::TCPStoreOptions o;
        o.port = static_cast<std::uint16_t>(env.master_port);
        o.isServer = env.rank == 0;
        o.numWorkers = static_cast<std::size_t>(env.world_size);
        o.waitWorkers = false;  // who is missing is found below, by name
        o.timeout = timeout;
        store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    } catch (const std::exception& e) {
        if (env.rank == 0)
            throw Error("rank 0 cannot serve the rendezvous at " + where + " (" + first_line(e.what()) + ")", "MASTER_PORT",
                        "choose a free MASTER_PORT");
        throw Error("rank " + std::to_string(env.rank) + " cannot reach the rendezvous at " + where + " within " + secs + " (" +
                        first_line(e.what()) + ")",
                    "MASTER_ADDR/MASTER_PORT", "rank 0 must be running, with the same MASTER_ADDR and MASTER_PORT");
    }
    // Every rank states its WORLD_SIZE; each checks that all ranks joined and agree.
    try {
        const std::string mine = std::to_string(env.world_size);
        store->set("deltatune/world_size/" + std::to_string(env.rank), std::vector<std::uint8_t>(mine.begin(), mine.end()));
        for (int r = 0; r < env.world_size; ++r) {
            const std::string key = "deltatune/world_size/" + std::to_string(r);
            try {
                store->wait({key}, timeout);
            } catch (const std::exception&) {
                throw Error("rank " + std::to_string(r) + " did not join the rendezvous at " + where + " within " + secs + " (this is rank " +
                                std::to_string(env.rank) + " of WORLD_SIZE " + mine + ")",
                            "WORLD_SIZE", "start WORLD_SIZE processes, each with its own RANK, or lower WORLD_SIZE");
            }
            const auto v = store->get(key);
            const std::string theirs(v.begin(), v.end());
            if (theirs != mine)
                throw Error("rank " + std::to_string(r) + " has WORLD_SIZE " + theirs + ", rank " + std::to_string(env.rank) + " has " + mine,
                            "WORLD_SIZE", "give every rank the same WORLD_SIZE");
        }
    } catch (const Error&) {
        throw;
    } catch (const std::exception& e) {
        throw Error("rank " + std::to_string(env.rank) + ": the rendezvous at " + where + " failed (" + first_line(e.what()) + ")", "distributed");
    }
#if DT_HAS_NCCL
    if (backend == "nccl") {
        try {
            c10::cuda::set_device(static_cast<c10::DeviceIndex>(env.local_rank));
            auto opts = c10d::ProcessGroupNCCL::Options::create();
            opts->timeout = timeout;
            auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, opts);
            return std::make_shared<C10dCollective<c10d::ProcessGroupNCCL>>(env, store, pg, "nccl",
                                                                              c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank)));
        } catch (const std::exception& e) {
            throw Error("rank " + std::to_string(env.rank) + " cannot form the NCCL group on cuda:" + std::to_string(env.local_rank) + " (" +
                            first_line(e.what()) + ")",
                        "distributed", "each rank needs its own GPU: LOCAL_RANK below the visible device count");
        }
    }
#endif
#if DT_HAS_GLOO
    try {
        auto opts = c10d::ProcessGroupGloo::Options::create();
        opts->timeout = timeout;
        const bool loopback = env.master_addr == "127.0.0.1" || env.master_addr == "localhost";
        if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
            opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        else if (loopback)
            opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        else
            opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, opts);
        return std::make_shared<C10dCollective<c10d::ProcessGroupGloo>>(env, store, pg, "gloo", c10::Device(c10::kCPU));
    } catch (const std::exception& e) {
        throw Error("rank " + std::to_string(env.rank) + " cannot form the Gloo group (" + first_line(e.what()) + ")", "distributed",
                    "every rank must reach every other; on several machines set GLOO_SOCKET_IFNAME to the network interface");
    }
#endif
    throw Error("no backend '" + backend + "' in this build", "DELTATUNE_DIST_BACKEND");
}

#else

std::shared_ptr<Collective> init_process_group(const DistEnv&, const std::string& backend) {
    require_backend(backend);  // throws, naming what is missing
    throw Error("no torch.distributed backend in this build", "WORLD_SIZE");
}

#endif

}  // namespace dt
