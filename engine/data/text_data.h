// Text task files: JSONL, CSV (RFC 4180 quoting) and TSV (GLUE layout, no quoting) with a field
// mapping, tokenized into a Dataset. Malformed lines (bad JSON, a missing field, an unknown label,
// invalid UTF-8, empty text, a bad number) are errors naming file and line, or are skipped and
// counted when asked. Also a seeded train/validation split.
#pragma once

#include "data/dataset.h"

#include <string>
#include <vector>

namespace dt {

namespace tok {
class Tokenizer;
}

struct TextTaskOptions {
    std::string format;  // jsonl | csv | tsv; empty: from the file extension
    std::string text_field = "text", pair_field, label_field = "label";
    bool header = true;   // CSV/TSV: first row names the fields (else fields are column numbers)
    bool regression = false;
    bool skip_bad_lines = false;
    std::size_t max_length = 128;
    // Label words: `template_text` holds {text} (and {pair}) and the mask token, e.g.
    // "{text} It was [MASK]."; label_words maps a label to its word (default: the label itself).
    std::string template_text;
    std::vector<std::pair<std::string, std::string>> label_words;
    std::string mask_token;  // default: [MASK] or <mask>, whichever the tokenizer has
};

struct ReadStats {
    std::size_t read = 0, skipped = 0;
    std::vector<std::string> first_problems;  // up to 5 "file:line: what"
};

// `labels` seeds the label vocabulary; when `grow_labels` is false an unknown label is bad input.
Dataset read_text_task(const std::string& path, const TextTaskOptions& opts, const tok::Tokenizer& tokenizer,
                       std::vector<std::string> labels, bool grow_labels, ReadStats* stats = nullptr);

// Splits off `fraction` of the examples (shuffled with `seed`) as a validation set.
std::pair<Dataset, Dataset> split_dataset(const Dataset& all, double fraction, std::uint64_t seed);

// Causal LM data: JSONL lines with `prompt` and `response` (loss on the response and the end-of-text
// token only) or just `text` (loss on every token). Errors name file and line, as above.
// Text-to-text for encoder-decoders (T5): one JSON object per line with `input_field` and
// `target_field` strings; both are encoded with the tokenizer's special tokens (T5 appends </s>).
// Bad lines are counted or refused as for the other readers, naming file and line.
Dataset read_seq2seq_task(const std::string& path, const TextTaskOptions& opts, const tok::Tokenizer& tokenizer, ReadStats* stats,
                          const std::string& input_field, const std::string& target_field);

Dataset read_causal_task(const std::string& path, const TextTaskOptions& opts, const tok::Tokenizer& tokenizer,
                         std::int64_t eos_id, ReadStats* stats = nullptr, const std::string& prompt_field = "prompt",
                         const std::string& response_field = "response");

// A plain-text corpus for masked-LM pretraining: lines tokenized without special tokens and packed
// (whole lines only) into [CLS] ... [SEP] sequences of at most max_length tokens. max_lines 0 = all.
// With `bare`, the sequences have no [CLS]/[SEP] (span corruption adds its own EOS).
Dataset read_mlm_corpus(const std::string& path, const tok::Tokenizer& tokenizer, std::size_t max_length, std::size_t max_lines = 0,
                        bool bare = false);

// A label-word classification dataset (read_text_task with a template) turned text-to-text for an
// encoder-decoder: the rendered template is the input, the label's word (plus EOS, from the
// tokenizer's post-processor) the target, as T5 and the Delta Tuning study cast classification.
void as_text_to_text(Dataset& d, const tok::Tokenizer& tk, const std::vector<std::pair<std::string, std::string>>& words);

// `s` with every occurrence of each key ("{text}", "{pair}", "{input}") replaced by its value, in order.
std::string fill_template(std::string s, const std::vector<std::pair<std::string, std::string>>& values);

// Token ids of each label's word, in class order; each word must be exactly one token.
std::vector<std::int64_t> label_word_ids(const tok::Tokenizer& tk, const std::vector<std::string>& labels,
                                         const std::vector<std::pair<std::string, std::string>>& words);
// Fills `template_text` with the texts and encodes it so the mask token survives truncation.
void encode_with_template(const tok::Tokenizer& tk, const TextTaskOptions& o, std::int64_t mask_id, const std::string& text,
                          const std::string& pair, Example& ex);

// The first rows of a JSONL/CSV/TSV file as a table (for a preview and a field mapping): column names
// (JSONL: keys in first-seen order; CSV/TSV: the header) and cell texts; plus the distinct values of
// each column over the first `scan_rows` rows (at most 50 per column), to offer label sets. Throws
// dt::Error naming file and line.
struct TablePreview {
    std::string format;
    std::vector<std::string> columns;
    std::vector<std::vector<std::string>> rows;
    std::vector<std::vector<std::string>> distinct;  // per column
    std::size_t scanned = 0;
};
TablePreview preview_table(const std::string& path, const std::string& format = {}, std::size_t rows = 10, std::size_t scan_rows = 5000);

// CSV/TSV record parsing, exposed for tests. Returns false at end of input.
bool read_record(std::istream& in, char sep, bool quoting, std::vector<std::string>& fields, std::size_t& lineno);

}  // namespace dt
