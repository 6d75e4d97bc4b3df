// Task data as token ids: examples, a JSONL reader for pre-tokenized files, and batching with dynamic
// padding. (Text files go through the tokenizers of a later issue and end here too.)
#pragma once

#include "models/model.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dt {
namespace tok {
class Tokenizer;
}

struct Example {
    std::vector<std::int64_t> ids;
    std::vector<std::int64_t> type_ids;  // empty = all zeros
    std::int64_t label = -1;             // class index, or -1 for regression
    double target = 0.0;                 // regression target
    std::int64_t mask_pos = -1;          // label-word formulation: where the mask token is
    std::vector<std::int64_t> lm_labels; // causal LM: the token to predict at each position, -100 = not scored
    std::vector<std::int64_t> target_ids; // text-to-text (seq2seq): the decoder's target, EOS included
};

// Everything about a dataset except its examples: copying this part gives an empty dataset of
// the same kind (how split_dataset makes its halves).
struct DatasetInfo {
    std::vector<std::string> labels;  // label vocabulary (index = class)
    std::string source;
    bool regression = false;  // targets instead of class labels
    // Label-word formulation (verbalizer): class k is scored by the LM head's logit for
    // label_word_ids[k] at the example's mask position. Empty: a classification head is used.
    std::vector<std::int64_t> label_word_ids;
    bool causal_lm = false;  // next-token loss on lm_labels (the response), perplexity
    // Text-to-text for encoder-decoders: the loss on target_ids (fed as labels, shifted right into the
    // decoder), and evaluation by greedy generation decoded with `tokenizer` (exact match, F1, ROUGE-L).
    bool seq2seq = false;
    std::shared_ptr<const tok::Tokenizer> tokenizer;
    // Classification as text-to-text (seq2seq): class k's target word; the generated text is the
    // class whose word it equals (after SQuAD normalisation), and accuracy is reported.
    std::vector<std::string> target_words;
    std::vector<std::vector<std::int64_t>> target_word_ids;  // class k's target (word and EOS), for rank_accuracy
    // Masked-LM pretraining: every batch masks `mlm_probability` of its regular tokens (ids >=
    // mlm_first_regular_id): 80% become mask_token_id, 10% a random regular token, 10% stay; the
    // loss is on those positions. See mask_batch().
    bool masked_lm = false;
    double mlm_probability = 0.15;
    std::int64_t mask_token_id = -1, mlm_first_regular_id = 0, mlm_vocab_size = 0;
    // Span corruption (T5's pretraining objective, with seq2seq): each example holds plain text ids;
    // every batch replaces `noise_density` of them, in spans of mean length `mean_span`, by
    // `sentinel_id` in the input, and the target lists the sentinel and the span's tokens for each
    // span, then `eos_id`. See span_corruption_batch().
    bool span_corruption = false;
    double noise_density = 0.15, mean_span = 3.0;
    std::int64_t sentinel_id = -1, eos_id = -1;
};

struct Dataset : DatasetInfo {
    std::vector<Example> examples;
    std::size_t size() const { return examples.size(); }
};

// One object per line: {"input_ids": [...], "token_type_ids": [...]?, "label": int | string}.
// String labels are mapped through `labels` (extended when `grow_labels`). Errors name file and line.
Dataset read_tokenized_jsonl(const std::string& path, std::vector<std::string> labels = {}, bool grow_labels = true);

struct Batch {
    ForwardInputs inputs;
    at::Tensor labels;   // (B) int64 for classification
    at::Tensor targets;  // (B) float for regression
    at::Tensor mask_pos; // (B) int64, label-word formulation
    at::Tensor lm_labels;  // (B, T) int64, -100 where not scored (causal LM); seq2seq: (B, U) the targets
    std::int64_t tokens = 0;
};

// Masks a masked-LM batch in place and fills lm_labels (-100 where nothing is predicted). The choice
// at each position is a hash of (key, example index, column), with indices[r] the example in row r,
// so a resumed run or a repeated evaluation masks exactly the same tokens without any RNG state, and
// an example is masked the same whichever row or rank it lands in (data parallelism splits a batch).
void mask_batch(Batch& b, const Dataset& data, std::uint64_t key, const std::vector<std::size_t>& indices);

// Span corruption of the examples at `indices` (a pure function of `key` and each example's index, so
// resume, repeated evaluation and a batch split over ranks see the same spans), collated as a seq2seq batch. One sentinel token stands for every
// span (the spans come in order), where T5 numbers them <extra_id_0>, <extra_id_1>, ...
Batch span_corruption_batch(const Dataset& data, const std::vector<std::size_t>& indices, std::int64_t pad_id, std::uint64_t key);

// Pads to the longest example of the batch with `pad_id`; the mask marks real tokens.
Batch collate(const Dataset& data, const std::vector<std::size_t>& indices, std::int64_t pad_id);

// Sequence packing for causal LM batches: the same examples as collate(), placed one after another
// in rows as long as the batch's longest example (first fit, longest first), so the batch has fewer
// rows and less padding. Each row carries segment_ids (1, 2, ... per example, 0 on padding) and
// position_ids restarting at 0 in each example; the first token of each example is not scored (it
// has no predecessor in its example), so the loss is exactly the unpacked batch's.
Batch pack_causal(const Dataset& data, const std::vector<std::size_t>& indices, std::int64_t pad_id);

}  // namespace dt
