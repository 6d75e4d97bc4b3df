// The limits DeltaTune puts on what it reads, in one place (docs/limits.md lists them). Each is far
// above any real model, tokenizer or dataset, and is checked before the memory it bounds is
// allocated; a file over a limit is refused with a dt::Error naming the file, the limit's name and
// its value, never an allocation that ends in the OOM killer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>

namespace dt::limits {

// safetensors: the header's JSON (the reference implementation's own limit), tensors per file,
// dimensions per tensor.
constexpr std::uint64_t kSafetensorsHeaderBytes = 100'000'000;
constexpr std::size_t kTensorsPerFile = 1'000'000;
constexpr std::size_t kTensorRank = 16;
// Shard files a model.safetensors.index.json may name.
constexpr std::size_t kShardFiles = 100'000;
// A JSON file read whole: config.json, tokenizer.json, task.json, run and delta specs, adapter configs.
constexpr std::uint64_t kJsonFileBytes = 256ull << 20;
// Nesting depth of any JSON document DeltaTune parses strictly.
constexpr std::size_t kJsonDepth = 256;
// tokenizer.json: vocabulary entries, BPE merges, added tokens.
constexpr std::size_t kVocabEntries = 16'000'000;
constexpr std::size_t kMerges = 16'000'000;
constexpr std::size_t kAddedTokens = 1'000'000;
// One line of a JSONL, CSV or TSV dataset (a CSV record with quoted newlines counts as one), of a
// corpus file, or of events.jsonl.
constexpr std::size_t kLineBytes = 64ull << 20;
// config.json: a model's size fields (hidden size, layers, heads, vocabulary, positions).
constexpr std::int64_t kConfigDimension = 1ll << 24;
constexpr std::int64_t kConfigLayers = 100'000;

// The reference to cite in an error: "limits.line_bytes = 67108864, see docs/limits.md".
std::string describe(const char* name, std::uint64_t value);

// std::getline with kLineBytes: a longer line throws dt::Error naming `where` and the line number
// (1-based, the line being read) instead of growing a string without bound. Returns false at the end.
bool getline_limited(std::istream& in, std::string& line, const std::string& where, std::size_t lineno);

}  // namespace dt::limits
