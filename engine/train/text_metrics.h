// Metrics for generated text against references: exact match and token F1 with SQuAD's answer
// normalisation, and ROUGE-L (F-measure over the longest common subsequence of words). Text is
// UTF-8; letters and digits of every script count as word characters and are lower-cased with the
// Unicode tables (the reference scripts lower-case in Python, and rouge_score drops non-ASCII words,
// which we do not).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace dt {

// SQuAD's normalize_answer: lower case, punctuation removed, the articles a/an/the removed, runs
// of whitespace collapsed.
std::string normalize_answer(const std::string& text);
// 1 if the normalised strings are equal, else 0.
double exact_match(const std::string& prediction, const std::string& reference);
// SQuAD token F1 on normalised words; when either side has no words, 1 if both have none, else 0.
double token_f1(const std::string& prediction, const std::string& reference);
// ROUGE-L F1: words are lower-cased runs of letters and digits; 0 when either side has none.
double rouge_l(const std::string& prediction, const std::string& reference);

// Means over a set: "exact_match", "f1", "rouge_l" (each in [0, 1]).
std::map<std::string, double> text_metrics(const std::vector<std::string>& predictions, const std::vector<std::string>& references);

}  // namespace dt
