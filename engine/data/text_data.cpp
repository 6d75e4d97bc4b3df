#include "data/text_data.h"

#include "core/error.h"
#include "io/limits.h"
#include "tokenizers/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <map>
#include <random>

namespace dt {

bool read_record(std::istream& in, char sep, bool quoting, std::vector<std::string>& fields, std::size_t& lineno) {
    fields.clear();
    std::string line;
    if (!limits::getline_limited(in, line, "", lineno + 1)) return false;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!quoting) {
        std::size_t start = 0;
        for (;;) {
            const auto p = line.find(sep, start);
            fields.push_back(line.substr(start, p == std::string::npos ? std::string::npos : p - start));
            if (p == std::string::npos) break;
            start = p + 1;
        }
        return true;
    }
    std::string cur;
    bool quoted = false;
    std::size_t i = 0;
    for (;;) {
        if (i >= line.size()) {
            if (!quoted) break;
            std::string more;  // a quoted field spans lines: the whole record counts against line_bytes
            if (!limits::getline_limited(in, more, "", lineno + 1)) throw Error("unterminated quoted field", "line " + std::to_string(lineno));
            ++lineno;
            if (cur.size() + more.size() > limits::kLineBytes)
                throw Error("a quoted field runs over " + std::to_string(limits::kLineBytes) + " bytes by line " + std::to_string(lineno) +
                                " (" + limits::describe("line_bytes", limits::kLineBytes) + "); a quote left open?",
                            "line " + std::to_string(lineno));
            if (!more.empty() && more.back() == '\r') more.pop_back();
            cur += '\n';
            line = more;
            i = 0;
            continue;
        }
        const char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', i += 2;
            else if (c == '"') quoted = false, ++i;
            else cur += c, ++i;
        } else if (c == '"' && cur.empty()) {
            quoted = true, ++i;
        } else if (c == sep) {
            fields.push_back(cur), cur.clear(), ++i;
        } else {
            cur += c, ++i;
        }
    }
    fields.push_back(cur);
    return true;
}

