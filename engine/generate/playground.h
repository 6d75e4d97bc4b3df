// What the workbench's Playground asks of a model: one input text in, the model's answer out, in the
// form its head gives. Causal LMs and T5 generate text (streamed); a masked LM fills the mask (top-k
// words with probabilities, or the label words' probabilities for a label-word task); a
// classification head gives the label probabilities. Also the validation examples of a run's task,
// rendered as the model sees them (template and mask included).
#pragma once

#include "generate/generate.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace dt {
namespace tok {
class Tokenizer;
}
struct RunSpec;

struct PlaygroundRequest {
    std::string input;
    GenerationOptions generation;
    // Label-word tasks: the labels and their words (class order); top-k words otherwise.
    std::vector<std::string> labels;
    std::vector<std::pair<std::string, std::string>> label_words;
    std::string mask_token;  // default [MASK] or <mask>
    std::int64_t top_k = 5;
};

struct PlaygroundAnswer {
    std::string kind;  // "generation" | "fill-mask" | "labels"
    std::string text;  // generation: the new text; otherwise the best entry
    std::vector<std::pair<std::string, double>> scores;  // fill-mask / labels: (word or label, probability), best first
};

// `on_text` gets the text generated so far after each token (greedy and sampling; beam search: once
// at the end); returning false stops. Throws dt::Error for an input the model cannot take.
PlaygroundAnswer playground_answer(TransformerModel& model, const tok::Tokenizer& tokenizer, const PlaygroundRequest& request,
                                   const std::function<bool(const std::string&)>& on_text = {});

// The first `n` validation examples of the spec's task (the training file when there is none),
// each as the model's input text: the template rendered for label-word tasks, the input / prompt
// field for text-to-text and causal tasks, the text (and pair) otherwise. Lines that do not parse
// are skipped. JSONL only (CSV/TSV tasks give none).
std::vector<std::string> task_examples(const RunSpec& spec, std::size_t n);

}  // namespace dt
