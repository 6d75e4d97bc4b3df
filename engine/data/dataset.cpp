#include "data/dataset.h"

#include "core/error.h"
#include "io/limits.h"
#include "core/splitmix.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <fstream>

namespace dt {

Dataset read_tokenized_jsonl(const std::string& path, std::vector<std::string> labels, bool grow_labels) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open data file", path);
    Dataset d;
    d.source = path;
    d.labels = std::move(labels);
    std::string line;
    std::size_t lineno = 0;
    while (limits::getline_limited(in, line, path, lineno + 1)) {
        ++lineno;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = path + ":" + std::to_string(lineno);
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception&) {
            throw Error("invalid JSON", where, "each line must be one JSON object");
        }
        if (!j.is_object() || !j.contains("input_ids") || !j["input_ids"].is_array())
            throw Error("missing list field 'input_ids'", where);
        Example ex;
        for (const auto& v : j["input_ids"]) {
            if (!v.is_number_integer() || v.get<std::int64_t>() < 0) throw Error("'input_ids' must hold non-negative integers", where);
            ex.ids.push_back(v.get<std::int64_t>());
        }
        if (ex.ids.empty()) throw Error("'input_ids' is empty", where);
        if (j.contains("token_type_ids")) {
            for (const auto& v : j["token_type_ids"]) {
                if (!v.is_number_integer()) throw Error("'token_type_ids' must hold integers", where);
                ex.type_ids.push_back(v.get<std::int64_t>());
            }
            if (ex.type_ids.size() != ex.ids.size()) throw Error("'token_type_ids' and 'input_ids' differ in length", where);
        }
        if (!j.contains("label")) throw Error("missing field 'label'", where);
        const auto& lab = j["label"];
        if (lab.is_number_integer()) {
            ex.label = lab.get<std::int64_t>();
            if (ex.label < 0) throw Error("'label' must be non-negative", where);
        } else if (lab.is_string()) {
            const auto s = lab.get<std::string>();
            auto it = std::find(d.labels.begin(), d.labels.end(), s);
            if (it == d.labels.end()) {
                if (!grow_labels) throw Error("unknown label '" + s + "'", where, "the label vocabulary comes from the training file");
                d.labels.push_back(s);
                it = d.labels.end() - 1;
            }
            ex.label = it - d.labels.begin();
        } else if (lab.is_number()) {
            ex.target = lab.get<double>();
            ex.label = -1;
            d.regression = true;
        } else {
            throw Error("'label' must be an integer, a string or a number", where);
        }
        d.examples.push_back(std::move(ex));
    }
    if (d.examples.empty()) throw Error("no examples", path);
    return d;
}

Batch collate(const Dataset& data, const std::vector<std::size_t>& indices, std::int64_t pad_id) {
    std::size_t T = 0;
    for (auto i : indices) T = std::max(T, data.examples[i].ids.size());
    const auto B = static_cast<std::int64_t>(indices.size());
    at::Tensor ids = torch::full({B, static_cast<std::int64_t>(T)}, pad_id, torch::kLong);
    at::Tensor mask = torch::zeros({B, static_cast<std::int64_t>(T)}, torch::kLong);
    at::Tensor types = torch::zeros({B, static_cast<std::int64_t>(T)}, torch::kLong);
    at::Tensor labels = torch::empty({B}, torch::kLong);
    at::Tensor targets = torch::empty({B}, torch::kFloat);
    at::Tensor mask_pos = torch::empty({B}, torch::kLong);
    at::Tensor lm = torch::full({B, static_cast<std::int64_t>(T)}, -100, torch::kLong);
    auto la = lm.accessor<std::int64_t, 2>();
    auto ia = ids.accessor<std::int64_t, 2>();
    auto ma = mask.accessor<std::int64_t, 2>();
    auto ta = types.accessor<std::int64_t, 2>();
    Batch b;
    for (std::int64_t r = 0; r < B; ++r) {
        const auto& ex = data.examples[indices[static_cast<std::size_t>(r)]];
        for (std::size_t c = 0; c < ex.lm_labels.size() && c < T; ++c) la[r][static_cast<std::int64_t>(c)] = ex.lm_labels[c];
        for (std::size_t c = 0; c < ex.ids.size(); ++c) {
            ia[r][static_cast<std::int64_t>(c)] = ex.ids[c];
            ma[r][static_cast<std::int64_t>(c)] = 1;
            if (!ex.type_ids.empty()) ta[r][static_cast<std::int64_t>(c)] = ex.type_ids[c];
        }
        labels[r] = ex.label;
        targets[r] = ex.target;
        mask_pos[r] = ex.mask_pos;
        b.tokens += static_cast<std::int64_t>(ex.ids.size());
    }
    b.inputs.input_ids = ids;
    b.inputs.attention_mask = mask;
    b.inputs.token_type_ids = types;
    b.labels = labels;
    b.targets = targets;
    b.mask_pos = mask_pos;
    // Label words are read at one mask per example: the LM head runs there only (exact, and it
    // skips the B x T x V vocabulary projection).
    if (!data.label_word_ids.empty()) b.inputs.score_positions = mask_pos;
    b.lm_labels = lm;
    if (data.seq2seq) {  // targets padded with -100, given to the model as labels (T5 shifts them right)
        std::size_t U = 1;
        for (std::int64_t r = 0; r < B; ++r) U = std::max(U, data.examples[indices[static_cast<std::size_t>(r)]].target_ids.size());
        at::Tensor tl = torch::full({B, static_cast<std::int64_t>(U)}, -100, torch::kLong);
        auto tla = tl.accessor<std::int64_t, 2>();
        for (std::int64_t r = 0; r < B; ++r) {
            const auto& t = data.examples[indices[static_cast<std::size_t>(r)]].target_ids;
            for (std::size_t c = 0; c < t.size(); ++c) tla[r][static_cast<std::int64_t>(c)] = t[c];
        }
        b.lm_labels = tl;
        b.inputs.labels = tl;
    }
    return b;
}