namespace {

struct Row {
    std::string text, pair, label;
    bool has_pair = false, label_is_number = false;
    double number = 0;
    bool label_missing = false;
};

// A malformed line: an error naming file and line, or skipped and counted when the user asked.
void count_bad_line(const std::string& problem, const std::string& where, const TextTaskOptions& o, ReadStats& st) {
    if (!o.skip_bad_lines) throw Error(problem, where, "fix the line, or set task.skip_bad_lines to skip and count such lines");
    ++st.skipped;
    if (st.first_problems.size() < 5) st.first_problems.push_back(where + ": " + problem);
}

std::string lower_ext(const std::string& path) {
    auto dot = path.find_last_of('.');
    std::string e = dot == std::string::npos ? "" : path.substr(dot + 1);
    for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return e;
}

// The rows of a JSONL, CSV or TSV file as named string fields (CSV/TSV: header names, or column
// numbers without a header), for the text-to-text and causal readers.
class TextRows {
public:
    TextRows(const std::string& path, const TextTaskOptions& o, const std::vector<std::string>& header_needs)
        : path_(path), o_(o), fmt_(o.format.empty() ? lower_ext(path) : o.format), in_(path, std::ios::binary) {
        if (fmt_ != "jsonl" && fmt_ != "csv" && fmt_ != "tsv")
            throw Error("unknown data format '" + fmt_ + "'", path, "use .jsonl, .csv or .tsv, or set task.format");
        if (!in_) throw Error("cannot open data file", path);
        if (fmt_ != "jsonl" && o.header) {
            if (!read_record(in_, sep(), fmt_ == "csv", header_, lineno_)) throw Error("the file is empty", path);
            for (const auto& need : header_needs)
                if (std::find(header_.begin(), header_.end(), need) == header_.end())
                    throw Error("no column '" + need + "' in the header", path + ":1", "set task.fields to the file's column names");
        }
    }
    // The next non-empty row; false at the end. `problem` says why a row cannot be read (bad JSON).
    bool next(std::string& problem) {
        problem.clear();
        json_ = nlohmann::json();
        fields_.clear();
        for (;;) {
            start_ = lineno_ + 1;
            if (fmt_ == "jsonl") {
                std::string line;
                if (!limits::getline_limited(in_, line, path_, lineno_ + 1)) return false;
                start_ = ++lineno_;
                if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
                try {
                    json_ = nlohmann::json::parse(line);
                    if (!json_.is_object()) problem = "not a JSON object";
                } catch (const nlohmann::json::exception&) {
                    problem = "invalid JSON";
                }
                return true;
            }
            try {
                if (!read_record(in_, sep(), fmt_ == "csv", fields_, lineno_)) return false;
            } catch (const Error& e) {
                throw Error(e.message(), where());
            }
            if (fields_.size() == 1 && fields_[0].empty()) continue;
            return true;
        }
    }
    // The row's field, or false when it has none; a JSON value that is not a string is an error.
    bool get(const std::string& name, std::string& out) const {
        if (fmt_ == "jsonl") {
            if (!json_.is_object() || !json_.contains(name)) return false;
            if (!json_[name].is_string()) throw std::runtime_error("field '" + name + "' is not a string");
            out = json_[name].get<std::string>();
            return true;
        }
        std::size_t k = 0;
        if (o_.header) {
            const auto it = std::find(header_.begin(), header_.end(), name);
            if (it == header_.end()) return false;
            k = static_cast<std::size_t>(it - header_.begin());
        } else {
            char* end = nullptr;
            const long v = std::strtol(name.c_str(), &end, 10);
            if (*end || v < 0) return false;
            k = static_cast<std::size_t>(v);
        }
        if (k >= fields_.size()) return false;
        out = fields_[k];
        return true;
    }
    std::string where() const { return path_ + ":" + std::to_string(start_); }

private:
    char sep() const { return fmt_ == "tsv" ? '\t' : ','; }
    std::string path_;
    const TextTaskOptions& o_;
    std::string fmt_;
    std::ifstream in_;
    std::vector<std::string> header_, fields_;
    nlohmann::json json_;
    std::size_t lineno_ = 0, start_ = 0;
};

// A template's {input} filled in; the input alone without a template.
std::string fill_input(const std::string& template_text, const std::string& input) {
    return template_text.empty() ? input : fill_template(template_text, {{"{input}", input}});
}

void check_input_template(const TextTaskOptions& o) {
    if (!o.template_text.empty() && o.template_text.find("{input}") == std::string::npos)
        throw Error("a text-to-text template must contain {input}", "task.template", "e.g. \"summarize: {input}\"");
}

}  // namespace

