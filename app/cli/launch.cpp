// `deltatune train|resume ... --nproc N`: starts N local worker processes, as torchrun does. Each gets
// RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT, and --threads (the
// cores split between them unless given). Their output comes back line by line, prefixed with the
// rank ("[rank 1] "), except rank 0's standard output, which passes through unchanged (its --json
// events). Ctrl+C is passed on (the ranks stop together after the step and write a checkpoint); when
// one worker fails, the others are stopped within seconds and the error names the rank and cause.
#include "cli.h"

#include "core/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace dt::cli {
namespace {

std::atomic<int> g_signal{0};
extern "C" void on_launcher_signal(int s) { g_signal = s; }

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw Error("cannot open a socket to find a free port", "--nproc");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        throw Error("cannot find a free port on 127.0.0.1", "--nproc", "set MASTER_PORT");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

std::mutex g_out;

// Copies a worker's pipe to `to`, a line at a time, each with `prefix`.
void forward_lines(int fd, std::FILE* to, const std::string& prefix) {
    std::string line;
    char buf[4096];
    auto flush_line = [&] {
        std::lock_guard<std::mutex> lock(g_out);
        std::fputs(prefix.c_str(), to);
        std::fputs(line.c_str(), to);
        std::fflush(to);
        line.clear();
    };
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; ++i) {
            line.push_back(buf[i]);
            if (buf[i] == '\n') flush_line();
        }
    }
    if (!line.empty()) {
        line.push_back('\n');
        flush_line();
    }
    ::close(fd);
}

std::string describe_status(int status) {
    if (WIFSIGNALED(status)) {
        const int s = WTERMSIG(status);
        return "was killed by signal " + std::to_string(s) + " (" + strsignal(s) + ")";
    }
    return "exited with status " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

int launch_workers(int nproc, const std::vector<std::string>& command, int threads) {
    if (nproc < 1 || nproc > 256) throw Error("must be from 1 to 256", "--nproc");
    if (std::getenv("WORLD_SIZE")) throw Error("WORLD_SIZE is already set: this process is a worker", "--nproc", "drop --nproc inside torchrun or SLURM");
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (threads <= 0) threads = std::max(1, cores / nproc);
    const int port = std::getenv("MASTER_PORT") ? std::atoi(std::getenv("MASTER_PORT")) : free_port();
    const std::string addr = std::getenv("MASTER_ADDR") ? std::getenv("MASTER_ADDR") : "127.0.0.1";
    std::vector<pid_t> pids(static_cast<std::size_t>(nproc), -1);
    std::vector<std::thread> readers;
    auto old_int = std::signal(SIGINT, on_launcher_signal);
    auto old_term = std::signal(SIGTERM, on_launcher_signal);
    for (int r = 0; r < nproc; ++r) {
        std::vector<std::string> env;
        for (char** e = environ; *e; ++e) env.emplace_back(*e);
        for (const auto& kv : {std::pair<std::string, std::string>{"RANK", std::to_string(r)},
                               {"LOCAL_RANK", std::to_string(r)},
                               {"WORLD_SIZE", std::to_string(nproc)},
                               {"MASTER_ADDR", addr},
                               {"MASTER_PORT", std::to_string(port)}})
            env.push_back(kv.first + "=" + kv.second);
        std::vector<std::string> args = {"/proc/self/exe", "--threads", std::to_string(threads)};
        args.insert(args.end(), command.begin(), command.end());
        std::vector<char*> argv, envp;
        for (auto& s : args) argv.push_back(s.data());
        argv.push_back(nullptr);
        for (auto& s : env) envp.push_back(s.data());
        envp.push_back(nullptr);
        int out[2], err[2];
        if (::pipe(out) != 0 || ::pipe(err) != 0) throw Error("cannot create pipes for the workers", "--nproc");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        posix_spawn_file_actions_addclose(&fa, err[0]);
        pid_t pid = -1;
        const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&fa);
        ::close(out[1]);
        ::close(err[1]);
        if (rc != 0) {
            for (pid_t p : pids)
                if (p > 0) ::kill(p, SIGKILL);
            throw Error("cannot start worker " + std::to_string(r) + " (" + std::strerror(rc) + ")", "--nproc");
        }
        pids[static_cast<std::size_t>(r)] = pid;
        const std::string prefix = "[rank " + std::to_string(r) + "] ";
        readers.emplace_back(forward_lines, out[0], stdout, r == 0 ? std::string() : prefix);
        readers.emplace_back(forward_lines, err[0], stderr, prefix);
    }
    {
        std::lock_guard<std::mutex> lock(g_out);
        std::fprintf(stderr, "[launcher] %d workers at %s:%d, %d thread(s) each; pids", nproc, addr.c_str(), port, threads);
        for (pid_t p : pids) std::fprintf(stderr, " %d", static_cast<int>(p));
        std::fprintf(stderr, "\n");
    }
    int running = nproc, exit_code = 0, forwarded = 0;
    std::string failure;
    auto stop_at = std::chrono::steady_clock::time_point::max();
    bool killed = false, failure_by_kill = false;
    while (running > 0) {
        // Every worker that ended since the last look, judged against the state before any was handled.
        const bool stopping = stop_at != std::chrono::steady_clock::time_point::max();
        bool any_bad = false;
        for (;;) {
            int status = 0;
            const pid_t p = ::waitpid(-1, &status, WNOHANG);
            if (p <= 0) break;
            int rank = -1;
            for (int r = 0; r < nproc; ++r)
                if (pids[static_cast<std::size_t>(r)] == p) rank = r;
            if (rank < 0) continue;
            pids[static_cast<std::size_t>(rank)] = -1;
            --running;
            const bool bad = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
            any_bad = any_bad || bad;
            // The first failure is the cause. A worker killed from outside (before the launcher
            // stopped anyone) beats the errors its death causes in the others at the same moment.
            const bool outside_kill = WIFSIGNALED(status) && !stopping && !g_signal;
            if (bad && (failure.empty() || (outside_kill && !failure_by_kill))) {
                failure = "rank " + std::to_string(rank) + " " + describe_status(status);
                exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
                failure_by_kill = outside_kill;
            }
        }
        if (any_bad && !stopping) {
            for (pid_t q : pids)
                if (q > 0) ::kill(q, SIGTERM);
            stop_at = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        }
        if (g_signal && forwarded != g_signal) {  // Ctrl+C: every rank stops after its step
            forwarded = g_signal;
            for (pid_t q : pids)
                if (q > 0) ::kill(q, g_signal == SIGINT ? SIGINT : SIGTERM);
            if (stop_at == std::chrono::steady_clock::time_point::max()) stop_at = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        }
        if (!killed && std::chrono::steady_clock::now() > stop_at) {
            for (pid_t q : pids)
                if (q > 0) ::kill(q, SIGKILL);
            killed = true;
        }
        if (running > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (auto& t : readers) t.join();
    std::signal(SIGINT, old_int);
    std::signal(SIGTERM, old_term);
    if (!failure.empty()) {
        std::fprintf(stderr, "error: %s; the other ranks were stopped\n", failure.c_str());
        return exit_code == 0 ? 1 : exit_code;
    }
    return 0;
}

}  // namespace dt::cli
