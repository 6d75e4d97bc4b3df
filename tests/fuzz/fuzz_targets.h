// The fuzz targets: one per parser of untrusted input (see tests/fuzz/README.md). Each target takes
// one input, writes it where the parser reads it (a file or a folder of files), and runs the parser
// the way the CLI and the workbench do. A dt::Error is the expected refusal of bad input; any other
// exception, a crash, a sanitizer report, an allocation over the limit or a hang is a finding.
//
// The same code runs in two builds: under libFuzzer (fuzz_main.cpp, preset `fuzz`) and in the test
// suite (TestFuzzCorpus), which replays every target's seed corpus and every saved finding
// (tests/fuzz/regressions/TARGET/*).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dt::fuzz {

// A target reading several files takes them as parts of one input, in a fixed order, separated by
// this line (e.g. config.json, then model.safetensors).
inline constexpr char kSeparator[] = "\n--8<--\n";
std::vector<std::string> split_parts(const std::uint8_t* data, std::size_t size, std::size_t max_parts);
std::string join_parts(const std::vector<std::string>& parts);

struct Target {
    const char* name;
    const char* reads;  // what the parts are, for the README and --help
    void (*run)(const std::string& input);
    std::vector<std::string> (*seeds)();  // the seed corpus, built from tests/data and resources/demo
};

const std::vector<Target>& targets();
const Target* find_target(const std::string& name);

// Runs one input. Returns 1 when the target refused it with a dt::Error (a clear message), 0 when it
// was accepted; everything else escapes to the caller (libFuzzer reports it as a finding).
int run_one(const Target& t, const std::uint8_t* data, std::size_t size);

// Where the test data lives (tests/data and resources/demo of the source tree).
std::string source_dir();

}  // namespace dt::fuzz
