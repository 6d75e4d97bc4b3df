#include "generate/generate.h"

#include "core/error.h"
#include "io/json_util.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

namespace dt {

namespace {

std::vector<std::int64_t> id_list(const nlohmann::json& v) {
    if (v.is_number_integer()) return {v.get<std::int64_t>()};
    std::vector<std::int64_t> out;
    if (v.is_array())
        for (const auto& e : v)
            if (e.is_number_integer()) out.push_back(e.get<std::int64_t>());
    return out;
}

void read_fields(GenerationOptions& g, const nlohmann::json& j) {
    if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) g.eos_token_ids = id_list(j["eos_token_id"]);
    if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) g.pad_token_id = j["pad_token_id"].get<std::int64_t>();
    if (j.contains("decoder_start_token_id") && j["decoder_start_token_id"].is_number_integer())
        g.decoder_start_token_id = j["decoder_start_token_id"].get<std::int64_t>();
    if (j.contains("max_new_tokens") && j["max_new_tokens"].is_number_integer()) g.max_new_tokens = j["max_new_tokens"].get<std::int64_t>();
    if (j.contains("do_sample") && j["do_sample"].is_boolean()) g.do_sample = j["do_sample"].get<bool>();
    if (j.contains("temperature") && j["temperature"].is_number()) g.temperature = j["temperature"].get<double>();
    if (j.contains("top_k") && j["top_k"].is_number_integer()) g.top_k = j["top_k"].get<std::int64_t>();
    if (j.contains("top_p") && j["top_p"].is_number()) g.top_p = j["top_p"].get<double>();
    if (j.contains("num_beams") && j["num_beams"].is_number_integer()) g.num_beams = j["num_beams"].get<std::int64_t>();
    if (j.contains("length_penalty") && j["length_penalty"].is_number()) g.length_penalty = j["length_penalty"].get<double>();
    if (j.contains("early_stopping")) {
        if (j["early_stopping"].is_boolean()) g.early_stopping = j["early_stopping"].get<bool>() ? "true" : "false";
        else if (j["early_stopping"].is_string()) g.early_stopping = j["early_stopping"].get<std::string>();
    }
}

// transformers' TopKLogitsWarper and TopPLogitsWarper: filtered entries become -inf.
at::Tensor warp(at::Tensor logits, const GenerationOptions& g) {
    const float ninf = -std::numeric_limits<float>::infinity();
    if (g.temperature != 1.0) logits = logits / g.temperature;
    if (g.top_k > 0 && g.top_k < logits.size(1)) {
        const at::Tensor kth = std::get<0>(logits.topk(g.top_k, 1)).narrow(1, g.top_k - 1, 1);
        logits = logits.masked_fill(logits < kth, ninf);
    }
    if (g.top_p < 1.0) {
        auto [sorted, idx] = logits.sort(1, /*descending=*/false);
        const at::Tensor cum = sorted.softmax(1).cumsum(1);
        at::Tensor remove = cum <= (1.0 - g.top_p);
        remove.select(1, remove.size(1) - 1).fill_(false);  // keep at least the best token
        logits = logits.masked_fill(remove.scatter(1, idx, remove), ninf);
    }
    return logits;
}

}  // namespace

GenerationOptions GenerationOptions::for_model(const ModelConfig& cfg, const std::string& folder) {
    GenerationOptions g;
    read_fields(g, cfg.raw);
    g.max_new_tokens = 20;
    g.do_sample = false;
    if (!folder.empty()) {
        const std::string path = folder + "/generation_config.json";
        std::error_code ec;
        if (std::filesystem::is_regular_file(path, ec)) read_fields(g, json::load_file(path));
    }
    return g;
}

void GenerationOptions::validate() const {
    if (max_new_tokens < 0) throw Error("max_new_tokens must be >= 0", "max_new_tokens");
    if (do_sample && !(temperature > 0.0)) throw Error("temperature must be > 0 when sampling", "temperature");
    if (top_k < 0) throw Error("top_k must be >= 0", "top_k");
    if (!(top_p > 0.0 && top_p <= 1.0)) throw Error("top_p must be in (0, 1]", "top_p");
    if (num_beams < 1) throw Error("num_beams must be >= 1", "num_beams");
    if (num_beams > 1 && do_sample) throw Error("beam search does not sample", "num_beams", "use num_beams 1 with sampling, or greedy beams");
    if (early_stopping != "true" && early_stopping != "false" && early_stopping != "never")
        throw Error("early_stopping is '" + early_stopping + "'", "early_stopping", "true, false or never");
    if (!std::isfinite(length_penalty)) throw Error("length_penalty must be finite", "length_penalty");
}

