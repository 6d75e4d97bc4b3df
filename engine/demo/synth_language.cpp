#include "demo/synth_language.h"

#include "core/error.h"
#include "core/splitmix.h"
#include "io/atomic_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <set>

namespace dt::demo {

std::uint64_t Rng::next() {
    const std::uint64_t x = s_;
    s_ += kSplitmixGamma;
    return splitmix64(x);
}

std::uint64_t Rng::below(std::uint64_t n) {
    if (n == 0) throw Error("Rng::below(0)");
    // Rejection sampling keeps the result exactly uniform.
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
}

double Rng::unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

const std::vector<std::string>& function_words() {
    static const std::vector<std::string> w = {
        "the", "a", "is", "was", "are", "not", "no", "all", "some", "and", "but", "because", "it", "this", "that",
        "who", "what", "where", "did", "about", "story", "question", "answer", "overall", "so", "very", "really",
        "quite", "extremely", "also", "called", "same", "different", "two", "yes", "good", "great", "bad", "terrible",
        "true", "by", "of", "with", "in", "on", "to", "they", "he", "she", "then", "again", "today", "sport", "food", "has",
        "music", "science"};
    return w;
}

namespace {

// Pseudo-words from consonant-vowel syllables with an optional final n, l, r or m. No word contains
// 's', so a plural noun+"s" is always noun + ##s; a verb is never the start of another word followed
// by 'e', so verb+"ed" is always verb + ##ed.
class WordMaker {
public:
    explicit WordMaker(Rng& r) : rng_(r) {
        for (const auto& w : function_words()) used_.insert(w);
    }
    std::string make(bool verb) {
        static const std::vector<std::string> onsets = {"b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "t", "v", "z", "br", "tr", "kl", "gr", "pl"};
        static const std::vector<std::string> vowels = {"a", "e", "i", "o", "u", "a", "o", "i"};
        static const std::vector<std::string> codas = {"n", "l", "r", "m"};
        for (;;) {
            std::string w;
            const int syl = rng_.chance(0.6) ? 2 : 3;
            for (int i = 0; i < syl; ++i) w += rng_.pick(onsets) + rng_.pick(vowels);
            if (rng_.chance(0.4)) w += rng_.pick(codas);
            if (used_.count(w) || clashes(w, verb)) continue;
            used_.insert(w);
            if (verb) verbs_.push_back(w);
            return w;
        }
    }

private:
    bool clashes(const std::string& w, bool verb) const {
        for (const auto& v : verbs_)
            if (w.size() > v.size() && w.compare(0, v.size() + 1, v + "e") == 0) return true;
        if (verb)
            for (const auto& u : used_)
                if (u.size() > w.size() && u.compare(0, w.size() + 1, w + "e") == 0) return true;
        return false;
    }
    Rng& rng_;
    std::set<std::string> used_;
    std::vector<std::string> verbs_;
};

constexpr int kNounsPerTopic = 40, kVerbsPerTopic = 12;

const std::vector<std::string>& degrees() {
    static const std::vector<std::string> d = {"very", "really", "quite", "extremely"};
    return d;
}

// The part of a word class a split may use: training takes the even entries (for synonym pairs,
// the even pairs), validation all of them.
std::vector<std::string> part(const std::vector<std::string>& v, bool train, bool pairs = false) {
    if (!train) return v;
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v.size(); ++i)
        if (((pairs ? i / 2 : i) % 2) == 0) out.push_back(v[i]);
    return out;
}

std::string twin(const std::vector<std::string>& v, const std::string& w) {
    const auto it = std::find(v.begin(), v.end(), w);
    const std::size_t i = static_cast<std::size_t>(it - v.begin());
    return v[i ^ 1u];
}

std::string join(const std::vector<std::string>& w) {
    std::string s;
    for (const auto& x : w) s += (s.empty() ? "" : " ") + x;
    return s;
}

// Word pools, built once per call site; `train` selects the half of each class a split may use.
struct Pools {
    const Lexicon& lex;
    bool train;
    std::vector<std::vector<std::string>> nouns, verbs;
    std::vector<std::string> names, pos, neg, neutral, posv, negv, all_adj;
    Pools(const Lexicon& l, bool tr) : lex(l), train(tr) {
        for (std::size_t t = 0; t < l.topics.size(); ++t) {
            nouns.push_back(part(l.nouns[t], tr, true));
            verbs.push_back(part(l.verbs[t], tr, true));
        }
        names = part(l.names, tr);
        pos = part(l.pos_adj, tr);
        neg = part(l.neg_adj, tr);
        neutral = part(l.neutral_adj, tr);
        posv = part(l.pos_verbs, tr);
        negv = part(l.neg_verbs, tr);
        all_adj = pos;
        all_adj.insert(all_adj.end(), neg.begin(), neg.end());
        all_adj.insert(all_adj.end(), neutral.begin(), neutral.end());
    }
    std::size_t topic(Rng& r) const { return static_cast<std::size_t>(r.below(lex.topics.size())); }
    const std::string& adj(Rng& r, bool positive) const { return r.pick(positive ? pos : neg); }
    std::vector<std::string> event(Rng& r, std::size_t t, std::string* n1 = nullptr, std::string* v = nullptr,
                                   std::string* n2 = nullptr) const {
        std::vector<std::string> w = {"the"};
        if (r.chance(0.3)) w.push_back(r.pick(neutral));
        const std::string a = r.pick(nouns[t]), b = r.pick(verbs[t]), c = r.pick(nouns[t]);
        w.push_back(a);
        w.push_back(b + "ed");
        w.push_back("the");
        w.push_back(c);
        w.push_back(".");
        if (n1) *n1 = a;
        if (v) *v = b;
        if (n2) *n2 = c;
        return w;
    }
};

std::string sentiment_word(Rng& r, bool positive) {
    if (positive) return r.chance(0.7) ? "good" : "great";
    return r.chance(0.7) ? "bad" : "terrible";
}

}  // namespace

Lexicon Lexicon::build(std::uint64_t seed) {
    Rng rng(seed);
    WordMaker mk(rng);
    Lexicon L;
    L.topics = {"sport", "food", "music", "science"};
    for (std::size_t t = 0; t < L.topics.size(); ++t) {
        L.nouns.emplace_back();
        L.verbs.emplace_back();
        for (int i = 0; i < kNounsPerTopic; ++i) L.nouns[t].push_back(mk.make(false));
        for (int i = 0; i < kVerbsPerTopic; ++i) L.verbs[t].push_back(mk.make(true));
    }
    for (int i = 0; i < 40; ++i) L.names.push_back(mk.make(false));
    for (int i = 0; i < 16; ++i) L.pos_adj.push_back(mk.make(false));
    for (int i = 0; i < 16; ++i) L.neg_adj.push_back(mk.make(false));
    for (int i = 0; i < 16; ++i) L.neutral_adj.push_back(mk.make(false));
    for (int i = 0; i < 8; ++i) L.pos_verbs.push_back(mk.make(true));
    for (int i = 0; i < 8; ++i) L.neg_verbs.push_back(mk.make(true));
    return L;
}

std::vector<std::string> Lexicon::words() const {
    std::vector<std::string> out = function_words();
    auto add = [&](const std::vector<std::string>& v) { out.insert(out.end(), v.begin(), v.end()); };
    for (const auto& v : nouns) add(v);
    for (const auto& v : verbs) add(v);
    for (const auto* v : {&names, &pos_adj, &neg_adj, &neutral_adj, &pos_verbs, &neg_verbs}) add(*v);
    return out;
}

namespace {

std::string corpus_line(const Lexicon& lex, const Pools& P, Rng& r) {
    static const std::vector<int> weights = {10, 10, 12, 14, 8, 7, 8, 6, 8, 6, 3, 14};
    static const int total = [] {
        int s = 0;
        for (int w : weights) s += w;
        return s;
    }();
    int k = static_cast<int>(r.below(static_cast<std::uint64_t>(total))), kind = 0;
    while (k >= weights[static_cast<std::size_t>(kind)]) k -= weights[static_cast<std::size_t>(kind++)];
    const std::size_t t = P.topic(r);
    const bool p = r.chance(0.5);
    std::vector<std::string> w;
    auto add = [&](std::initializer_list<std::string> xs) { w.insert(w.end(), xs.begin(), xs.end()); };
    auto add_v = [&](const std::vector<std::string>& xs) { w.insert(w.end(), xs.begin(), xs.end()); };
    auto degree = [&] {
        if (r.chance(0.4)) w.push_back(r.pick(degrees()));
    };
    const std::string n = r.pick(P.nouns[t]);
    switch (kind) {
    case 0:  // an event
        add_v(P.event(r, t));
        if (r.chance(0.3)) add({"then", "it", r.pick(P.verbs[t]) + "ed", "the", r.pick(P.nouns[t]), "again", "."});
        break;
    case 1:  // a story with its topic
        add({"this", "story", "is", "about", lex.topics[t], ":"});
        add_v(P.event(r, t));
        break;
    case 2:  // an opinion: attitude verbs agree with the adjective's polarity
        add({r.pick(P.names), r.pick(p ? P.posv : P.negv) + "ed", "the"});
        if (r.chance(0.5)) w.push_back(P.adj(r, p));
        w.push_back(n);
        if (r.chance(0.6)) {
            add({"because", "it", "was"});
            degree();
            w.push_back(P.adj(r, p));
        }
        w.push_back(".");
        break;
    case 3:  // a review
        add({"the", n, "was"});
        degree();
        add({P.adj(r, p), ".", "overall", "it", "was", sentiment_word(r, p), "."});
        break;
    case 4:  // negation flips the verdict
        add({"the", n, "was", "not", P.adj(r, p), ".", "overall", "it", "was", sentiment_word(r, !p), "."});
        break;
    case 5:  // questions with their topic
        if (r.chance(0.5)) add({"who", r.pick(P.verbs[t]) + "ed", "the", n, "?"});
        else add({"what", "did", r.pick(P.names), r.pick(P.verbs[t]), "?"});
        add({"this", "question", "is", "about", lex.topics[t], "."});
        break;
    case 6: {  // attributes, asked about
        const std::string a1 = r.pick(P.all_adj), a2 = r.pick(P.all_adj), other = r.pick(P.all_adj);
        const bool yes = r.chance(0.5);
        const std::string ax = yes ? (r.chance(0.5) ? a1 : a2) : other;
        add({"the", n, "is", a1, "and", a2, ".", "is", "the", n, ax, "?", (ax == a1 || ax == a2) ? "yes" : "no", "."});
        break;
    }
    case 7: {  // quantifiers: "all X are A" and "no X are A", then a conclusion or a question
        const std::string a = r.pick(P.all_adj);
        const bool all = r.chance(0.5);
        add({all ? "all" : "no", n + "s", "are", a, "."});
        if (r.chance(0.5)) {
            add({"so", "the", n, "is"});
            if (!all) w.push_back("not");
            add({a, "."});
        } else {
            add({"is", "the", n, a, "?", all ? "yes" : "no", "."});
        }
        break;
    }
    case 8: {  // synonyms
        const std::string tw = twin(lex.nouns[t], n);
        const double u = r.unit();
        if (u < 0.4) add({"a", n, "is", "also", "called", "a", tw, "."});
        else if (u < 0.7) add({"the", n, "and", "the", tw, "are", "the", "same", "."});
        else {
            std::string m = r.pick(P.nouns[t]);
            while (m == n || m == tw) m = r.pick(P.nouns[t]);
            add({"the", n, "and", "the", m, "are", "different", "."});
        }
        break;
    }
    case 9: {  // the same event in other words, or a different one
        std::string a, v, b;
        add_v(P.event(r, t, &a, &v, &b));
        const bool same = r.chance(0.5);
        std::string a2 = r.chance(0.5) ? twin(lex.nouns[t], a) : a, b2 = r.chance(0.5) ? twin(lex.nouns[t], b) : b;
        const std::string v2 = r.chance(0.5) ? twin(lex.verbs[t], v) : v;
        if (!same) {
            std::string m = r.pick(P.nouns[t]);
            while (m == a || m == b || m == twin(lex.nouns[t], a) || m == twin(lex.nouns[t], b)) m = r.pick(P.nouns[t]);
            (r.chance(0.5) ? a2 : b2) = m;
        }
        add({"the", a2, v2 + "ed", "the", b2, ".", "the", "two", "are", same ? "same" : "different", "."});
        break;
    }
    case 10:  // plain descriptions
        add({"the", n, "is", r.pick(P.neutral), "and", r.pick(P.neutral), "."});
        if (r.chance(0.5)) add({r.pick(P.names), "has", "it", "."});
        break;
    default:  // adjectives of one polarity go together
        add({"the", n, "was"});
        degree();
        add({P.adj(r, p), "and", P.adj(r, p), "."});
        break;
    }
    return join(w);
}

}  // namespace

void write_corpus(const Lexicon& lex, std::uint64_t seed, std::size_t n, const std::function<void(const std::string&)>& sink) {
    const Pools P(lex, false);
    Rng r(seed);
    for (std::size_t i = 0; i < n; ++i) sink(corpus_line(lex, P, r));
}

nlohmann::json tokenizer_json(const Lexicon& lex) {
    nlohmann::json vocab = nlohmann::json::object();
    std::int64_t id = 0;
    std::vector<std::string> order = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?", ":", "!", "'", "-", "##s", "##ed"};
    for (const auto& w : lex.words()) order.push_back(w);
    std::set<std::string> seen;
    nlohmann::json added = nlohmann::json::array();
    for (const auto& w : order) {
        if (!seen.insert(w).second) continue;
        vocab[w] = id;
        if (w.front() == '[' && w.back() == ']')
            added.push_back({{"id", id}, {"content", w}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                             {"normalized", false}, {"special", true}});
        ++id;
    }
    const std::int64_t cls = vocab["[CLS]"], sep = vocab["[SEP]"];
    nlohmann::json j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = added;
    j["normalizer"] = {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true},
                       {"strip_accents", nullptr}, {"lowercase", true}};
    j["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
    j["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                    {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 0}}}}}},
        {"pair", {{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                  {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}},
                  {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 1}}}}}},
        {"special_tokens", {{"[CLS]", {{"id", "[CLS]"}, {"ids", {cls}}, {"tokens", {"[CLS]"}}}},
                            {"[SEP]", {{"id", "[SEP]"}, {"ids", {sep}}, {"tokens", {"[SEP]"}}}}}}};
    j["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
    j["model"] = {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
                  {"max_input_chars_per_word", 100}, {"vocab", vocab}};
    return j;
}