Dataset read_text_task(const std::string& path, const TextTaskOptions& o, const tok::Tokenizer& tk,
                       std::vector<std::string> labels, bool grow, ReadStats* stats) {
    const std::string fmt = o.format.empty() ? lower_ext(path) : o.format;
    if (fmt != "jsonl" && fmt != "csv" && fmt != "tsv")
        throw Error("unknown data format '" + fmt + "'", path, "use .jsonl, .csv or .tsv, or set task.format");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open data file", path);
    Dataset d;
    d.source = path;
    d.labels = std::move(labels);
    d.regression = o.regression;
    ReadStats local;
    ReadStats& st = stats ? *stats : local;
    std::vector<std::string> header;
    std::size_t lineno = 0;
    auto col = [&](const std::vector<std::string>& f, const std::string& name) -> const std::string* {
        if (o.header) {
            auto it = std::find(header.begin(), header.end(), name);
            if (it == header.end()) return nullptr;
            const auto k = static_cast<std::size_t>(it - header.begin());
            return k < f.size() ? &f[k] : nullptr;
        }
        char* end = nullptr;
        const long k = std::strtol(name.c_str(), &end, 10);
        if (*end || k < 0 || static_cast<std::size_t>(k) >= f.size()) return nullptr;
        return &f[static_cast<std::size_t>(k)];
    };
    std::int64_t mask_id = -1;
    if (!o.template_text.empty()) {
        const std::string mt = !o.mask_token.empty() ? o.mask_token : tk.token_to_id("[MASK]") >= 0 ? "[MASK]" : "<mask>";
        mask_id = tk.token_to_id(mt);
        if (mask_id < 0) throw Error("the tokenizer has no mask token '" + mt + "'", "task.mask_token");
        if (o.template_text.find(mt) == std::string::npos || o.template_text.find("{text}") == std::string::npos)
            throw Error("the template must contain {text} and " + mt, "task.template");
    }
    const char sep = fmt == "tsv" ? '\t' : ',';
    if (fmt != "jsonl" && o.header) {
        if (!read_record(in, sep, fmt == "csv", header, lineno)) throw Error("the file is empty", path);
        for (const auto& need : {o.text_field, o.label_field})
            if (std::find(header.begin(), header.end(), need) == header.end())
                throw Error("no column '" + need + "' in the header", path + ":1", "set task.fields to the file's column names");
    }
    for (;;) {
        Row r;
        std::size_t start_line = lineno + 1;
        std::string problem;
        if (fmt == "jsonl") {
            std::string line;
            if (!limits::getline_limited(in, line, path, lineno + 1)) break;
            start_line = ++lineno;
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            try {
                auto j = nlohmann::json::parse(line);
                if (!j.is_object()) throw std::runtime_error("not an object");
                auto get = [&](const std::string& f, std::string& out) {
                    if (!j.contains(f)) return false;
                    if (!j[f].is_string()) throw std::runtime_error("field '" + f + "' is not a string");
                    out = j[f].get<std::string>();
                    return true;
                };
                if (!get(o.text_field, r.text)) problem = "missing field '" + o.text_field + "'";
                if (!o.pair_field.empty() && problem.empty() && !get(o.pair_field, r.pair)) problem = "missing field '" + o.pair_field + "'";
                r.has_pair = !o.pair_field.empty();
                if (problem.empty()) {
                    if (!j.contains(o.label_field)) problem = "missing field '" + o.label_field + "'";
                    else if (j[o.label_field].is_number()) r.label_is_number = true, r.number = j[o.label_field].get<double>(),
                                                           r.label = j[o.label_field].dump();
                    else if (j[o.label_field].is_string()) r.label = j[o.label_field].get<std::string>();
                    else problem = "field '" + o.label_field + "' must be a string or a number";
                }
            } catch (const std::exception& e) {
                problem = std::string("invalid JSON (") + e.what() + ")";
                if (problem.find("parse error") != std::string::npos) problem = "invalid JSON";
            }
        } else {
            std::vector<std::string> f;
            try {
                if (!read_record(in, sep, fmt == "csv", f, lineno)) break;
            } catch (const Error& e) {
                throw Error(e.message(), path + ":" + std::to_string(start_line));
            }
            if (f.size() == 1 && f[0].empty()) continue;
            const std::string* t = col(f, o.text_field);
            const std::string* l = col(f, o.label_field);
            const std::string* p = o.pair_field.empty() ? nullptr : col(f, o.pair_field);
            if (!t) problem = "missing field '" + o.text_field + "'";
            else if (!o.pair_field.empty() && !p) problem = "missing field '" + o.pair_field + "'";
            else if (!l) problem = "missing field '" + o.label_field + "'";
            else {
                r.text = *t, r.label = *l, r.has_pair = p != nullptr;
                if (p) r.pair = *p;
                char* end = nullptr;
                r.number = std::strtod(r.label.c_str(), &end);
                r.label_is_number = !r.label.empty() && *end == '\0';
            }
        }
        Example ex;
        if (problem.empty() && r.text.find_first_not_of(" \t") == std::string::npos) problem = "empty text";
        if (problem.empty()) {
            if (o.regression) {
                if (!r.label_is_number) problem = "label '" + r.label + "' is not a number";
                else ex.target = r.number, ex.label = -1;
            } else {
                auto it = std::find(d.labels.begin(), d.labels.end(), r.label);
                if (it == d.labels.end()) {
                    if (!grow) problem = "unknown label '" + r.label + "'";
                    else d.labels.push_back(r.label), it = d.labels.end() - 1;
                }
                ex.label = it - d.labels.begin();
            }
        }
        if (problem.empty()) {
            try {
                if (!o.template_text.empty()) {
                    encode_with_template(tk, o, mask_id, r.text, r.has_pair ? r.pair : std::string(), ex);
                } else {
                    auto e = tk.encode(r.text, r.has_pair ? &r.pair : nullptr, true, o.max_length);
                    ex.ids = e.ids;
                    ex.type_ids = e.type_ids;
                }
            } catch (const Error& e) {
                problem = e.message();  // invalid UTF-8, a template that cannot fit
            }
        }
        if (!problem.empty()) {
            count_bad_line(problem, path + ":" + std::to_string(start_line), o, st);
            continue;
        }
        ++st.read;
        d.examples.push_back(std::move(ex));
    }
    if (d.examples.empty()) throw Error("no usable examples", path);
    if (!o.template_text.empty()) d.label_word_ids = label_word_ids(tk, d.labels, o.label_words);
    return d;
}