Batch pack_causal(const Dataset& data, const std::vector<std::size_t>& indices, std::int64_t pad_id) {
    std::size_t L = 1;
    for (auto i : indices) L = std::max(L, data.examples[i].ids.size());
    // First fit, longest first (ties in batch order): each row is a list of examples.
    std::vector<std::size_t> order(indices.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return data.examples[indices[a]].ids.size() > data.examples[indices[b]].ids.size();
    });
    std::vector<std::vector<std::size_t>> rows;
    std::vector<std::size_t> used;
    for (auto o : order) {
        const std::size_t n = data.examples[indices[o]].ids.size();
        std::size_t r = 0;
        while (r < rows.size() && used[r] + n > L) ++r;
        if (r == rows.size()) {
            rows.emplace_back();
            used.push_back(0);
        }
        rows[r].push_back(indices[o]);
        used[r] += n;
    }
    const auto B = static_cast<std::int64_t>(rows.size()), T = static_cast<std::int64_t>(L);
    at::Tensor ids = torch::full({B, T}, pad_id, torch::kLong), mask = torch::zeros({B, T}, torch::kLong);
    at::Tensor pos = torch::zeros({B, T}, torch::kLong), seg = torch::zeros({B, T}, torch::kLong);
    at::Tensor lm = torch::full({B, T}, -100, torch::kLong);
    auto ia = ids.accessor<std::int64_t, 2>(), ma = mask.accessor<std::int64_t, 2>(), pa = pos.accessor<std::int64_t, 2>(),
         sa = seg.accessor<std::int64_t, 2>(), la = lm.accessor<std::int64_t, 2>();
    Batch b;
    for (std::int64_t r = 0; r < B; ++r) {
        std::int64_t c = 0, s = 0;
        for (auto i : rows[static_cast<std::size_t>(r)]) {
            const auto& ex = data.examples[i];
            ++s;
            for (std::size_t k = 0; k < ex.ids.size(); ++k, ++c) {
                ia[r][c] = ex.ids[k];
                ma[r][c] = 1;
                pa[r][c] = static_cast<std::int64_t>(k);
                sa[r][c] = s;
                // Position 0 of an example is never a target (nothing precedes it in its example);
                // in a packed row it would be predicted from the example before.
                if (k > 0 && k < ex.lm_labels.size()) la[r][c] = ex.lm_labels[k];
            }
            b.tokens += static_cast<std::int64_t>(ex.ids.size());
        }
    }
    b.inputs.input_ids = ids;
    b.inputs.attention_mask = mask;
    b.inputs.token_type_ids = torch::zeros({B, T}, torch::kLong);
    b.inputs.position_ids = pos;
    b.inputs.segment_ids = seg;
    b.labels = torch::full({B}, -1, torch::kLong);
    b.targets = torch::zeros({B}, torch::kFloat);
    b.mask_pos = torch::zeros({B}, torch::kLong);
    b.lm_labels = lm;
    return b;
}

namespace {

// `m` items cut into `k` non-empty runs (1 <= k <= m), the cuts drawn from `state`.
std::vector<std::size_t> random_segments(std::size_t m, std::size_t k, std::uint64_t& state) {
    std::vector<std::size_t> cuts(m - 1);
    std::iota(cuts.begin(), cuts.end(), std::size_t{1});
    for (std::size_t i = 0; i + 1 < k && i < cuts.size(); ++i) {  // partial Fisher-Yates: k-1 distinct cuts
        state = splitmix64(state);
        std::swap(cuts[i], cuts[i + static_cast<std::size_t>(state % (cuts.size() - i))]);
    }
    cuts.resize(k - 1);
    std::sort(cuts.begin(), cuts.end());
    std::vector<std::size_t> len;
    std::size_t prev = 0;
    for (const auto c : cuts) {
        len.push_back(c - prev);
        prev = c;
    }
    len.push_back(m - prev);
    return len;
}

}  // namespace

