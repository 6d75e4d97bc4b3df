// deltatune-fuzz-seeds TARGET DIR: writes TARGET's seed corpus into DIR (one file per seed), built
// from tests/data and resources/demo with the engine itself. tools/fuzz.sh calls it.
#include "fuzz_targets.h"

#include <cstdio>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
    if (argc != 3 || !dt::fuzz::find_target(argv[1])) {
        std::fprintf(stderr, "usage: deltatune-fuzz-seeds TARGET DIR\ntargets:\n");
        for (const auto& t : dt::fuzz::targets()) std::fprintf(stderr, "  %-14s %s\n", t.name, t.reads);
        return 2;
    }
    const auto seeds = dt::fuzz::find_target(argv[1])->seeds();
    for (std::size_t i = 0; i < seeds.size(); ++i) {
        std::ofstream out(std::string(argv[2]) + "/seed-" + std::to_string(i), std::ios::binary);
        out.write(seeds[i].data(), static_cast<std::streamsize>(seeds[i].size()));
    }
    std::printf("%s: %zu seeds\n", argv[1], seeds.size());
    return 0;
}