nlohmann::json tokenizer_t5_json(const Lexicon& lex) {
    nlohmann::json j = tokenizer_json(lex);
    const auto sep = j["model"]["vocab"]["[SEP]"];
    auto seq = [](const char* id, int type) { return nlohmann::json{{"Sequence", {{"id", id}, {"type_id", type}}}}; };
    const nlohmann::json eos = {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 0}}}};
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {seq("A", 0), eos}},
                           {"pair", {seq("A", 0), eos, seq("B", 0), eos}},
                           {"special_tokens", {{"[SEP]", {{"id", "[SEP]"}, {"ids", {sep}}, {"tokens", {"[SEP]"}}}}}}};
    return j;
}

namespace {

struct TaskDef {
    std::string name, category, description, template_text;
    std::vector<std::pair<std::string, std::string>> label_words;  // label -> word, in class order
    bool pair = false;
    // Writes one example: text, pair (when `pair`), and the label's index.
    std::function<void(const Pools&, Rng&, std::string&, std::string&, std::size_t&)> make;
};

std::vector<TaskDef> task_defs(const Lexicon& lex) {
    std::vector<TaskDef> d;
    const std::vector<std::pair<std::string, std::string>> sentiment = {{"negative", "bad"}, {"positive", "good"}};
    const std::vector<std::pair<std::string, std::string>> yes_no = {{"not_entailed", "no"}, {"entailed", "yes"}};
    const std::vector<std::pair<std::string, std::string>> same_diff = {{"different", "different"}, {"similar", "same"}};
    std::vector<std::pair<std::string, std::string>> topics;
    for (const auto& t : lex.topics) topics.emplace_back(t, t);
    const Lexicon* L = &lex;

    d.push_back({"reviews", "sentiment", "Is a short product review positive or negative? The adjective decides.",
                 "{text} overall it was [MASK] .", sentiment, false,
                 [](const Pools& P, Rng& r, std::string& text, std::string&, std::size_t& label) {
                     const std::size_t t = P.topic(r);
                     const bool p = r.chance(0.5), neg = r.chance(0.15), verdict = p != neg;
                     std::vector<std::string> w;
                     if (r.chance(0.3)) w = P.event(r, t);
                     for (const auto& x : {std::string("the"), r.pick(P.nouns[t]), std::string("was")}) w.push_back(x);
                     if (neg) w.push_back("not");
                     if (r.chance(0.4)) w.push_back(r.pick(degrees()));
                     w.push_back(P.adj(r, p));
                     w.push_back(".");
                     if (r.chance(0.3))  // and what someone thought of it
                         for (const auto& x : {r.pick(P.names), r.pick(verdict ? P.posv : P.negv) + "ed", std::string("it"), std::string(".")})
                             w.push_back(x);
                     text = join(w);
                     label = verdict ? 1 : 0;
                 }});
    // The sentiment tasks vary their sentence shapes the same way (an event in front, degree words),
    // so a delta keys on what a word means rather than where it stands, and carries over between them.
    d.push_back({"opinions", "sentiment", "Did a person like something? The attitude verb decides, with a reason or without.",
                 "{text} overall it was [MASK] .", sentiment, false,
                 [](const Pools& P, Rng& r, std::string& text, std::string&, std::size_t& label) {
                     const std::size_t t = P.topic(r);
                     const bool p = r.chance(0.5), neg = r.chance(0.15);
                     std::vector<std::string> w;
                     if (r.chance(0.3)) w = P.event(r, t);
                     if (neg)  // "did not hate" is positive: the verb has the label's opposite polarity
                         for (const auto& x : {r.pick(P.names), std::string("did"), std::string("not"), r.pick(p ? P.negv : P.posv), std::string("the")})
                             w.push_back(x);
                     else
                         for (const auto& x : {r.pick(P.names), r.pick(p ? P.posv : P.negv) + "ed", std::string("the")}) w.push_back(x);
                     if (r.chance(0.3)) w.push_back(r.pick(P.neutral));
                     w.push_back(r.pick(P.nouns[t]));
                     if (r.chance(0.4)) {
                         for (const char* x : {"because", "it", "was"}) w.push_back(x);
                         if (r.chance(0.4)) w.push_back(r.pick(degrees()));
                         w.push_back(P.adj(r, p));
                     } else if (r.chance(0.3)) {
                         w.push_back("today");
                     }
                     w.push_back(".");
                     text = join(w);
                     label = p ? 1 : 0;
                 }});
    d.push_back({"negation", "sentiment", "Sentiment with negation: 'was not bad' is positive.",
                 "{text} overall it was [MASK] .", sentiment, false,
                 [](const Pools& P, Rng& r, std::string& text, std::string&, std::size_t& label) {
                     const std::size_t t = P.topic(r);
                     const bool p = r.chance(0.5), neg = r.chance(0.5);
                     std::vector<std::string> w;
                     if (r.chance(0.3)) w = P.event(r, t);
                     for (const auto& x : {std::string("the"), r.pick(P.nouns[t]), std::string("was")}) w.push_back(x);
                     if (neg) w.push_back("not");
                     if (r.chance(0.4)) w.push_back(r.pick(degrees()));
                     w.push_back(P.adj(r, p));
                     w.push_back(".");
                     text = join(w);
                     label = (p != neg) ? 1 : 0;
                 }});
    d.push_back({"news", "topic", "Which topic is a one-line news item about?", "{text} this story is about [MASK] .", topics,
                 false,
                 [](const Pools& P, Rng& r, std::string& text, std::string&, std::size_t& label) {
                     const std::size_t t = P.topic(r);
                     text = join(P.event(r, t));
                     label = t;
                 }});
    d.push_back({"questions", "topic", "Which topic is a question about?", "{text} this question is about [MASK] .", topics, false,
                 [](const Pools& P, Rng& r, std::string& text, std::string&, std::size_t& label) {
                     const std::size_t t = P.topic(r);
                     const double u = r.unit();
                     if (u < 0.4) text = join({"who", r.pick(P.verbs[t]) + "ed", "the", r.pick(P.nouns[t]), "?"});
                     else if (u < 0.7) text = join({"what", "did", r.pick(P.names), r.pick(P.verbs[t]), "?"});
                     else text = join({"where", "is", "the", r.pick(P.nouns[t]), "?"});
                     label = t;
                 }});
    // The pair tasks compare what the two sentences say about polarity or topic, the two things
    // the demo models learn in pretraining (synonymy and attribute lists they do not learn at this
    // size: docs/demo.md). The answer depends on both sentences, so neither alone predicts it.
    // Inference in the corpus's own question form ("... is the X A ? yes"): does the premise entail
    // that the thing has an attribute of the asked polarity?
    d.push_back({"adjective-entailment", "inference", "Does a review entail the asked attribute (is a 'brilliant' thing 'great')?",
                 "{text} {pair} [MASK] .", yes_no, true,
                 [](const Pools& P, Rng& r, std::string& text, std::string& pair, std::size_t& label) {
                     const std::size_t t = P.topic(r);
                     const bool p = r.chance(0.5), q = r.chance(0.5);
                     const std::string n = r.pick(P.nouns[t]), a = P.adj(r, p);
                     std::string b = P.adj(r, q);
                     while (b == a) b = P.adj(r, q);
                     std::vector<std::string> w = {"the", n, "was"};
                     if (r.chance(0.4)) w.push_back(r.pick(degrees()));
                     w.push_back(a);
                     w.push_back(".");
                     text = join(w);
                     pair = join({"is", "the", n, b, "?"});
                     label = (p == q) ? 1 : 0;
                 }});
    d.push_back({"opinion-entailment", "inference", "Does an opinion entail the asked attribute (if someone loved it, was it good)?",
                 "{text} {pair} [MASK] .", yes_no, true,
                 [](const Pools& P, Rng& r, std::string& text, std::string& pair, std::size_t& label) {
                     const std::size_t t = P.topic(r);
                     const bool p = r.chance(0.5), q = r.chance(0.5);
                     const std::string n = r.pick(P.nouns[t]);
                     text = join({r.pick(P.names), r.pick(p ? P.posv : P.negv) + "ed", "the", n, "."});
                     pair = join({"is", "the", n, P.adj(r, q), "?"});
                     label = (p == q) ? 1 : 0;
                 }});
    d.push_back({"review-pairs", "similarity", "Do two reviews of one thing give the same verdict in other words?",
                 "{text} {pair} the two are [MASK] .", same_diff, true,
                 [](const Pools& P, Rng& r, std::string& text, std::string& pair, std::size_t& label) {
                     const std::size_t t = P.topic(r);
                     const bool p = r.chance(0.5), q = r.chance(0.5);
                     const std::string n = r.pick(P.nouns[t]), a = P.adj(r, p);
                     std::string b = P.adj(r, q);
                     while (b == a) b = P.adj(r, q);
                     text = join({"the", n, "was", a, "."});
                     if (r.chance(0.5)) {
                         std::vector<std::string> w = {"the", n, "was"};
                         if (r.chance(0.4)) w.push_back(r.pick(degrees()));
                         w.push_back(b);
                         w.push_back(".");
                         pair = join(w);
                     } else {
                         pair = join({r.pick(P.names), r.pick(q ? P.posv : P.negv) + "ed", "the", n, "."});
                     }
                     label = (p == q) ? 1 : 0;
                 }});
    d.push_back({"agreement", "similarity", "Does a person's opinion agree with a review of the same thing?",
                 "{text} {pair} the two are [MASK] .", same_diff, true,
                 [](const Pools& P, Rng& r, std::string& text, std::string& pair, std::size_t& label) {
                     const std::size_t t = P.topic(r);
                     const bool p = r.chance(0.5), q = r.chance(0.5);
                     const std::string n = r.pick(P.nouns[t]);
                     text = join({r.pick(P.names), r.pick(p ? P.posv : P.negv) + "ed", "the", n, "."});
                     std::vector<std::string> w = {"the", n, "was"};
                     if (r.chance(0.4)) w.push_back(r.pick(degrees()));
                     w.push_back(P.adj(r, q));
                     w.push_back(".");
                     pair = join(w);
                     label = (p == q) ? 1 : 0;
                 }});
    return d;
}

struct GenerativeDef {
    std::string name, description;
    std::function<void(const Pools&, Rng&, std::string&, std::string&)> make;  // input, target
};

// A review in the sentiment tasks' shapes (an event in front, degree words, negation); `noun` and
// the verdict (after negation) come back.
std::vector<std::string> review_words(const Pools& P, Rng& r, std::size_t t, std::string& noun, bool& verdict) {
    const bool p = r.chance(0.5), neg = r.chance(0.3);
    std::vector<std::string> w;
    if (r.chance(0.3)) w = P.event(r, t);
    noun = r.pick(P.nouns[t]);
    for (const auto& x : {std::string("the"), noun, std::string("was")}) w.push_back(x);
    if (neg) w.push_back("not");
    if (r.chance(0.4)) w.push_back(r.pick(degrees()));
    w.push_back(P.adj(r, p));
    w.push_back(".");
    verdict = p != neg;
    return w;
}

std::vector<GenerativeDef> generative_defs() {
    std::vector<GenerativeDef> d;
    // Question answering: the answer is a word of the context (extractive, as SQuAD's).
    d.push_back({"answer", "Answer a question about two sentences with a word from them (who, what thing, what was it like).",
                 [](const Pools& P, Rng& r, std::string& input, std::string& target) {
                     const std::size_t t = P.topic(r);
                     const bool p = r.chance(0.5), q = r.chance(0.5);
                     const std::string n = r.pick(P.nouns[t]), a = P.adj(r, p), who = r.pick(P.names), v = r.pick(q ? P.posv : P.negv);
                     std::vector<std::string> c = {"the", n, "was", a, ".", who, v + "ed", "the", n, "."};
                     if (r.chance(0.5)) c = {who, v + "ed", "the", n, ".", "the", n, "was", a, "."};
                     std::vector<std::string> question;
                     const double u = r.unit();
                     if (u < 1.0 / 3) {
                         question = {"who", v + "ed", "the", n, "?"};
                         target = who;
                     } else if (u < 2.0 / 3) {
                         question = {"what", "was", "the", n, "?"};
                         target = a;
                     } else {
                         question = {"what", "did", who, v, "?"};
                         target = n;
                     }
                     std::vector<std::string> w = c;  // (the language has no word "context": the question follows)
                     w.push_back("question");
                     w.push_back(":");
                     w.insert(w.end(), question.begin(), question.end());
                     input = join(w);
                 }});
    // Summarization: a review shortened to its keyword phrase, the thing and the verdict.
    d.push_back({"summary", "Summarize a review as its keyword phrase: the thing reviewed and the verdict (good or bad).",
                 [](const Pools& P, Rng& r, std::string& input, std::string& target) {
                     const std::size_t t = P.topic(r);
                     std::string noun;
                     bool verdict = false;
                     std::vector<std::string> w = review_words(P, r, t, noun, verdict);
                     for (const char* x : {"this", "story", ":"}) w.push_back(x);  // (no word "summarize" in the language)
                     input = join(w);
                     target = join({noun, verdict ? "good" : "bad"});
                 }});
    return d;
}

std::string example_line(const TaskDef& d, const std::string& text, const std::string& pair, std::size_t label) {
    nlohmann::json j;
    j["text"] = text;
    if (d.pair) j["pair"] = pair;
    j["label"] = d.label_words[label].first;
    return j.dump();
}

}  // namespace

