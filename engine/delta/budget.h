// The parameter budget of a delta spec on a model, for the workbench's budget label, the Trainable
// column of the module tree and the per-layer chart: the spec is applied, measured and removed, so
// the GUI never touches tensors.
#pragma once

#include "delta/delta_set.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dt {

class ModuleTree;

struct Budget {
    Accounting accounting;
    std::vector<std::int64_t> per_node;  // trainable parameters in each tree node's subtree (tree order)
    // The chart: one row per method (then "modules_to_save" for trained parameters no method claims),
    // one column per layer 0..L-1 and a last column for parameters in no layer.
    std::vector<std::string> columns;  // "0", "1", ..., "other"
    std::vector<std::string> rows;
    std::vector<std::vector<double>> counts;
    std::int64_t activation_bytes = 0;  // for activation_batch x activation_tokens tokens in fp32
    std::int64_t activation_batch = 0, activation_tokens = 0;  // 16 x (128 + virtual_tokens)
    std::int64_t virtual_tokens = 0;    // soft prompt tokens the methods add to each sequence
};

// Applies `spec` to `model`, measures it, and removes it again (the model is left as it was).
// Throws dt::Error for a spec that does not apply, naming the field.
Budget budget(TransformerModel& model, const ModuleTree& tree, const DeltaSpec& spec);

}  // namespace dt
