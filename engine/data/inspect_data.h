// The dataset inspector: what a run spec's task turns into before training. Each example's text as
// the model reads it (the template rendered, decoded from its ids), its tokens with the positions
// the loss scores, its label; the token-length distribution with the number of examples cut at
// max_length; the label distribution; and the lines that leave nothing to train on (reported by
// the readers as bad lines, here collected instead of stopping at the first).
#pragma once

#include "train/run_spec.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dt {

struct InspectedExample {
    std::string text;                 // decoded from the ids, special tokens kept
    std::vector<std::string> tokens;  // one per id
    std::vector<bool> scored;         // the positions the loss reads (the mask, [CLS] for a head, the response)
    std::string label;                // class name, regression target, or the text-to-text target
    bool truncated = false;
};

struct DataReport {
    std::string file;
    std::size_t examples = 0, max_length = 0, truncated = 0;
    std::vector<std::size_t> lengths;  // tokens per example before truncation
    std::vector<std::pair<std::string, std::size_t>> label_counts;  // classification: per class
    std::vector<InspectedExample> rows;  // the first max_rows examples
    std::size_t skipped = 0;                   // lines with nothing to train on, or malformed
    std::vector<std::string> problems;         // the first few, "file:line: what"
    std::string scoring;                       // how the loss scores an example, in words
};

// Reads the spec's training file with its tokenizer (no model is loaded). Throws dt::Error naming
// the file for what stops reading altogether (a missing file, no usable example).
DataReport inspect_task_data(RunSpec spec, std::size_t max_rows = 50);

// Bins of equal width over 0..max(lengths, max_length) (at least one bin); counts per bin.
std::vector<std::size_t> length_histogram(const std::vector<std::size_t>& lengths, std::size_t max_length, std::size_t bins,
                                          std::size_t* bin_width);

}  // namespace dt
