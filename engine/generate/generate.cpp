#include "generate/generate.h"

#include "core/error.h"
#include "io/json_util.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

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
}

at::Tensor generate(TransformerModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask, const GenerationOptions& opts,
                    const GenerationStep& on_step) {
    opts.validate();
    if (model.is_base_model()) throw Error(model.name() + " has no language-model head to generate with", "model", "load a *ForCausalLM or T5ForConditionalGeneration model");
    torch::NoGradGuard ng;
    const bool seq2seq = model.is_encoder_decoder();
    const auto B = input_ids.size(0);
    const auto lopts = input_ids.options().dtype(torch::kLong);
    const at::Tensor ids = input_ids.to(torch::kLong);
    const at::Tensor mask = attention_mask.defined() ? attention_mask.to(torch::kLong) : torch::ones_like(ids);
    const std::int64_t pad = opts.pad_token_id >= 0 ? opts.pad_token_id : (opts.eos_token_ids.empty() ? -1 : opts.eos_token_ids[0]);
    std::int64_t start = opts.decoder_start_token_id;
    if (seq2seq && start < 0) start = model.config().get_int_or("decoder_start_token_id", model.config().get_int_or("pad_token_id", 0));
    at::Tensor seq = seq2seq ? torch::full({B, 1}, start, lopts) : ids;
    at::Tensor full_mask = mask;  // decoder-only: the mask of everything in `seq`
    at::Tensor unfinished = torch::ones({B}, lopts.dtype(torch::kBool));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(opts.seed);
    KVCache cache;
    std::int64_t virtual_tokens = 0;  // a soft prompt's positions, found in the cache after the first step
    model.eval();
    for (std::int64_t step = 0; step < opts.max_new_tokens; ++step) {
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
        at::Tensor logits = out.logits.select(1, out.logits.size(1) - 1).to(torch::kFloat);
        at::Tensor next;
        if (opts.do_sample) {
            const at::Tensor probs = warp(logits, opts).softmax(1);
            next = torch::multinomial(probs, 1, false, gen).squeeze(1);
        } else {
            next = logits.argmax(1);
        }
        if (pad >= 0) next = torch::where(unfinished, next, torch::full_like(next, pad));
        seq = torch::cat({seq, next.unsqueeze(1)}, 1);
        if (!seq2seq) full_mask = torch::cat({full_mask, torch::ones({B, 1}, lopts)}, 1);
        for (const auto eos : opts.eos_token_ids) unfinished = unfinished & (next != eos);
        if (on_step && !on_step(next)) break;
        if (!opts.eos_token_ids.empty() && !unfinished.any().item<bool>()) break;
    }
    return seq;
}

}  // namespace dt
