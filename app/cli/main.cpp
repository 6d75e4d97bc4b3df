// The `deltatune` command line: headless access to the engine (inspect, select, forward, init,
// bench). Qt-free, so it also builds on a GPU server. Bad input exits 2 with one line on stderr.
#include "cli.h"

#include "core/error.h"
#include "core/torch_logging.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    dt::quiet_torch_logging();
    try {
        return dt::cli::run(args);
    } catch (const dt::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    } catch (const c10::Error& e) {
        std::fprintf(stderr, "internal error: %s\n", e.what_without_backtrace());
        return 3;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "internal error: %s\n", e.what());
        return 3;
    }
}
