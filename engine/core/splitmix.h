// splitmix64: a tiny, portable 64-bit mixer. splitmix64(x) is the generator's output for state x;
// used as a stateless hash (masked-LM masking) and as the demo language's PRNG.
#pragma once

#include <cstdint>

namespace dt {

constexpr std::uint64_t kSplitmixGamma = 0x9E3779B97F4A7C15ull;

inline std::uint64_t splitmix64(std::uint64_t x) {
    std::uint64_t z = x + kSplitmixGamma;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

}  // namespace dt
