#include "models/loader.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/weight_set.h"
#include "models/registry.h"

#include <torch/torch.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <sys/stat.h>

namespace dt {
namespace {

bool is_dir(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

nlohmann::json bert_config(const std::string& arch, int vocab, int hidden, int layers, int heads, int inter, int pos) {
    return {{"architectures", {arch}},
            {"model_type", "bert"},
            {"vocab_size", vocab},
            {"hidden_size", hidden},
            {"num_hidden_layers", layers},
            {"num_attention_heads", heads},
            {"intermediate_size", inter},
            {"hidden_act", "gelu"},
            {"hidden_dropout_prob", 0.1},
            {"attention_probs_dropout_prob", 0.1},
            {"max_position_embeddings", pos},
            {"type_vocab_size", 2},
            {"initializer_range", 0.02},
            {"layer_norm_eps", 1e-12},
            {"pad_token_id", 0},
            {"position_embedding_type", "absolute"}};
}

std::string with_legacy_names(const std::string& n) {
    auto ends = [&](const char* s) {
        const std::string x(s);
        return n.size() >= x.size() && n.compare(n.size() - x.size(), x.size(), x) == 0;
    };
    if (ends("LayerNorm.gamma")) return n.substr(0, n.size() - 5) + "weight";
    if (ends("LayerNorm.beta")) return n.substr(0, n.size() - 4) + "bias";
    return n;
}

}  // namespace

std::vector<std::string> builtin_model_names() {
    return {"tiny-bert", "bert-base-shape", "bert-base-seqcls", "tiny-llama", "llama-1b-shape", "tiny-t5", "tiny-gptneox"};
}

bool is_builtin_model(const std::string& name) {
    for (const auto& n : builtin_model_names())
        if (n == name) return true;
    return false;
}

ModelConfig builtin_config(const std::string& name) {
    if (name == "tiny-bert")
        return ModelConfig::from_json(bert_config("BertForMaskedLM", 1024, 64, 4, 4, 256, 128), "builtin:tiny-bert");
    if (name == "bert-base-shape")
        return ModelConfig::from_json(bert_config("BertForMaskedLM", 30522, 768, 12, 12, 3072, 512),
                                      "builtin:bert-base-shape");
    if (name == "bert-base-seqcls") {  // the peer benchmark's BertForSequenceClassification (2 labels)
        nlohmann::json j = bert_config("BertForSequenceClassification", 30522, 768, 12, 12, 3072, 512);
        j["id2label"] = {{"0", "LABEL_0"}, {"1", "LABEL_1"}};
        return ModelConfig::from_json(j, "builtin:bert-base-seqcls");
    }
    if (name == "llama-1b-shape")  // TinyLlama-1.1B's shape: 22 layers, hidden 2048, GQA 32/4 heads
        return ModelConfig::from_json({{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 32000},
                                       {"hidden_size", 2048}, {"num_hidden_layers", 22}, {"num_attention_heads", 32},
                                       {"num_key_value_heads", 4}, {"intermediate_size", 5632}, {"max_position_embeddings", 2048},
                                       {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"hidden_act", "silu"},
                                       {"pad_token_id", 0}, {"bos_token_id", 1}, {"eos_token_id", 2}, {"tie_word_embeddings", false}},
                                      "builtin:llama-1b-shape");
    if (name == "tiny-llama")
        return ModelConfig::from_json({{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 4096},
                                       {"hidden_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
                                       {"num_key_value_heads", 2}, {"intermediate_size", 128}, {"max_position_embeddings", 256},
                                       {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0}, {"hidden_act", "silu"},
                                       {"pad_token_id", 0}, {"bos_token_id", 1}, {"eos_token_id", 2}, {"tie_word_embeddings", false}},
                                      "builtin:tiny-llama");
    if (name == "tiny-t5")  // T5 v1.1 layout (gated-gelu, untied head), 3 + 3 layers
        return ModelConfig::from_json({{"architectures", {"T5ForConditionalGeneration"}}, {"model_type", "t5"}, {"vocab_size", 1024},
                                       {"d_model", 64}, {"d_kv", 16}, {"d_ff", 128}, {"num_layers", 3}, {"num_decoder_layers", 3},
                                       {"num_heads", 4}, {"relative_attention_num_buckets", 32}, {"relative_attention_max_distance", 128},
                                       {"feed_forward_proj", "gated-gelu"}, {"tie_word_embeddings", false}, {"layer_norm_epsilon", 1e-6},
                                       {"pad_token_id", 0}, {"eos_token_id", 1}, {"decoder_start_token_id", 0}, {"is_encoder_decoder", true}},
                                      "builtin:tiny-t5");
    if (name == "tiny-gptneox")  // Pythia layout: partial rotary, parallel residual
        return ModelConfig::from_json({{"architectures", {"GPTNeoXForCausalLM"}}, {"model_type", "gpt_neox"}, {"vocab_size", 1024},
                                       {"hidden_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"intermediate_size", 256},
                                       {"max_position_embeddings", 256}, {"rotary_pct", 0.25}, {"rotary_emb_base", 10000},
                                       {"use_parallel_residual", true}, {"hidden_act", "gelu"}, {"layer_norm_eps", 1e-5},
                                       {"bos_token_id", 0}, {"eos_token_id", 0}, {"tie_word_embeddings", false}},
                                      "builtin:tiny-gptneox");
    throw Error("unknown built-in model '" + name + "'", "", "built-ins: tiny-bert, bert-base-shape, bert-base-seqcls, tiny-llama, llama-1b-shape, tiny-t5, tiny-gptneox");
}

std::shared_ptr<TransformerModel> create_model(const ModelConfig& cfg, std::uint64_t seed) {
    auto model = find_architecture(cfg).make(cfg);
    model->init_weights(seed);
    model->eval();
    return model;
}

LoadReport load_weights(TransformerModel& model, const WeightSet& weights) {
    LoadReport rep;
    const auto tied = model.tied_parameters();
    std::map<std::string, at::Tensor> params;
    for (auto& p : model.named_parameters(true))
        if (!tied.count(p.key())) params.emplace(p.key(), p.value());
    const std::string fam = model.base_model_prefix() + ".";
    const bool base = model.is_base_model();
    std::set<std::string> loaded;
    torch::NoGradGuard ng;
    for (const auto& raw : weights.names()) {
        const std::string name = with_legacy_names(raw);
        // A head model's names carry the family prefix; a bare base model's do not.
        const std::string alt = base ? (name.rfind(fam, 0) == 0 ? name.substr(fam.size()) : std::string())
                                     : (name.rfind(fam, 0) == 0 ? std::string() : fam + name);
        std::string target;
        if (params.count(name)) {
            target = name;
        } else if (!alt.empty() && params.count(alt)) {
            target = alt;
        } else if (tied.count(name) || (!alt.empty() && tied.count(alt))) {
            continue;  // a stored copy of a tied parameter: the canonical one wins, as in transformers
        } else if (name.size() > 13 && name.compare(name.size() - 13, 13, ".position_ids") == 0) {
            continue;  // a buffer older transformers versions saved
        } else {
            rep.unexpected.push_back(raw);
            continue;
        }
        at::Tensor& dst = params[target];
        const auto& info = weights.info(raw);
        const bool transposed = model.stored_transposed(target) && dst.dim() == 2;
        const std::vector<std::int64_t> want = transposed ? std::vector<std::int64_t>{dst.size(1), dst.size(0)} : dst.sizes().vec();
        if (c10::IntArrayRef(info.shape) != c10::IntArrayRef(want))
            throw Error("tensor '" + raw + "' has shape " + c10::str(c10::IntArrayRef(info.shape)) + " but the model expects " +
                            c10::str(c10::IntArrayRef(want)) + " for '" + target + "'",
                        weights.file_of(raw), "config.json does not match these weights");
        if (!loaded.insert(target).second)
            throw Error("two tensors map to '" + target + "' (with and without the '" + fam + "' prefix)",
                        weights.file_of(raw));
        at::Tensor src = weights.tensor(raw);
        if (src.scalar_type() != dst.scalar_type()) rep.converted.push_back(raw);
        if (!at::isFloatingType(src.scalar_type()))
            throw Error("tensor '" + raw + "' has integer dtype " + info.dtype + " but '" + target + "' is floating point",
                        weights.file_of(raw));
        dst.copy_(transposed ? src.t() : src);
        rep.bytes_read += info.end - info.begin;
    }
    for (const auto& kv : params)
        if (!loaded.count(kv.first)) rep.missing.push_back(kv.first);
    if (loaded.empty() && !params.empty()) {
        const std::string file = weights.files().empty() ? std::string() : weights.files().front()->path();
        throw Error("none of the " + std::to_string(weights.names().size()) + " tensors matches a parameter of " +
                        model.name(), file, "are these weights for another architecture?");
    }
    return rep;
}

static ModelConfig with_overrides(ModelConfig cfg, const LoadOptions& opts) {
    if (opts.architecture.empty() && opts.num_labels <= 0) return cfg;
    nlohmann::json raw = cfg.raw;
    if (!opts.architecture.empty()) raw["architectures"] = {opts.architecture};
    if (opts.num_labels > 0) {
        raw["num_labels"] = opts.num_labels;
        raw.erase("id2label");
        raw.erase("label2id");
    }
    return ModelConfig::from_json(raw, cfg.source);
}

namespace {

// An integer field under one of `names` (the families name the same size differently); 0 if none.
std::pair<double, std::string> size_field(const ModelConfig& c, std::initializer_list<const char*> names) {
    for (const char* n : names)
        if (c.raw.contains(n) && c.raw[n].is_number_integer()) return {static_cast<double>(c.raw[n].get<std::int64_t>()), n};
    return {0.0, ""};
}

std::string human_count(double n) {
    char buf[64];
    if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.1f billion", n / 1e9);
    else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.1f million", n / 1e6);
    else std::snprintf(buf, sizeof buf, "%.0f", n);
    return buf;
}

std::uint64_t available_memory_bytes() {
    std::FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char key[64];
    unsigned long long kb = 0, total = 0;
    while (std::fscanf(f, "%63s %llu kB\n", key, &kb) == 2)
        if (std::string(key) == "MemAvailable:" || std::string(key) == "SwapFree:") total += kb;
    std::fclose(f);
    return total * 1024ull;
}

// Before any tensor is allocated: the parameter count config.json implies (embeddings and blocks,
// from the sizes every family names) must be near what the checkpoint holds, and fit in memory.
// A config with hidden_size 262144 and 4,000 layers beside a small checkpoint is refused naming
// its fields, instead of allocating terabytes.
void check_size_before_allocating(const ModelConfig& c, const WeightSet& weights, const std::string& cfg_path) {
    const auto [h, hn] = size_field(c, {"hidden_size", "n_embd", "d_model"});
    if (h <= 0) return;
    const auto [l, ln] = size_field(c, {"num_hidden_layers", "n_layer", "num_layers"});
    const auto [ld, ldn] = size_field(c, {"num_decoder_layers"});
    auto [i, in] = size_field(c, {"intermediate_size", "n_inner", "d_ff"});
    const auto [v, vn] = size_field(c, {"vocab_size"});
    const auto [pos, posn] = size_field(c, {"max_position_embeddings", "n_positions"});
    const auto [tv, tvn] = size_field(c, {"type_vocab_size"});
    if (i <= 0) i = 4 * h;
    // Learned position and token-type tables count too (BERT, GPT-2); rotary families have none, so
    // for them the positions field implies nothing and is left out of the sum.
    const bool learned_positions = c.raw.contains("type_vocab_size") || c.raw.contains("n_positions");
    const double implied = (std::max(0.0, v) + (learned_positions ? std::max(0.0, pos) + std::max(0.0, tv) : 0.0)) * h +
                           (std::max(0.0, l) + std::max(0.0, ld)) * (4 * h * h + 2 * h * i);
    double stored = 0;
    for (const auto& name : weights.names()) {
        double n = 1;
        for (auto d : weights.info(name).shape) n *= static_cast<double>(d);
        stored += n;
    }
    std::string fields = hn + " " + std::to_string(static_cast<long long>(h));
    if (!ln.empty()) fields += ", " + ln + " " + std::to_string(static_cast<long long>(l));
    if (!in.empty()) fields += ", " + in + " " + std::to_string(static_cast<long long>(i));
    if (!vn.empty()) fields += ", " + vn + " " + std::to_string(static_cast<long long>(v));
    if (learned_positions && !posn.empty()) fields += ", " + posn + " " + std::to_string(static_cast<long long>(pos));
    if (implied > 3 * stored + 1e6)
        throw Error("config.json implies about " + human_count(implied) + " parameters (" + fields + ") but the checkpoint holds " +
                        human_count(stored) + ": the config does not belong to these weights",
                    cfg_path, "use the config.json saved with the weights");
    const std::uint64_t avail = available_memory_bytes();
    if (avail > 0 && implied * 4 > static_cast<double>(avail))
        throw Error("the model needs about " + std::to_string(static_cast<long long>(implied * 4 / 1e9)) + " GB for its parameters (" + fields +
                        ") and " + std::to_string(avail / 1000000000ull) + " GB of memory are available",
                    cfg_path, "free memory or use a machine with more");
}

// A parameter inside a layer list (a numbered path component) or an embedding: part of the base
// model the config declares, never a task head.
bool is_block_or_embedding(const std::string& name) {
    std::size_t start = 0;
    while (start <= name.size()) {
        const std::size_t dot = name.find('.', start);
        const std::string part = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (!part.empty() && part.find_first_not_of("0123456789") == std::string::npos) return true;
        if (part.find("embed") != std::string::npos || part == "wte" || part == "wpe" || part == "shared") return true;
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return false;
}

std::string layer_field_note(const ModelConfig& c) {
    const auto [l, ln] = size_field(c, {"num_hidden_layers", "n_layer", "num_layers"});
    return ln.empty() ? std::string() : " (" + ln + " " + std::to_string(static_cast<long long>(l)) + ")";
}

}  // namespace

LoadedModel load_model(const std::string& dir_or_builtin, const LoadOptions& opts) {
    LoadedModel out;
    out.source = dir_or_builtin;
    if (is_builtin_model(dir_or_builtin)) {
        out.model = create_model(with_overrides(builtin_config(dir_or_builtin), opts), opts.seed);
        out.report.weights_source = "random init (seed " + std::to_string(opts.seed) + ")";
        return out;
    }
    if (!is_dir(dir_or_builtin)) {
        struct stat st {};
        if (::stat(dir_or_builtin.c_str(), &st) == 0)
            throw Error("expected a model folder, got a file", dir_or_builtin, "pass the folder holding config.json");
        throw Error("no such model folder or built-in model", dir_or_builtin,
                    "built-ins: tiny-bert, bert-base-shape, tiny-llama");
    }
    const std::string cfg_path = dir_or_builtin + "/config.json";
    struct stat cst {};
    if (::stat(cfg_path.c_str(), &cst) != 0)
        throw Error("not a model folder (it needs config.json and model.safetensors, or sharded safetensors with their index)",
                    dir_or_builtin, "open the folder transformers' save_pretrained wrote, or a built-in such as tiny-bert");
    ModelConfig cfg = with_overrides(ModelConfig::load(cfg_path), opts);
    WeightSet weights = WeightSet::open_folder(dir_or_builtin);
    check_size_before_allocating(cfg, weights, cfg_path);
    // No random init up front: the checkpoint overwrites it. Only what it lacks is initialised.
    out.model = find_architecture(cfg).make(cfg);
    out.report = load_weights(*out.model, weights);
    if (!opts.allow_missing_blocks)
        for (const auto& name : out.report.missing)
            if (is_block_or_embedding(name))
                throw Error("the checkpoint lacks '" + name + "' (and " + std::to_string(out.report.missing.size() - 1) +
                                " more missing tensor(s)), which config.json declares" + layer_field_note(cfg),
                            weights.files()[0]->path(),
                            "use the config.json saved with these weights; only task heads may be missing (set allow_missing_blocks to "
                            "initialise the rest at random)");
    if (!out.report.missing.empty()) {
        const std::set<std::string> missing(out.report.missing.begin(), out.report.missing.end());
        out.model->init_weights(opts.seed, &missing);
    }
    out.report.weights_source = weights.files().size() == 1 ? weights.files()[0]->path()
                                                            : std::to_string(weights.files().size()) + " shards";
    out.model->eval();
    return out;
}

std::vector<std::pair<std::string, at::Tensor>> state_tensors(const TransformerModel& model) {
    const auto tied = model.tied_parameters();
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& p : model.named_parameters(true))
        if (!tied.count(p.key()))
            out.emplace_back(p.key(), model.stored_transposed(p.key()) ? p.value().detach().t().contiguous() : p.value().detach());
    return out;
}

std::uint64_t parse_byte_size(const std::string& text, const std::string& field) {
    std::size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    const std::string digits = text.substr(0, i), unit = text.substr(i);
    static const std::pair<const char*, std::uint64_t> units[] = {
        {"", 1}, {"B", 1}, {"KB", 1000ULL}, {"MB", 1000'000ULL}, {"GB", 1000'000'000ULL},
        {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30}};
    if (!digits.empty() && digits.size() <= 15)
        for (const auto& [name, factor] : units)
            if (unit == name) {
                const std::uint64_t n = std::stoull(digits) * factor;
                if (n > 0) return n;
            }
    throw Error("'" + text + "' is not a size", field, "a positive size such as 5GB, 500MB, 64MiB or a byte count");
}

void save_model(const TransformerModel& model, const std::string& dir, std::uint64_t max_shard_bytes) {
    for (const auto& item : model.named_modules("", /*include_self=*/true))
        if (auto* lin = dynamic_cast<const LinearImpl*>(item.value().get()); lin && lin->quantized())
            throw Error("'" + item.key() + "' holds a quantized weight; a model is never written quantized", dir,
                        "export from the run (deltatune export RUN --format merged), which loads the base again in full precision");
    if (!is_dir(dir) && ::mkdir(dir.c_str(), 0755) != 0)
        throw Error(std::string("cannot create folder: ") + std::strerror(errno), dir);
    nlohmann::json cfg = model.config().raw;
    cfg["architectures"] = {model.name()};
    cfg["torch_dtype"] = "float32";
    write_file_atomic(dir + "/config.json", cfg.dump(2) + "\n");
    const auto tensors = state_tensors(model);
    auto bytes_of = [](const at::Tensor& t) { return static_cast<std::uint64_t>(t.numel()) * t.element_size(); };
    std::uint64_t total = 0;
    for (const auto& nt : tensors) total += bytes_of(nt.second);
    if (max_shard_bytes == 0 || total <= max_shard_bytes) {
        st::save(dir + "/model.safetensors", tensors, {{"format", "pt"}});
        return;
    }
    // Greedy in parameter order, as transformers' split_torch_state_dict_into_shards does.
    std::vector<st::NamedTensors> shards(1);
    std::uint64_t used = 0;
    for (const auto& nt : tensors) {
        const std::uint64_t n = bytes_of(nt.second);
        if (!shards.back().empty() && used + n > max_shard_bytes) {
            shards.emplace_back();
            used = 0;
        }
        shards.back().push_back(nt);
        used += n;
    }
    char name[64];
    nlohmann::json weight_map = nlohmann::json::object();
    for (std::size_t i = 0; i < shards.size(); ++i) {
        std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
        st::save(dir + "/" + name, shards[i], {{"format", "pt"}});
        for (const auto& nt : shards[i]) weight_map[nt.first] = name;
    }
    const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_file_atomic(dir + "/model.safetensors.index.json", index.dump(2) + "\n");
}

}  // namespace dt
