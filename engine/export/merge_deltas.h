// Delta merging (PEFT's add_weighted_adapter): several exported deltas for one base become one.
// LoRA sources combine by `combination`:
//   linear        A = Σ √w_i s_i A_i, B = Σ √w_i B_i (peft 0.7.1: BA has cross terms B_i A_j)
//   cat           A = [w_i s_i A_i] stacked, B = [B_i] side by side: exactly Σ w_i s_i B_i A_i, rank Σ r_i
//   svd           ΔW = Σ w_i s_i B_i A_i truncated by SVD to svd_rank (default: the largest source rank)
//   ties, dare_linear, dare_ties, magnitude_prune
//                 on the A's and on the B's separately with weights √(w_i s_i) (peft >= 0.9):
//                 TIES keeps each tensor's top density·numel entries by magnitude, elects a sign per
//                 entry (sum or count of the pruned tensors' signs) and averages the agreeing
//                 weighted entries; DARE keeps each entry with probability density (seeded) and
//                 rescales by 1/density; magnitude_prune is TIES' pruning then a weighted sum.
// The result has r = lora_alpha = its rank (scaling 1) and targets the union of the sources'
// modules; a module only some sources adapt is combined from those. IA3 and prompt-table sources
// (prompt, folded P-tuning and prefix) combine linearly: Σ w_i t_i, and need the same targets.
#pragma once

#include "delta/delta_set.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dt {

class TransformerModel;

struct MergeOptions {
    std::vector<std::string> sources;  // exported delta folders (PEFT or DeltaTune) or run folders
    std::vector<double> weights;       // one per source
    std::string combination = "linear";
    double density = 1.0;              // ties, dare_*, magnitude_prune
    std::int64_t svd_rank = 0;         // svd: 0 = the largest source rank
    std::string majority_sign = "total";  // ties, dare_ties: total | frequency
    std::uint64_t seed = 0;            // dare_*
};

// Merges the sources onto `model` (their base) and leaves the merged delta attached, returned, so it
// can be evaluated or exported. Throws dt::Error naming the source and field on bad input; the model
// is left without deltas then.
DeltaSet merge_deltas(TransformerModel& model, const MergeOptions& options);

}  // namespace dt
