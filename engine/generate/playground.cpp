#include "generate/playground.h"

#include "core/error.h"
#include "data/text_data.h"
#include "tokenizers/tokenizer.h"
#include "train/run_spec.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>

namespace dt {
namespace {

std::int64_t mask_id(const tok::Tokenizer& tk, const std::string& spelled) {
    for (const std::string& t : {spelled, std::string("[MASK]"), std::string("<mask>")})
        if (!t.empty() && tk.token_to_id(t) >= 0) return tk.token_to_id(t);
    return -1;
}

}  // namespace

PlaygroundAnswer playground_answer(TransformerModel& model, const tok::Tokenizer& tk, const PlaygroundRequest& rq,
                                   const std::function<bool(const std::string&)>& on_text) {
    torch::NoGradGuard ng;
    model.eval();
    if (rq.input.find_first_not_of(" \t\r\n") == std::string::npos) throw Error("the input is empty", "input", "type a sentence");
    const auto enc = tk.encode(rq.input);
    if (enc.ids.empty()) throw Error("the input encodes to no tokens", "input");
    ForwardInputs in;
    in.input_ids = torch::tensor(enc.ids, torch::kLong).unsqueeze(0);
    if (model.is_encoder_decoder()) in.decoder_input_ids = torch::zeros({1, 1}, torch::kLong);
    model.validate_inputs(in);
    in.decoder_input_ids = at::Tensor();
    PlaygroundAnswer a;
    const bool masked = model.name().find("ForMaskedLM") != std::string::npos;
    if (!masked && !model.is_base_model() && (model.is_encoder_decoder() || model.name().find("ForCausalLM") != std::string::npos)) {
        a.kind = "generation";
        std::vector<std::int64_t> generated;
        const at::Tensor out = generate(model, in.input_ids, {}, rq.generation, [&](const at::Tensor& next) {
            if (rq.generation.num_beams > 1) return true;
            generated.push_back(next[0].item<std::int64_t>());
            return on_text ? on_text(tk.decode(generated)) : true;
        });
        const std::int64_t from = model.is_encoder_decoder() ? 1 : in.input_ids.size(1);
        std::vector<std::int64_t> tokens(out[0].data_ptr<std::int64_t>() + from, out[0].data_ptr<std::int64_t>() + out.size(1));
        a.text = tk.decode(tokens);
        if (rq.generation.num_beams > 1 && on_text) on_text(a.text);
        return a;
    }
    const ForwardOutputs out = model.forward(in);
    if (!out.logits.defined()) throw Error(model.name() + " has no head to answer with", "model");
    if (masked) {
        const std::int64_t mid = mask_id(tk, rq.mask_token);
        const auto pos = std::find(enc.ids.begin(), enc.ids.end(), mid);
        if (mid < 0 || pos == enc.ids.end())
            throw Error("the input has no mask token", "input", "put " + (rq.mask_token.empty() ? std::string("[MASK]") : rq.mask_token) + " where the word goes");
        const at::Tensor logits = out.logits[0][pos - enc.ids.begin()].to(torch::kFloat);
        if (!rq.label_words.empty()) {
            a.kind = "labels";
            const std::vector<std::int64_t> ids = label_word_ids(tk, rq.labels, rq.label_words);
            const at::Tensor p = logits.index_select(0, torch::tensor(ids, torch::kLong)).softmax(0);
            for (std::size_t k = 0; k < ids.size(); ++k) a.scores.emplace_back(rq.labels[k], p[static_cast<std::int64_t>(k)].item<double>());
        } else {
            a.kind = "fill-mask";
            const at::Tensor p = logits.softmax(0);
            const auto [v, i] = p.topk(std::min<std::int64_t>(rq.top_k, p.size(0)));
            for (std::int64_t k = 0; k < v.size(0); ++k) a.scores.emplace_back(tk.id_to_token(i[k].item<std::int64_t>()), v[k].item<double>());
        }
    } else {
        a.kind = "labels";
        const at::Tensor p = out.logits[0].to(torch::kFloat).softmax(0);
        for (std::int64_t k = 0; k < p.size(0); ++k)
            a.scores.emplace_back(static_cast<std::size_t>(k) < rq.labels.size() ? rq.labels[static_cast<std::size_t>(k)] : "label " + std::to_string(k),
                                  p[k].item<double>());
    }
    std::stable_sort(a.scores.begin(), a.scores.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
    if (!a.scores.empty()) a.text = a.scores.front().first;
    return a;
}

std::vector<std::string> task_examples(const RunSpec& spec, std::size_t n) {
    std::vector<std::string> out;
    if (spec.format != "jsonl") return out;
    std::ifstream f(spec.validation_file.empty() || spec.validation_file[0] == '(' ? spec.train_file : spec.validation_file);
    std::string line;
    while (out.size() < n && std::getline(f, line)) {
        try {
            const auto j = nlohmann::json::parse(line);
            auto field = [&](const std::string& k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
            std::string s;
            if (spec.task_type == "seq2seq" || (spec.task_type == "causal_lm" && j.contains(spec.prompt_field))) {
                s = field(spec.prompt_field);
            } else if (!spec.text.template_text.empty()) {
                s = fill_template(spec.text.template_text, {{"{text}", field(spec.text.text_field)},
                                                            {"{pair}", spec.text.pair_field.empty() ? std::string() : field(spec.text.pair_field)}});
            } else {
                s = field(spec.text.text_field);
                if (!spec.text.pair_field.empty() && !field(spec.text.pair_field).empty()) s += " " + field(spec.text.pair_field);
            }
            if (!s.empty()) out.push_back(s);
        } catch (const std::exception&) {
            // a malformed line: not offered
        }
    }
    return out;
}

}  // namespace dt
