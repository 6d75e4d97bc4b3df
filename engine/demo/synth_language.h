// The built-in demo's synthetic language: a deterministic lexicon of word classes (topic nouns and
// verbs in synonym pairs, people, adjectives of positive, negative and neutral polarity, attitude
// verbs, English function words), a probabilistic grammar that writes a pretraining corpus in which
// those classes have distinct, learnable distributions, a WordPiece tokenizer.json for it, and a
// family of labelled tasks in several categories. Everything is a pure function of the seed, with
// our own PRNG, so the files are byte-identical on every platform. Design: docs/demo.md.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dt::demo {

// splitmix64: small, fast and identical everywhere (std distributions are implementation-defined).
class Rng {
public:
    explicit Rng(std::uint64_t seed) : s_(seed) {}
    std::uint64_t next();
    std::uint64_t below(std::uint64_t n);  // uniform in [0, n)
    double unit();                         // uniform in [0, 1)
    bool chance(double p) { return unit() < p; }
    template <typename T>
    const T& pick(const std::vector<T>& v) { return v[static_cast<std::size_t>(below(v.size()))]; }

private:
    std::uint64_t s_;
};

struct Lexicon {
    std::vector<std::string> topics;                    // topic names (English label words)
    std::vector<std::vector<std::string>> nouns, verbs; // per topic; entries 2k and 2k+1 are synonyms
    std::vector<std::string> names;                     // people
    std::vector<std::string> pos_adj, neg_adj, neutral_adj;
    std::vector<std::string> pos_verbs, neg_verbs;      // attitudes: loved-like and hated-like
    static Lexicon build(std::uint64_t seed);
    // Every whole word of the language (content and function words), without duplicates, in a fixed order.
    std::vector<std::string> words() const;
};

// English function words and label words used by the grammar and the task templates.
const std::vector<std::string>& function_words();

// `n` lines of the pretraining corpus (each one to three sentences), handed to `sink` in order.
void write_corpus(const Lexicon& lex, std::uint64_t seed, std::size_t n, const std::function<void(const std::string&)>& sink);

// A WordPiece tokenizer.json (BERT normaliser, pre-tokenizer, post-processor and decoder) whose
// vocabulary is [PAD] [UNK] [CLS] [SEP] [MASK], punctuation, the suffixes ##s and ##ed, and every word.
nlohmann::json tokenizer_json(const Lexicon& lex);

// The same vocabulary for the demo T5s: a post-processor that only appends [SEP] (T5's </s>).
nlohmann::json tokenizer_t5_json(const Lexicon& lex);

struct TaskFiles {
    std::string name, category, description;
    std::vector<std::string> train_lines, validation_lines;  // JSONL
    std::string task_json;                                   // the task file (docs/run-spec.md "task")
};

// The demo task family. Training examples draw their key words from one half of each word class,
// validation examples from all of it, so a model must generalise beyond the words it was tuned on.
std::vector<TaskFiles> make_tasks(const Lexicon& lex, std::uint64_t seed, std::size_t n_train, std::size_t n_valid);

// Writes tokenizer.json, corpus.txt (n_lines lines) and tasks/<name>/{task.json,train.jsonl,
// validation.jsonl} under out_dir (created), each file atomically.
void write_demo_data(const std::string& out_dir, std::uint64_t seed, std::size_t corpus_lines, std::size_t n_train,
                     std::size_t n_valid);

}  // namespace dt::demo
