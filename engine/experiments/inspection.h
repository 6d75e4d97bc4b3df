// Delta inspection: how far each module's delta has moved, and where the gradients are, as a
// layer-by-module grid (the Experiments tab's live heatmap and `deltatune inspect-delta`).
//
// Delta magnitude per module:
//  - a Linear with LoRA / DoRA / IA3 branches: ||dW||_F / ||W||_F, where dW is the change of the
//    module's effective linear map (what merging would add to W), measured by probing the module
//    with the identity, so every branch type is covered the same way;
//  - every other trainable tensor (adapters, BitFit biases, LayerNorms, selected or full modules,
//    prefixes, prompts, heads): sqrt(sum ||t - t0||^2) / sqrt(sum ||p0||^2), the first sum over the
//    module's trained tensors (t0: their value when training started), the second over all of the
//    module's parameters at the start, frozen ones included (so a BitFit bias is measured against
//    its whole Linear); the change itself when that is zero.
#pragma once

#include "experiments/experiments.h"

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace dt {

class DeltaSet;
class TransformerModel;

struct NamedValue {
    std::string name;
    double value = 0;
};

// The trainable tensors now (copies): the reference point for delta_magnitudes().
std::map<std::string, at::Tensor> snapshot_trainable(const TransformerModel& model);

// Per module, in model order. `initial` comes from snapshot_trainable() before training (or from a
// fresh application of the same delta spec, whose initialisation is seeded). Methods merged into
// the base weights are skipped (their change is inside W).
std::vector<NamedValue> delta_magnitudes(TransformerModel& model, const DeltaSet& deltas,
                                         const std::map<std::string, at::Tensor>& initial);

// The module a parameter or module name belongs to, split into its block number (-1 outside the
// repeated blocks) and its path inside the block with the delta's own parts removed:
// "bert.encoder.layer.3.attention.self.query.lora_B.weight" -> (3, "attention.self.query"),
// "bert.encoder.layer.0.output.adapter.up.bias" -> (0, "output.adapter"),
// "prefix_encoder.embedding.weight" -> (-1, "prefix_encoder").
std::pair<int, std::string> layer_and_module(const std::string& name);

// Rows "layer 0" .. "layer L-1" (and "other" when a value lies outside the blocks), one column per
// module path, in first-seen order; values landing in one cell combine as the root of their sum of
// squares; cells without a value stay empty (NaN). kind: "delta_magnitude" | "grad_norm".
ResultMatrix layer_module_grid(const std::vector<NamedValue>& values, std::int64_t num_layers, const std::string& kind,
                               const std::string& metric);

// A trained run's delta against its starting point (the same spec applied afresh, whose
// initialisation is seeded): delta_magnitudes as a layer-by-module grid. `checkpoint_dir` is one of
// the run's checkpoints/<name> names (empty: final, else the latest).
ResultMatrix inspect_run_delta(const std::string& run_dir, const std::string& checkpoint);

}  // namespace dt