Dataset read_causal_task(const std::string& path, const TextTaskOptions& o, const tok::Tokenizer& tk, std::int64_t eos_id,
                         ReadStats* stats, const std::string& prompt_field, const std::string& response_field) {
    check_input_template(o);
    TextRows rows(path, o, {});
    Dataset d;
    d.source = path;
    d.causal_lm = true;
    ReadStats local;
    ReadStats& st = stats ? *stats : local;
    std::string problem;
    while (rows.next(problem)) {
        Example ex;
        try {
            std::string prompt, response, text;
            const bool has_prompt = problem.empty() && rows.get(prompt_field, prompt);
            const bool has_response = problem.empty() && rows.get(response_field, response);
            const bool has_text = problem.empty() && rows.get(o.text_field, text);
            if (!problem.empty()) {
            } else if (has_prompt && has_response) {  // the loss on the response (and EOS) only
                const auto p = tk.encode(fill_input(o.template_text, prompt), nullptr, true).ids;
                auto r = tk.encode(response, nullptr, false).ids;
                if (eos_id >= 0) r.push_back(eos_id);
                if (r.size() == (eos_id >= 0 ? 1u : 0u)) problem = "empty response";
                ex.ids = p;
                ex.ids.insert(ex.ids.end(), r.begin(), r.end());
                ex.lm_labels.assign(p.size(), -100);
                ex.lm_labels.insert(ex.lm_labels.end(), r.begin(), r.end());
            } else if (has_text) {
                if (text.find_first_not_of(" \t") == std::string::npos) problem = "empty text";
                ex.ids = tk.encode(text, nullptr, true).ids;
                if (eos_id >= 0) ex.ids.push_back(eos_id);
                ex.lm_labels = ex.ids;
            } else {
                problem = "needs '" + prompt_field + "' and '" + response_field + "', or '" + o.text_field + "'";
            }
        } catch (const std::exception& e) {
            problem = e.what();
        }
        if (problem.empty() && o.max_length > 0 && ex.ids.size() > o.max_length) {
            ex.ids.resize(o.max_length);
            ex.lm_labels.resize(o.max_length);
        }
        if (problem.empty() && std::all_of(ex.lm_labels.begin() + 1, ex.lm_labels.end(), [](std::int64_t v) { return v == -100; }))
            problem = "nothing left to predict after truncation";
        if (!problem.empty()) {
            count_bad_line(problem, rows.where(), o, st);
            continue;
        }
        ex.label = 0;
        ++st.read;
        d.examples.push_back(std::move(ex));
    }
    if (d.examples.empty()) throw Error("no usable examples", path);
    return d;
}