std::vector<TaskFiles> make_tasks(const Lexicon& lex, std::uint64_t seed, std::size_t n_train, std::size_t n_valid) {
    const Pools train_pool(lex, true), valid_pool(lex, false);
    std::vector<TaskFiles> out;
    std::uint64_t k = 0;
    for (const auto& d : task_defs(lex)) {
        TaskFiles f;
        f.name = d.name;
        f.category = d.category;
        f.description = d.description;
        Rng r(seed * 1000003ull + (++k));
        std::string text, pair;
        std::size_t label = 0;
        // Balanced classes: example i gets class i mod K (the generator is asked again until it agrees).
        auto fill = [&](const Pools& P, std::size_t n, std::vector<std::string>& lines) {
            for (std::size_t i = 0; i < n; ++i) {
                const std::size_t want = i % d.label_words.size();
                do d.make(P, r, text, pair, label);
                while (label != want);
                lines.push_back(example_line(d, text, pair, label));
            }
            // Shuffle so the classes are not in a fixed cycle.
            for (std::size_t i = lines.size(); i > 1; --i) std::swap(lines[i - 1], lines[static_cast<std::size_t>(r.below(i))]);
        };
        fill(train_pool, n_train, f.train_lines);
        fill(valid_pool, n_valid, f.validation_lines);
        nlohmann::json t;
        t["name"] = d.name;
        t["category"] = d.category;
        t["description"] = d.description;
        t["format"] = "jsonl";
        t["train"] = "train.jsonl";
        t["validation"] = "validation.jsonl";
        t["fields"] = d.pair ? nlohmann::json{{"text", "text"}, {"pair", "pair"}, {"label", "label"}}
                             : nlohmann::json{{"text", "text"}, {"label", "label"}};
        t["labels"] = nlohmann::json::array();
        nlohmann::json words = nlohmann::json::object();
        for (const auto& [label_name, word] : d.label_words) {
            t["labels"].push_back(label_name);
            words[label_name] = word;
        }
        t["label_words"] = words;
        t["template"] = d.template_text;
        t["max_length"] = 64;
        f.task_json = t.dump(2) + "\n";
        out.push_back(std::move(f));
    }
    // Text-to-text tasks for the demo T5s, after the others so their streams stay as they were.
    for (const auto& g : generative_defs()) {
        TaskFiles f;
        f.name = g.name;
        f.category = "generation";
        f.description = g.description;
        Rng r(seed * 1000003ull + (++k));
        std::string input, target;
        auto fill = [&](const Pools& P, std::size_t n, std::vector<std::string>& lines) {
            for (std::size_t i = 0; i < n; ++i) {
                g.make(P, r, input, target);
                lines.push_back(nlohmann::json{{"input", input}, {"target", target}}.dump());
            }
        };
        fill(train_pool, n_train, f.train_lines);
        fill(valid_pool, n_valid, f.validation_lines);
        nlohmann::json t = {{"name", g.name},
                            {"category", f.category},
                            {"description", g.description},
                            {"type", "seq2seq"},
                            {"format", "jsonl"},
                            {"train", "train.jsonl"},
                            {"validation", "validation.jsonl"},
                            {"fields", {{"prompt", "input"}, {"response", "target"}}},
                            {"max_length", 64}};
        f.task_json = t.dump(2) + "\n";
        out.push_back(std::move(f));
    }
    return out;
}