namespace {

void select_rows(at::Tensor& t, const at::Tensor& rows) {
    if (t.defined()) t = t.index_select(0, rows);
}

// The running state of a batch being decoded: the prompt, the tokens so far, the mask and the KV
// cache; beam search reorders all of them by row.
struct Decoding {
    TransformerModel& model;
    const GenerationOptions& opts;
    bool seq2seq;
    at::Tensor ids, mask;  // encoder / prompt input
    at::Tensor seq;        // what generate returns: prompt (decoder-only) or start token, then new tokens
    at::Tensor full_mask;  // decoder-only: the mask of everything in `seq`
    KVCache cache;
    std::int64_t virtual_tokens = 0;  // a soft prompt's positions, found in the cache after the first step

    // The next-token logits (rows, V) in float.
    at::Tensor logits(std::int64_t step) {
        const bool incremental = opts.use_cache && step > 0;
        ForwardInputs in;
        in.cache = opts.use_cache ? &cache : nullptr;
        if (seq2seq) {
            in.input_ids = ids;
            in.attention_mask = mask;
            in.decoder_input_ids = incremental ? seq.narrow(1, seq.size(1) - 1, 1) : seq;
        } else {
            // Positions from the mask, as transformers' prepare_inputs_for_generation: pads get 1.
            at::Tensor pos = full_mask.cumsum(1) - 1;
            pos.masked_fill_(full_mask == 0, 1);
            if (incremental) {
                in.input_ids = seq.narrow(1, seq.size(1) - 1, 1);
                in.attention_mask = full_mask.narrow(1, full_mask.size(1) - 1, 1);
                in.position_ids = pos.narrow(1, pos.size(1) - 1, 1) + virtual_tokens;
            } else {
                in.input_ids = seq;
                in.attention_mask = full_mask;
                in.position_ids = pos;
            }
        }
        const ForwardOutputs out = model.forward(in);
        if (!out.logits.defined() || out.logits.dim() != 3) throw Error(model.name() + " produced no token logits", "model");
        if (opts.use_cache && step == 0 && !seq2seq) virtual_tokens = cache.length() - full_mask.size(1);
        return out.logits.select(1, out.logits.size(1) - 1).to(torch::kFloat);
    }
    void append(const at::Tensor& next) {
        seq = torch::cat({seq, next.unsqueeze(1)}, 1);
        if (!seq2seq) full_mask = torch::cat({full_mask, torch::ones({next.size(0), 1}, full_mask.options())}, 1);
    }
    // Keeps rows `rows` (int64, one per new row), in that order: beams are reordered, and the
    // inputs repeated for each beam.
    void select(const at::Tensor& rows) {
        for (at::Tensor* t : {&ids, &mask, &seq, &full_mask, &cache.mask, &cache.encoder_output, &cache.encoder_mask}) select_rows(*t, rows);
        for (auto& [k, v] : cache.layers) {
            select_rows(k, rows);
            select_rows(v, rows);
        }
    }
};

struct Hypothesis {
    double score;
    std::vector<std::int64_t> tokens;  // seq's row (prompt or start token included), without EOS
};

// transformers' BeamHypotheses: the best `beams` finished hypotheses of one row.
struct Hypotheses {
    std::size_t beams;
    double length_penalty;
    std::vector<Hypothesis> kept;
    double worst = std::numeric_limits<double>::infinity();
    void add(std::vector<std::int64_t> tokens, double sum_logprobs, std::int64_t generated) {
        const double score = sum_logprobs / std::pow(static_cast<double>(generated), length_penalty);
        if (kept.size() >= beams && !(score > worst)) return;
        kept.push_back({score, std::move(tokens)});
        if (kept.size() > beams) {
            const auto w = std::min_element(kept.begin(), kept.end(), [](const Hypothesis& a, const Hypothesis& b) { return a.score < b.score; });
            kept.erase(w);
        }
        worst = std::min_element(kept.begin(), kept.end(), [](const Hypothesis& a, const Hypothesis& b) { return a.score < b.score; })->score;
    }
    // Can no live beam (best sum of log-probabilities `best`, `generated` tokens after this step) do better?
    bool done(double best, std::int64_t generated, std::int64_t max_generated, const std::string& early) const {
        if (kept.size() < beams) return false;
        if (early == "true") return true;
        const std::int64_t len = (early == "never" && length_penalty > 0) ? max_generated : generated;
        return worst >= best / std::pow(static_cast<double>(len), length_penalty);
    }
};

at::Tensor beam_search(Decoding& d, std::int64_t B, std::int64_t pad, const GenerationStep& on_step) {
    const auto& opts = d.opts;
    const std::int64_t K = opts.num_beams;
    const std::int64_t prompt = d.seq.size(1);
    d.select(torch::arange(B, d.seq.options()).repeat_interleave(K));
    // Only the first beam of each row is live at the start, so the first step does not pick K copies.
    std::vector<double> beam_scores(static_cast<std::size_t>(B * K), -1e9);
    for (std::int64_t b = 0; b < B; ++b) beam_scores[static_cast<std::size_t>(b * K)] = 0;
    std::vector<Hypotheses> hyps(static_cast<std::size_t>(B), Hypotheses{static_cast<std::size_t>(K), opts.length_penalty, {}});
    std::vector<char> done(static_cast<std::size_t>(B), 0);
    auto is_eos = [&](std::int64_t t) { return std::find(opts.eos_token_ids.begin(), opts.eos_token_ids.end(), t) != opts.eos_token_ids.end(); };
    auto row_of = [&](std::int64_t r) {
        const at::Tensor s = d.seq[r].cpu().contiguous();
        return std::vector<std::int64_t>(s.data_ptr<std::int64_t>(), s.data_ptr<std::int64_t>() + s.numel());
    };
    for (std::int64_t step = 0; step < opts.max_new_tokens; ++step) {
        const at::Tensor logp = torch::log_softmax(d.logits(step), 1);
        const std::int64_t V = logp.size(1);
        const at::Tensor scores = (logp + torch::tensor(beam_scores, torch::kDouble).to(logp.device()).to(torch::kFloat).unsqueeze(1)).view({B, K * V});
        auto [top_scores, top_ids] = scores.topk(std::min<std::int64_t>(2 * K, K * V), 1, true, true);
        top_scores = top_scores.to(torch::kDouble).cpu().contiguous();
        top_ids = top_ids.cpu().contiguous();
        const auto ts = top_scores.accessor<double, 2>();
        const auto ti = top_ids.accessor<std::int64_t, 2>();
        const std::int64_t generated = step + 1;  // new tokens after this step, this one included
        std::vector<std::int64_t> rows, next;
        std::vector<double> next_scores;
        for (std::int64_t b = 0; b < B; ++b) {
            if (done[static_cast<std::size_t>(b)]) {  // a finished row keeps K padded beams
                for (std::int64_t k = 0; k < K; ++k) {
                    rows.push_back(b * K);
                    next.push_back(std::max<std::int64_t>(pad, 0));
                    next_scores.push_back(0);
                }
                continue;
            }
            std::int64_t taken = 0;
            for (std::int64_t rank = 0; rank < ts.size(1) && taken < K; ++rank) {
                const std::int64_t beam = ti[b][rank] / V, token = ti[b][rank] % V, row = b * K + beam;
                if (is_eos(token)) {
                    if (rank >= K) continue;  // an EOS below the top K does not end a hypothesis
                    hyps[static_cast<std::size_t>(b)].add(row_of(row), ts[b][rank], generated);
                    continue;
                }
                rows.push_back(row);
                next.push_back(token);
                next_scores.push_back(ts[b][rank]);
                ++taken;
            }
            if (taken < K) throw Error("beam search ran out of candidates (num_beams larger than half the vocabulary?)", "num_beams");
            done[static_cast<std::size_t>(b)] =
                hyps[static_cast<std::size_t>(b)].done(ts[b][0], generated, opts.max_new_tokens, opts.early_stopping) ? 1 : 0;
        }
        beam_scores = next_scores;
        const at::Tensor rows_t = torch::tensor(rows, torch::kLong).to(d.seq.device());
        d.select(rows_t);
        const at::Tensor next_t = torch::tensor(next, torch::kLong).to(d.seq.device());
        d.append(next_t);
        if (on_step && !on_step(next_t.view({B, K}).select(1, 0))) break;
        if (std::all_of(done.begin(), done.end(), [](char x) { return x != 0; })) break;
    }
    // Rows still open: their live beams are hypotheses too, as long as they are.
    for (std::int64_t b = 0; b < B; ++b) {
        if (done[static_cast<std::size_t>(b)]) continue;
        for (std::int64_t k = 0; k < K; ++k) {
            auto t = row_of(b * K + k);
            const auto gen = static_cast<std::int64_t>(t.size()) - prompt;
            if (gen > 0) hyps[static_cast<std::size_t>(b)].add(std::move(t), beam_scores[static_cast<std::size_t>(b * K + k)], gen);
        }
    }
    // As transformers lays them out: one column more than the longest best hypothesis (at most the
    // maximum length), EOS after each shorter one, then pads.
    std::vector<const Hypothesis*> best;
    std::size_t longest = 0;
    for (const auto& h : hyps) {
        const auto it = std::max_element(h.kept.begin(), h.kept.end(), [](const Hypothesis& a, const Hypothesis& b) { return a.score < b.score; });
        if (it == h.kept.end()) throw Error("beam search finished no hypothesis", "num_beams");
        best.push_back(&*it);
        longest = std::max(longest, it->tokens.size());
    }
    longest = std::min(longest + 1, static_cast<std::size_t>(prompt + opts.max_new_tokens));
    at::Tensor out = torch::full({B, static_cast<std::int64_t>(longest)}, std::max<std::int64_t>(pad, 0), torch::kLong);
    auto oa = out.accessor<std::int64_t, 2>();
    for (std::int64_t b = 0; b < B; ++b) {
        const auto& h = *best[static_cast<std::size_t>(b)];
        for (std::size_t c = 0; c < h.tokens.size() && c < longest; ++c) oa[b][static_cast<std::int64_t>(c)] = h.tokens[c];
        if (h.tokens.size() < longest && !opts.eos_token_ids.empty()) oa[b][static_cast<std::int64_t>(h.tokens.size())] = opts.eos_token_ids.front();
    }
    return out.to(d.seq.device());
}

}  // namespace

