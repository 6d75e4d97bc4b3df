// DeltaTune's own delta format, for every method and combination (what PEFT cannot hold: adapters,
// BitFit, LayerNorm, last-layer, selective, combined methods): a folder with delta.safetensors (every
// trainable tensor under its model name) and delta_config.json (format version, the delta spec, the
// base model's architecture, sizes and a fingerprint of its weights). Documented in docs/delta-format.md.
#pragma once

#include "delta/delta_set.h"

#include <cstdint>
#include <string>

namespace dt {

class TransformerModel;

// FNV-1a 64 over the name and float32 bytes of every parameter that is frozen now (canonical names,
// sorted): identifies the base a delta was trained on, whatever the delta itself trained.
std::string frozen_fingerprint(const TransformerModel& model);

void export_deltatune(TransformerModel& model, const DeltaSet& deltas, const std::string& out_dir, const std::string& base_name);

bool is_deltatune_folder(const std::string& dir);

struct DeltaImport {
    DeltaSet deltas;
    bool fingerprint_matches = true;
    std::string warning;  // set when the base differs from the one the delta was trained on
};
// Checks architecture and every tensor's shape before changing anything. A fingerprint mismatch is a
// warning (or an error unless allow_other_base).
DeltaImport import_deltatune(TransformerModel& model, const std::string& dir, bool allow_other_base = true);

// An exported delta folder of either format: PEFT's (adapter_config.json) or DeltaTune's
// (delta_config.json). False for anything else, such as a spec file or a method name.
bool is_exported_delta(const std::string& dir);
// Attaches the exported delta in `dir` to `model` with its trained values, its parameters trainable
// again (so training can continue from it). Throws dt::Error naming the file and tensor, the model
// unchanged, when the folder does not fit the model.
DeltaImport import_exported_delta(TransformerModel& model, const std::string& dir);

}  // namespace dt
