// libFuzzer entry point of one target: DT_FUZZ_TARGET names it (see fuzz_targets.h).
#include "fuzz_targets.h"

#include <cstdio>
#include <cstdlib>

namespace {
const dt::fuzz::Target& target() {
    static const dt::fuzz::Target* t = dt::fuzz::find_target(DT_FUZZ_TARGET);
    if (!t) {
        std::fprintf(stderr, "no fuzz target named %s\n", DT_FUZZ_TARGET);
        std::abort();
    }
    return *t;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)target();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    dt::fuzz::run_one(target(), data, size);
    return 0;
}