at::Tensor generate(TransformerModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask, const GenerationOptions& opts,
                    const GenerationStep& on_step) {
    opts.validate();
    if (model.is_base_model()) throw Error(model.name() + " has no language-model head to generate with", "model", "load a *ForCausalLM or T5ForConditionalGeneration model");
    torch::NoGradGuard ng;
    const bool seq2seq = model.is_encoder_decoder();
    const auto B = input_ids.size(0);
    const auto lopts = input_ids.options().dtype(torch::kLong);
    Decoding d{model, opts, seq2seq, input_ids.to(torch::kLong), {}, {}, {}, {}, 0};
    d.mask = attention_mask.defined() ? attention_mask.to(torch::kLong) : torch::ones_like(d.ids);
    const std::int64_t pad = opts.pad_token_id >= 0 ? opts.pad_token_id : (opts.eos_token_ids.empty() ? -1 : opts.eos_token_ids[0]);
    std::int64_t start = opts.decoder_start_token_id;
    if (seq2seq && start < 0) start = model.config().get_int_or("decoder_start_token_id", model.config().get_int_or("pad_token_id", 0));
    d.seq = seq2seq ? torch::full({B, 1}, start, lopts) : d.ids;
    d.full_mask = d.mask;
    model.eval();
    if (opts.num_beams > 1 && opts.max_new_tokens > 0) return beam_search(d, B, pad, on_step);
    at::Tensor unfinished = torch::ones({B}, lopts.dtype(torch::kBool));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(opts.seed);
    for (std::int64_t step = 0; step < opts.max_new_tokens; ++step) {
        const at::Tensor logits = d.logits(step);
        at::Tensor next;
        if (opts.do_sample) {
            const at::Tensor probs = warp(logits, opts).softmax(1);
            next = torch::multinomial(probs, 1, false, gen).squeeze(1);
        } else {
            next = logits.argmax(1);
        }
        if (pad >= 0) next = torch::where(unfinished, next, torch::full_like(next, pad));
        d.append(next);
        for (const auto eos : opts.eos_token_ids) unfinished = unfinished & (next != eos);
        if (on_step && !on_step(next)) break;
        if (!opts.eos_token_ids.empty() && !unfinished.any().item<bool>()) break;
    }
    return d.seq;
}

}  // namespace dt