Dataset read_seq2seq_task(const std::string& path, const TextTaskOptions& o, const tok::Tokenizer& tk, ReadStats* stats,
                          const std::string& input_field, const std::string& target_field) {
    check_input_template(o);
    TextRows rows(path, o, {input_field, target_field});
    Dataset d;
    d.source = path;
    d.seq2seq = true;
    ReadStats local;
    ReadStats& st = stats ? *stats : local;
    std::string problem;
    while (rows.next(problem)) {
        Example ex;
        try {
            std::string input, target;
            if (problem.empty() && (!rows.get(input_field, input) || !rows.get(target_field, target)))
                problem = "needs the fields '" + input_field + "' and '" + target_field + "'";
            if (problem.empty() && target.find_first_not_of(" \t") == std::string::npos) problem = "empty '" + target_field + "'";
            if (problem.empty() && input.find_first_not_of(" \t") == std::string::npos) problem = "empty '" + input_field + "'";
            if (problem.empty()) {
                ex.ids = tk.encode(fill_input(o.template_text, input), nullptr, true, o.max_length).ids;
                ex.target_ids = tk.encode(target, nullptr, true, o.max_length).ids;
            }
        } catch (const std::exception& e) {
            problem = e.what();  // a field that is not a string, invalid UTF-8
        }
        if (!problem.empty()) {
            count_bad_line(problem, rows.where(), o, st);
            continue;
        }
        ex.label = 0;
        ++st.read;
        d.examples.push_back(std::move(ex));
    }
    if (d.examples.empty()) throw Error("no usable examples", path);
    return d;
}

Dataset read_mlm_corpus(const std::string& path, const tok::Tokenizer& tk, std::size_t max_length, std::size_t max_lines, bool bare) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open corpus file", path);
    if (max_length < 8) throw Error("sequence length must be at least 8", "max_length");
    const std::int64_t cls = tk.token_to_id("[CLS]") >= 0 ? tk.token_to_id("[CLS]") : tk.token_to_id("<s>");
    const std::int64_t sep = tk.token_to_id("[SEP]") >= 0 ? tk.token_to_id("[SEP]") : tk.token_to_id("</s>");
    const std::int64_t mask = tk.token_to_id("[MASK]") >= 0 ? tk.token_to_id("[MASK]") : tk.token_to_id("<mask>");
    if (cls < 0 || sep < 0 || mask < 0)
        throw Error("the tokenizer lacks [CLS]/<s>, [SEP]/</s> or [MASK]/<mask>", "tokenizer", "masked-LM pretraining needs BERT-style special tokens");
    Dataset d;
    d.source = path;
    d.masked_lm = true;
    d.mask_token_id = mask;
    d.mlm_vocab_size = static_cast<std::int64_t>(tk.vocab_size());
    // Special tokens are neither masked nor drawn as random replacements: the ones in front of the
    // first ordinary token (BERT and RoBERTa vocabularies put them there).
    for (const std::int64_t id : {cls, sep, mask, tk.token_to_id("[PAD]"), tk.token_to_id("[UNK]"), tk.token_to_id("<pad>"), tk.token_to_id("<unk>")})
        d.mlm_first_regular_id = std::max(d.mlm_first_regular_id, id + 1);
    std::vector<std::int64_t> cur;
    auto flush = [&] {
        if (cur.empty()) return;
        Example ex;
        if (!bare) ex.ids.push_back(cls);
        ex.ids.insert(ex.ids.end(), cur.begin(), cur.end());
        if (!bare) ex.ids.push_back(sep);
        ex.label = 0;
        d.examples.push_back(std::move(ex));
        cur.clear();
    };
    std::string line;
    std::size_t lineno = 0;
    const std::size_t room = bare ? max_length - 1 : max_length - 2;  // bare: room for the EOS
    while ((max_lines == 0 || lineno < max_lines) && limits::getline_limited(in, line, path, lineno + 1)) {
        ++lineno;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::vector<std::int64_t> ids;
        try {
            ids = tk.encode(line, nullptr, false).ids;
        } catch (const Error& e) {
            throw Error(e.message(), path + ":" + std::to_string(lineno), "fix or remove the line");
        }
        if (ids.size() > room) ids.resize(room);
        // Lines are packed into sequences of up to max_length tokens, never split across two.
        if (cur.size() + ids.size() > room) flush();
        cur.insert(cur.end(), ids.begin(), ids.end());
    }
    flush();
    if (d.examples.empty()) throw Error("no text in the corpus", path);
    return d;
}

