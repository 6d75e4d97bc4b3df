// Loading and saving model folders (config.json + safetensors weights), and the built-in models.
#pragma once

#include "models/model.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dt {

struct LoadReport {
    std::vector<std::string> missing;     // model parameters the checkpoint lacks (left at random init)
    std::vector<std::string> unexpected;  // checkpoint tensors the model has no place for
    std::vector<std::string> converted;   // tensors whose dtype was converted to the model's
    std::uint64_t bytes_read = 0;
    std::string weights_source;
};

struct LoadedModel {
    std::shared_ptr<TransformerModel> model;
    LoadReport report;
    std::string source;  // folder or builtin name
};

struct LoadOptions {
    std::uint64_t seed = 0;  // for random init of missing weights and built-ins
    // Another head on the same base, as transformers' from_pretrained does with a different class
    // (e.g. BertForSequenceClassification from an MLM checkpoint); empty = the config's own.
    std::string architecture;
    std::int64_t num_labels = 0;  // > 0 overrides the config's label count
    // A checkpoint that lacks whole blocks or embeddings its config.json declares is refused (only
    // task heads and poolers may be missing, as transformers initialises a new classifier); true
    // initialises them at random instead, deliberately.
    bool allow_missing_blocks = false;
};

// Names of the built-in models ("tiny-bert", ...), which need no files.
std::vector<std::string> builtin_model_names();
bool is_builtin_model(const std::string& name);
ModelConfig builtin_config(const std::string& name);

// Builds a model for `cfg` with random weights (seeded).
std::shared_ptr<TransformerModel> create_model(const ModelConfig& cfg, std::uint64_t seed = 0);

// A folder with config.json and weights, or a built-in name. Throws dt::Error for bad input.
LoadedModel load_model(const std::string& dir_or_builtin, const LoadOptions& opts = {});

class WeightSet;
// Copies checkpoint tensors into the model, accepting names with or without the base prefix.
// Shape mismatches throw naming the tensor and file.
LoadReport load_weights(TransformerModel& model, const WeightSet& weights);

// All parameters under their canonical names (tied aliases left out): what a checkpoint stores.
std::vector<std::pair<std::string, at::Tensor>> state_tensors(const TransformerModel& model);

// Hugging Face's default shard limit for save_pretrained (max_shard_size="5GB").
constexpr std::uint64_t kDefaultMaxShardBytes = 5'000'000'000ULL;

// "5GB", "500MB", "10KB" (powers of 1000, as transformers reads them), "2GiB", "64MiB" (powers of
// 1024) or a plain byte count. Throws dt::Error naming `field` for anything else.
std::uint64_t parse_byte_size(const std::string& text, const std::string& field);

// Writes config.json and the weights into `dir` (created if needed), each atomically. Weights larger
// than `max_shard_bytes` go into model-0000i-of-0000N.safetensors shards, in parameter order, with
// model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map"}) as transformers writes
// them; a tensor larger than the limit gets a shard of its own.
void save_model(const TransformerModel& model, const std::string& dir, std::uint64_t max_shard_bytes = kDefaultMaxShardBytes);

}  // namespace dt
