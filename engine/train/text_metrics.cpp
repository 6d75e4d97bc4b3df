#include "train/text_metrics.h"

#include "core/error.h"
#include "tokenizers/unicode.h"

#include <algorithm>
#include <map>

namespace dt {
namespace {

std::u32string lower(const std::u32string& s) {
    std::u32string out;
    for (char32_t c : s) tok::append_lower(c, out);
    return out;
}

bool is_word_char(char32_t c) { return tok::is_letter(c) || tok::is_number(c) || tok::is_mark_nonspacing(c); }

// Python's string.punctuation plus every Unicode punctuation character.
bool is_punct(char32_t c) {
    static const std::u32string ascii = U"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    return ascii.find(c) != std::u32string::npos || tok::is_punctuation(c);
}

std::vector<std::u32string> split_ws(const std::u32string& s) {
    std::vector<std::u32string> words;
    std::u32string cur;
    for (char32_t c : s) {
        if (tok::is_whitespace(c)) {
            if (!cur.empty()) words.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) words.push_back(cur);
    return words;
}

std::vector<std::u32string> normalized_words(const std::string& text) {
    std::u32string s;
    for (char32_t c : lower(tok::utf8_to_u32(text)))
        if (!is_punct(c)) s += c;
    std::vector<std::u32string> words;
    for (auto& w : split_ws(s))
        if (w != U"a" && w != U"an" && w != U"the") words.push_back(w);
    return words;
}

std::vector<std::u32string> rouge_words(const std::string& text) {
    std::vector<std::u32string> words;
    std::u32string cur;
    for (char32_t c : lower(tok::utf8_to_u32(text))) {
        if (is_word_char(c)) {
            cur += c;
        } else if (!cur.empty()) {
            words.push_back(cur);
            cur.clear();
        }
    }
    if (!cur.empty()) words.push_back(cur);
    return words;
}

}  // namespace

std::string normalize_answer(const std::string& text) {
    std::string out;
    for (const auto& w : normalized_words(text)) out += (out.empty() ? "" : " ") + tok::u32_to_utf8(w);
    return out;
}

double exact_match(const std::string& prediction, const std::string& reference) {
    return normalize_answer(prediction) == normalize_answer(reference) ? 1.0 : 0.0;
}

double token_f1(const std::string& prediction, const std::string& reference) {
    const auto p = normalized_words(prediction), r = normalized_words(reference);
    if (p.empty() || r.empty()) return p.empty() && r.empty() ? 1.0 : 0.0;
    std::map<std::u32string, int> counts;
    for (const auto& w : r) ++counts[w];
    int same = 0;
    for (const auto& w : p) {
        auto it = counts.find(w);
        if (it != counts.end() && it->second > 0) {
            --it->second;
            ++same;
        }
    }
    if (same == 0) return 0.0;
    const double precision = static_cast<double>(same) / static_cast<double>(p.size());
    const double recall = static_cast<double>(same) / static_cast<double>(r.size());
    return 2 * precision * recall / (precision + recall);
}

double rouge_l(const std::string& prediction, const std::string& reference) {
    const auto p = rouge_words(prediction), r = rouge_words(reference);
    if (p.empty() || r.empty()) return 0.0;
    std::vector<int> prev(r.size() + 1, 0), cur(r.size() + 1, 0);
    for (std::size_t i = 1; i <= p.size(); ++i) {
        for (std::size_t j = 1; j <= r.size(); ++j) cur[j] = p[i - 1] == r[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
        std::swap(prev, cur);
    }
    const double lcs = prev[r.size()];
    if (lcs == 0) return 0.0;
    const double precision = lcs / static_cast<double>(p.size()), recall = lcs / static_cast<double>(r.size());
    return 2 * precision * recall / (precision + recall);
}

std::map<std::string, double> text_metrics(const std::vector<std::string>& predictions, const std::vector<std::string>& references) {
    if (predictions.size() != references.size())
        throw Error(std::to_string(predictions.size()) + " predictions for " + std::to_string(references.size()) + " references", "metrics");
    double em = 0, f1 = 0, rl = 0;
    for (std::size_t i = 0; i < predictions.size(); ++i) {
        em += exact_match(predictions[i], references[i]);
        f1 += token_f1(predictions[i], references[i]);
        rl += rouge_l(predictions[i], references[i]);
    }
    const double n = predictions.empty() ? 1.0 : static_cast<double>(predictions.size());
    return {{"exact_match", em / n}, {"f1", f1 / n}, {"rouge_l", rl / n}};
}

}  // namespace dt
