// Exporting a trained run (its spec.json and a checkpoint) as a PEFT adapter folder, DeltaTune's
// delta folder, or a merged Hugging Face model folder: what `deltatune export` and the workbench's
// File > Export Delta do. Every format is staged beside the destination and renamed into place.
#pragma once

#include "models/loader.h"

#include <cstdint>
#include <string>

namespace dt {

// format: "peft" | "deltatune" | "merged". checkpoint: a folder name under run_dir/checkpoints
// (empty: "final", else the latest). Returns the checkpoint name used. Throws dt::Error naming the
// run, the checkpoint or the destination (an existing destination of a merged export is refused).
std::string export_run(const std::string& run_dir, const std::string& format, const std::string& out_dir,
                       const std::string& checkpoint = {}, std::uint64_t max_shard_bytes = kDefaultMaxShardBytes);

}  // namespace dt