namespace {

// ", e.g. 'good', 'great'": vocabulary words sharing the longest prefix with `word` (whole words only).
std::string similar_tokens(const tok::Tokenizer& tk, const std::string& word) {
    std::vector<std::pair<std::size_t, std::string>> scored;
    for (std::size_t i = 0; i < tk.vocab_size(); ++i) {
        const std::string t = tk.id_to_token(static_cast<std::int64_t>(i));
        if (t.size() < 2 || t[0] == '[' || t[0] == '<' || t.rfind("##", 0) == 0) continue;
        std::size_t k = 0;
        while (k < t.size() && k < word.size() && std::tolower(static_cast<unsigned char>(t[k])) == std::tolower(static_cast<unsigned char>(word[k]))) ++k;
        if (k > 0) scored.emplace_back(k, t);
    }
    std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string out;
    for (std::size_t i = 0; i < scored.size() && i < 3; ++i) out += (i ? ", '" : ", e.g. '") + scored[i].second + "'";
    return out;
}

}  // namespace

void as_text_to_text(Dataset& d, const tok::Tokenizer& tk, const std::vector<std::pair<std::string, std::string>>& words) {
    d.target_words.clear();
    d.target_word_ids.clear();
    std::vector<std::vector<std::int64_t>> targets;
    for (const auto& label : d.labels) {
        std::string word = label;
        for (const auto& [l, w] : words)
            if (l == label) word = w;
        d.target_words.push_back(word);
        targets.push_back(tk.encode(word, nullptr, true).ids);
        if (targets.back().empty()) throw Error("label word '" + word + "' encodes to no tokens", "task.label_words");
    }
    for (auto& ex : d.examples) {
        if (ex.label < 0 || ex.label >= static_cast<std::int64_t>(targets.size())) throw Error("an example has no class label", d.source);
        ex.target_ids = targets[static_cast<std::size_t>(ex.label)];
        ex.mask_pos = -1;
        ex.type_ids.clear();
    }
    d.target_word_ids = targets;
    d.label_word_ids.clear();
    d.seq2seq = true;
}

std::vector<std::int64_t> label_word_ids(const tok::Tokenizer& tk, const std::vector<std::string>& labels,
                                         const std::vector<std::pair<std::string, std::string>>& words) {
    std::vector<std::int64_t> ids;
    for (const auto& label : labels) {
        std::string word = label;
        for (const auto& [l, w] : words)
            if (l == label) word = w;
        const auto e = tk.encode(word, nullptr, false);
        if (e.ids.size() != 1)
            throw Error("label word '" + word + "' (label '" + label + "') is " + std::to_string(e.ids.size()) + " tokens",
                        "task.label_words", "choose a word that is a single token of this tokenizer" + similar_tokens(tk, word));
        // A word outside the vocabulary is one token too, the unknown one: every such label would
        // score the same and nothing could be learned.
        for (const char* unk : {"[UNK]", "<unk>"})
            if (tk.token_to_id(unk) >= 0 && e.ids[0] == tk.token_to_id(unk))
                throw Error("label word '" + word + "' (label '" + label + "') is not in the tokenizer's vocabulary (it encodes to " + unk + ")",
                            "task.label_words", "map the label to a word the tokenizer knows" + similar_tokens(tk, word));
        ids.push_back(e.ids[0]);
    }
    return ids;
}

std::string fill_template(std::string s, const std::vector<std::pair<std::string, std::string>>& values) {
    for (const auto& [key, value] : values)
        for (auto p = s.find(key); p != std::string::npos; p = s.find(key, p + value.size())) s.replace(p, key.size(), value);
    return s;
}