void write_demo_data(const std::string& out_dir, std::uint64_t seed, std::size_t corpus_lines, std::size_t n_train,
                     std::size_t n_valid) {
    make_dirs(out_dir);
    const Lexicon lex = Lexicon::build(seed);
    write_file_atomic(out_dir + "/tokenizer.json", tokenizer_json(lex).dump(1) + "\n");
    if (corpus_lines > 0) {
        AtomicFile f(out_dir + "/corpus.txt");
        std::string buf;
        write_corpus(lex, seed ^ 0xC0FFEEull, corpus_lines, [&](const std::string& line) {
            buf += line;
            buf += '\n';
            if (buf.size() > (1u << 20)) {
                f.write(buf);
                buf.clear();
            }
        });
        f.write(buf);
        f.commit();
    }
    make_dirs(out_dir + "/tasks");
    for (const auto& t : make_tasks(lex, seed, n_train, n_valid)) {
        const std::string dir = out_dir + "/tasks/" + t.name;
        make_dirs(dir);
        auto lines = [](const std::vector<std::string>& v) {
            std::string s;
            for (const auto& l : v) s += l + "\n";
            return s;
        };
        write_file_atomic(dir + "/task.json", t.task_json);
        write_file_atomic(dir + "/train.jsonl", lines(t.train_lines));
        write_file_atomic(dir + "/validation.jsonl", lines(t.validation_lines));
    }
}

}  // namespace dt::demo
