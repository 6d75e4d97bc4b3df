#include "data/inspect_data.h"

#include "core/error.h"
#include "tokenizers/tokenizer.h"

#include <algorithm>
#include <cstdio>

namespace dt {

DataReport inspect_task_data(RunSpec spec, std::size_t max_rows) {
    if (spec.format == "tokenized-jsonl")
        throw Error("the task is already tokenized: there is no text to inspect", spec.train_file, "inspect a JSONL/CSV/TSV text task");
    DataReport r;
    r.file = spec.train_file;
    r.max_length = spec.text.max_length;
    spec.validation_file.clear();
    spec.validation_split = 0;  // the whole training file
    spec.text.skip_bad_lines = true;  // collect every problem line instead of stopping at the first
    TaskData cut = load_task_data(spec);
    // The same file without a length limit: each example's full length, so truncation is counted exactly.
    RunSpec whole = spec;
    whole.text.max_length = std::size_t(1) << 24;
    const TaskData full = load_task_data(whole);
    const Dataset& d = cut.train;
    r.examples = d.size();
    r.skipped = cut.train_stats.skipped;
    r.problems = cut.train_stats.first_problems;
    // The tokenizer the readers used (text tasks carry it only when evaluation decodes).
    const tok::Tokenizer own = d.tokenizer ? tok::Tokenizer() : tok::Tokenizer::from_file(spec.tokenizer_file.empty() ? spec.model + "/tokenizer.json" : spec.tokenizer_file);
    const tok::Tokenizer& tk = d.tokenizer ? *d.tokenizer : own;
    const bool same = full.train.size() == d.size();
    for (std::size_t i = 0; i < d.size(); ++i) {
        const Example& e = d.examples[i];
        const std::size_t n = same ? std::max(full.train.examples[i].ids.size(), e.ids.size()) : e.ids.size();
        r.lengths.push_back(n);
        if (n > e.ids.size()) ++r.truncated;
    }
    if (d.seq2seq) r.scoring = "text-to-text: the decoder's loss on every target token; the input is read whole";
    else if (d.causal_lm) r.scoring = "causal LM: the next-token loss on the scored (response) tokens";
    else if (!d.label_word_ids.empty()) r.scoring = "label words: the LM head's logits for the label words at the mask";
    else if (d.regression) r.scoring = "regression head on the first token's final state ([CLS])";
    else r.scoring = "classification head on the first token's final state ([CLS])";
    if (!d.regression && !d.causal_lm && !d.labels.empty()) {
        std::vector<std::size_t> counts(d.labels.size(), 0);
        for (const auto& e : d.examples)
            if (e.label >= 0 && static_cast<std::size_t>(e.label) < counts.size()) ++counts[static_cast<std::size_t>(e.label)];
        for (std::size_t k = 0; k < counts.size(); ++k) r.label_counts.emplace_back(d.labels[k], counts[k]);
    }
    for (std::size_t i = 0; i < std::min(max_rows, d.size()); ++i) {
        const Example& e = d.examples[i];
        InspectedExample x;
        x.text = tk.decode(e.ids, false);
        for (std::size_t p = 0; p < e.ids.size(); ++p) {
            x.tokens.push_back(tk.id_to_token(e.ids[p]));
            bool s = false;
            if (d.causal_lm) s = p + 1 < e.lm_labels.size() && e.lm_labels[p + 1] != -100;  // this position predicts the next, scored token
            else if (!d.label_word_ids.empty()) s = static_cast<std::int64_t>(p) == e.mask_pos;
            else if (!d.seq2seq) s = p == 0;
            x.scored.push_back(s);
        }
        if (d.seq2seq) x.label = tk.decode(e.target_ids, true);
        else if (d.regression) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%g", e.target);
            x.label = buf;
        } else if (e.label >= 0 && static_cast<std::size_t>(e.label) < d.labels.size()) {
            x.label = d.labels[static_cast<std::size_t>(e.label)];
        }
        x.truncated = r.lengths[i] > e.ids.size();
        r.rows.push_back(std::move(x));
    }
    return r;
}

std::vector<std::size_t> length_histogram(const std::vector<std::size_t>& lengths, std::size_t max_length, std::size_t bins,
                                          std::size_t* bin_width) {
    std::size_t top = max_length;
    for (auto n : lengths) top = std::max(top, n);
    bins = std::max<std::size_t>(1, bins);
    const std::size_t w = std::max<std::size_t>(1, (top + bins) / bins);
    std::vector<std::size_t> h(bins, 0);
    for (auto n : lengths) ++h[std::min(bins - 1, n / w)];
    if (bin_width) *bin_width = w;
    return h;
}

}  // namespace dt