void encode_with_template(const tok::Tokenizer& tk, const TextTaskOptions& o, std::int64_t mask_id, const std::string& text,
                          const std::string& pair, Example& ex) {
    auto fill = [&](std::size_t keep) {
        std::string t = text.substr(0, std::min(keep, text.size()));
        while (!t.empty() && (static_cast<unsigned char>(t.back()) & 0xC0) == 0x80) t.pop_back();  // whole code points
        if (!t.empty() && static_cast<unsigned char>(t.back()) >= 0xC0) t.pop_back();
        return fill_template(o.template_text, {{"{text}", t}, {"{pair}", pair}});
    };
    // Shorten the text (not the template) until the mask survives truncation.
    std::size_t keep = text.size();
    for (int attempt = 0; attempt < 40; ++attempt) {
        const auto e = tk.encode(fill(keep), nullptr, true, o.max_length);
        const auto it = std::find(e.ids.begin(), e.ids.end(), mask_id);
        if (it != e.ids.end()) {
            ex.ids = e.ids;
            ex.type_ids = e.type_ids;
            ex.mask_pos = it - e.ids.begin();
            return;
        }
        if (keep == 0) break;
        keep = keep * 3 / 4;
    }
    throw Error("the template does not fit in max_length " + std::to_string(o.max_length));
}

std::pair<Dataset, Dataset> split_dataset(const Dataset& all, double fraction, std::uint64_t seed) {
    if (!(fraction > 0 && fraction < 1)) throw Error("must be between 0 and 1", "validation_split");
    std::vector<std::size_t> idx(all.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::mt19937_64 rng(seed);
    std::shuffle(idx.begin(), idx.end(), rng);
    const auto nv = std::max<std::size_t>(1, static_cast<std::size_t>(fraction * static_cast<double>(all.size())));
    // Both halves keep every dataset-level field (labels, formulation, masked-LM settings).
    Dataset train, valid;
    static_cast<DatasetInfo&>(train) = all;
    static_cast<DatasetInfo&>(valid) = all;
    for (std::size_t i = 0; i < idx.size(); ++i) (i < nv ? valid : train).examples.push_back(all.examples[idx[i]]);
    return {train, valid};
}

TablePreview preview_table(const std::string& path, const std::string& format, std::size_t max_rows, std::size_t scan_rows) {
    TablePreview p;
    p.format = format.empty() ? lower_ext(path) : format;
    if (p.format != "jsonl" && p.format != "csv" && p.format != "tsv")
        throw Error("unknown data format '" + p.format + "'", path, "use .jsonl, .csv or .tsv");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open data file", path);
    std::vector<std::set<std::string>> seen;
    auto add_row = [&](std::vector<std::string> cells) {
        cells.resize(p.columns.size());
        seen.resize(p.columns.size());
        p.distinct.resize(p.columns.size());
        for (std::size_t c = 0; c < cells.size(); ++c)
            if (p.distinct[c].size() < 50 && seen[c].insert(cells[c]).second) p.distinct[c].push_back(cells[c]);
        if (p.rows.size() < max_rows) p.rows.push_back(std::move(cells));
        ++p.scanned;
    };
    std::size_t lineno = 0;
    if (p.format == "jsonl") {
        std::string line;
        while (p.scanned < scan_rows && limits::getline_limited(in, line, path, lineno + 1)) {
            ++lineno;
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            nlohmann::json j;
            try {
                j = nlohmann::json::parse(line);
            } catch (const std::exception& e) {
                throw Error(std::string("not JSON: ") + e.what(), path + ":" + std::to_string(lineno));
            }
            if (!j.is_object()) throw Error("a line must be a JSON object", path + ":" + std::to_string(lineno));
            for (auto it = j.begin(); it != j.end(); ++it)
                if (std::find(p.columns.begin(), p.columns.end(), it.key()) == p.columns.end()) p.columns.push_back(it.key());
            std::vector<std::string> cells;
            for (const auto& c : p.columns)
                cells.push_back(!j.contains(c) ? std::string() : j[c].is_string() ? j[c].get<std::string>() : j[c].dump());
            add_row(std::move(cells));
        }
        // Rows read before a later key appeared get an empty cell for it.
        for (auto& r : p.rows) r.resize(p.columns.size());
        return p;
    }
    const char sep = p.format == "tsv" ? '\t' : ',';
    if (!read_record(in, sep, p.format == "csv", p.columns, lineno)) throw Error("the file is empty", path);
    std::vector<std::string> f;
    while (p.scanned < scan_rows && read_record(in, sep, p.format == "csv", f, lineno)) add_row(f);
    return p;
}

}  // namespace dt