Batch span_corruption_batch(const Dataset& data, const std::vector<std::size_t>& indices, std::int64_t pad_id, std::uint64_t key) {
    if (data.sentinel_id < 0 || data.eos_id < 0) throw Error("a span-corruption dataset needs a sentinel and an EOS token", data.source);
    Dataset corrupted;
    static_cast<DatasetInfo&>(corrupted) = data;
    corrupted.seq2seq = true;
    std::vector<std::size_t> rows;
    for (std::size_t r = 0; r < indices.size(); ++r) {
        const auto& x = data.examples[indices[r]].ids;
        Example ex;
        ex.label = 0;
        const std::size_t n = x.size();
        std::uint64_t state = splitmix64(key ^ splitmix64(0x5A4Eull + indices[r]));  // the example's, wherever its row
        if (n < 2) {  // nothing to hide and keep both: the whole text is the target
            ex.ids = {data.sentinel_id, data.eos_id};
            ex.target_ids = {data.sentinel_id};
            ex.target_ids.insert(ex.target_ids.end(), x.begin(), x.end());
        } else {
            const std::size_t noise = std::clamp<std::size_t>(static_cast<std::size_t>(std::llround(static_cast<double>(n) * data.noise_density)), 1, n - 1);
            const std::size_t spans =
                std::clamp<std::size_t>(static_cast<std::size_t>(std::llround(static_cast<double>(noise) / data.mean_span)), 1, std::min(noise, n - noise));
            const auto noise_len = random_segments(noise, spans, state), keep_len = random_segments(n - noise, spans, state);
            std::size_t at = 0;
            for (std::size_t s = 0; s < spans; ++s) {  // kept text first, then a hidden span, as T5 lays them out
                ex.ids.insert(ex.ids.end(), x.begin() + static_cast<std::ptrdiff_t>(at), x.begin() + static_cast<std::ptrdiff_t>(at + keep_len[s]));
                at += keep_len[s];
                ex.ids.push_back(data.sentinel_id);
                ex.target_ids.push_back(data.sentinel_id);
                ex.target_ids.insert(ex.target_ids.end(), x.begin() + static_cast<std::ptrdiff_t>(at), x.begin() + static_cast<std::ptrdiff_t>(at + noise_len[s]));
                at += noise_len[s];
            }
            ex.ids.push_back(data.eos_id);
        }
        ex.target_ids.push_back(data.eos_id);
        corrupted.examples.push_back(std::move(ex));
        rows.push_back(r);
    }
    return collate(corrupted, rows, pad_id);
}

void mask_batch(Batch& b, const Dataset& data, std::uint64_t key, const std::vector<std::size_t>& indices) {
    if (indices.size() != static_cast<std::size_t>(b.inputs.input_ids.size(0))) throw Error("one example index per row is needed", "mask_batch");
    if (data.mask_token_id < 0 || data.mlm_vocab_size <= data.mlm_first_regular_id)
        throw Error("a masked-LM dataset needs a mask token and a vocabulary", data.source);
    auto ia = b.inputs.input_ids.accessor<std::int64_t, 2>();
    auto ma = b.inputs.attention_mask.accessor<std::int64_t, 2>();
    auto la = b.lm_labels.accessor<std::int64_t, 2>();
    const auto regular = static_cast<std::uint64_t>(data.mlm_vocab_size - data.mlm_first_regular_id);
    const double scale = 1.0 / 9007199254740992.0;
    for (std::int64_t r = 0; r < ia.size(0); ++r)
        for (std::int64_t c = 0; c < ia.size(1); ++c) {
            la[r][c] = -100;
            const std::int64_t id = ia[r][c];
            if (!ma[r][c] || id < data.mlm_first_regular_id) continue;
            const std::uint64_t ex = indices[static_cast<std::size_t>(r)];
            const std::uint64_t h = splitmix64(key ^ splitmix64(ex << 32 ^ static_cast<std::uint64_t>(c)));
            if (static_cast<double>(h >> 11) * scale >= data.mlm_probability) continue;
            la[r][c] = id;
            const std::uint64_t h2 = splitmix64(h);
            const double u = static_cast<double>(h2 >> 11) * scale;
            if (u < 0.8) ia[r][c] = data.mask_token_id;
            else if (u < 0.9) ia[r][c] = data.mlm_first_regular_id + static_cast<std::int64_t>(splitmix64(h2) % regular);
        }
}

}  // namespace dt
