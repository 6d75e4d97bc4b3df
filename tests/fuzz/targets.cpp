// The fuzz targets (see fuzz_targets.h). Each writes its input where the parser reads it, in a
// scratch folder of this process, and runs the parser as the CLI does.
#include "fuzz_targets.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "export/delta_format.h"
#include "export/peft_import.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "io/weight_set.h"
#include "models/loader.h"
#include "models/model.h"
#include "tokenizers/tokenizer.h"
#include "train/events.h"
#include "train/run_folder.h"
#include "train/run_spec.h"
#include "train/tensorboard.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#ifndef DT_SOURCE_DIR
#error "DT_SOURCE_DIR must name the source tree"
#endif

namespace dt::fuzz {

std::string source_dir() { return DT_SOURCE_DIR; }

std::vector<std::string> split_parts(const std::uint8_t* data, std::size_t size, std::size_t max_parts) {
    const std::string all(reinterpret_cast<const char*>(data), size);
    const std::string sep = kSeparator;
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (parts.size() + 1 < max_parts) {
        const std::size_t at = all.find(sep, start);
        if (at == std::string::npos) break;
        parts.push_back(all.substr(start, at - start));
        start = at + sep.size();
    }
    parts.push_back(all.substr(start));
    return parts;
}

std::string join_parts(const std::vector<std::string>& parts) {
    std::string s;
    for (std::size_t i = 0; i < parts.size(); ++i) s += (i ? std::string(kSeparator) : std::string()) + parts[i];
    return s;
}

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void remove_tree(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        if (DIR* d = ::opendir(path.c_str())) {
            while (dirent* e = ::readdir(d)) {
                const std::string n = e->d_name;
                if (n != "." && n != "..") remove_tree(path + "/" + n);
            }
            ::closedir(d);
        }
        ::rmdir(path.c_str());
    } else {
        ::unlink(path.c_str());
    }
}

// This process's scratch folder, removed at exit.
const std::string& scratch_root() {
    static const std::string root = [] {
        const char* tmp = std::getenv("TMPDIR");
        std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/deltatune-fuzz-XXXXXX";
        if (!::mkdtemp(templ.data())) std::abort();
        std::atexit([] { remove_tree(scratch_root()); });
        return templ;
    }();
    return root;
}

// A fresh, empty folder for one input.
std::string fresh(const std::string& name) {
    const std::string dir = scratch_root() + "/" + name;
    remove_tree(dir);
    make_dirs(dir);
    return dir;
}

std::string data(const std::string& rel) { return source_dir() + "/tests/data/" + rel; }

// Reads every byte of a tensor (a zero-copy tensor reads the mapped file).
void touch(const at::Tensor& t) {
    if (t.numel() > 0) (void)t.contiguous().clone();
}

// The base models the adapter targets apply to (the first part of their input names one).
const std::vector<std::string>& adapter_bases() {
    static const std::vector<std::string> bases = {"bert-seqcls", "llama-gqa-lm", "t5-cg"};
    return bases;
}

// A short forward pass, so that an import that accepted shapes the model cannot use shows up.
void forward_once(TransformerModel& model) {
    torch::NoGradGuard ng;
    ForwardInputs in;
    in.input_ids = torch::tensor({2, 5, 7, 3}, torch::kLong).unsqueeze(0);
    in.attention_mask = torch::ones({1, 4}, torch::kLong);
    if (model.is_encoder_decoder()) in.decoder_input_ids = torch::tensor({0, 4}, torch::kLong).unsqueeze(0);
    (void)model.forward(in);
}

// ---- safetensors: one file, header and data ----
void run_safetensors(const std::string& input) {
    const std::string path = fresh("st") + "/model.safetensors";
    spit(path, input);
    const auto f = st::File::open(path);
    for (const auto& info : f->tensors()) touch(f->tensor(info.name));
}

std::vector<std::string> seeds_safetensors() {
    std::vector<std::string> s;
    for (const char* rel : {"hf/peft/bert-seqcls-lora/adapter_model.safetensors", "hf/peft/llama-gqa-lm-ia3/adapter_model.safetensors",
                            "hf/peft/t5-cg-prompt/adapter_model.safetensors", "hf/peft/bert-seqcls-lokr/adapter_model.safetensors"})
        s.push_back(slurp(data(rel)));
    // Every dtype the reader takes, a scalar, an empty tensor, metadata, an unaligned offset.
    st::NamedTensors t = {{"f32", torch::arange(6, torch::kFloat).reshape({2, 3})},
                          {"bf16", torch::ones({3}, torch::kBFloat16)},
                          {"f16", torch::ones({2}, torch::kHalf)},
                          {"i64", torch::arange(3, torch::kLong)},
                          {"i8", torch::ones({5}, torch::kChar)},
                          {"u8", torch::ones({1}, torch::kByte)},
                          {"b", torch::ones({2}, torch::kBool)},
                          {"scalar", torch::tensor(1.5)},
                          {"empty", torch::zeros({0, 4})}};
    const std::string dir = fresh("seed-st");
    st::save(dir + "/x.safetensors", t, {{"format", "pt"}});
    s.push_back(slurp(dir + "/x.safetensors"));
    return s;
}

// ---- the shard index: model.safetensors.index.json, then up to 3 shards ----
void run_shard_index(const std::string& input) {
    const auto parts = split_parts(reinterpret_cast<const std::uint8_t*>(input.data()), input.size(), 4);
    const std::string dir = fresh("shards");
    spit(dir + "/model.safetensors.index.json", parts[0]);
    for (std::size_t i = 1; i < parts.size(); ++i) {
        char name[64];
        std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i, parts.size() - 1);
        spit(dir + "/" + name, parts[i]);
    }
    const WeightSet w = WeightSet::open_folder(dir);
    for (const auto& name : w.names()) touch(w.tensor(name));
}

std::vector<std::string> seeds_shard_index() {
    std::vector<std::string> s;
    const LoadedModel m = load_model(data("hf/bert-seqcls"));
    const std::string dir = fresh("seed-shards");
    save_model(*m.model, dir, 90'000);  // 3 shards
    std::vector<std::string> parts = {slurp(dir + "/model.safetensors.index.json")}, shards;
    for (const auto& f : list_folder(dir))
        if (f.find("-of-") != std::string::npos) shards.push_back(f);
    std::sort(shards.begin(), shards.end());  // parts are named model-0000K-of-0000N in order
    for (const auto& f : shards) parts.push_back(slurp(dir + "/" + f));
    if (parts.size() == 4) s.push_back(join_parts(parts));
    return s;
}

// ---- config.json with its checkpoint, through model construction ----
void run_config(const std::string& input) {
    const auto parts = split_parts(reinterpret_cast<const std::uint8_t*>(input.data()), input.size(), 2);
    const std::string dir = fresh("config");
    spit(dir + "/config.json", parts[0]);
    if (parts.size() > 1) spit(dir + "/model.safetensors", parts[1]);
    LoadedModel m = load_model(dir);
    forward_once(*m.model);
}

std::vector<std::string> seeds_config() {
    std::vector<std::string> s;
    for (const char* m : {"bert-seqcls", "distilbert-seqcls", "gpt2-lm", "gptneox-lm", "llama-bias-lm", "mistral-lm", "roberta-mlm", "t5-cg",
                          "t5-gated-cg"})
        s.push_back(join_parts({slurp(data(std::string("hf/") + m + "/config.json")), slurp(data(std::string("hf/") + m + "/model.safetensors"))}));
    return s;
}

// ---- tokenizer.json, then a text and a pair to encode ----
void run_tokenizer(const std::string& input) {
    const auto parts = split_parts(reinterpret_cast<const std::uint8_t*>(input.data()), input.size(), 3);
    const std::string path = fresh("tok") + "/tokenizer.json";
    spit(path, parts[0]);
    const tok::Tokenizer t = tok::Tokenizer::from_file(path);
    const std::string text = parts.size() > 1 ? parts[1] : std::string("hello world");
    const tok::Encoding a = t.encode(text);
    (void)t.decode(a.ids);
    (void)t.decode(a.ids, false);
    if (parts.size() > 2) {
        const tok::Encoding b = t.encode(text, &parts[2], true, 1 + parts[2].size() % 24);
        (void)t.decode(b.ids);
    }
    // Ids the tokenizer never made: out of range, negative, special.
    std::vector<std::int64_t> ids;
    for (unsigned char c : text.substr(0, 32)) ids.push_back(static_cast<std::int64_t>(c) * 131 - 900);
    (void)t.decode(ids);
    for (auto id : ids) (void)t.id_to_token(id);
}

std::vector<std::string> seeds_tokenizer() {
    std::vector<std::string> s;
    const std::string texts[] = {"Hello, world! Ünïcödé façade — naïve 東京 🤗 tokens.", "  leading spaces\tand\nnewlines  ",
                                 "\xEF\xBF\xBE noncharacter and [MASK] and <s> and </s>"};
    int i = 0;
    for (const char* t : {"bert-wordpiece-uncased", "bert-wordpiece-cased", "gpt2-bytelevel-bpe", "gpt2-bytelevel-prefix", "llama-bpe-bytefallback",
                          "llama-metaspace-bpe", "llama3-bytelevel-bpe", "roberta-bytelevel-prefix", "t5-unigram"})
        s.push_back(join_parts({slurp(data(std::string("tokenizers/") + t + "/tokenizer.json")), texts[i % 3], texts[(i++ + 1) % 3]}));
    s.push_back(join_parts({slurp(source_dir() + "/resources/demo/tokenizer.json"), "the butri was trarama . nida nuklimed it ."}));
    return s;
}

// ---- a task: task.json, then its training file (as train.jsonl, train.csv and train.tsv) ----
void run_task_data(const std::string& input) {
    const auto parts = split_parts(reinterpret_cast<const std::uint8_t*>(input.data()), input.size(), 2);
    const std::string dir = fresh("task");
    spit(dir + "/task.json", parts[0]);
    const std::string rows = parts.size() > 1 ? parts[1] : std::string();
    for (const char* f : {"train.jsonl", "train.csv", "train.tsv", "validation.jsonl"}) spit(dir + "/" + f, rows);
    static const std::string tokenizer = slurp(source_dir() + "/resources/demo/tokenizer.json");
    spit(dir + "/tokenizer.json", tokenizer);
    const nlohmann::json spec = {{"model", "tiny-bert"}, {"task", dir + "/task.json"}, {"delta", "lora"}};
    const RunSpec rs = RunSpec::from_json(spec, dir + "/spec.json", dir);
    const TaskData d = load_task_data(rs);
    (void)d;
}

std::vector<std::string> seeds_task_data() {
    std::vector<std::string> s;
    const std::string tasks = source_dir() + "/resources/demo/tasks";
    for (const auto& name : list_folder(tasks)) {
        nlohmann::json task = nlohmann::json::parse(slurp(tasks + "/" + name + "/task.json"));
        task["tokenizer"] = "tokenizer.json";
        task["validation"] = "validation.jsonl";
        std::istringstream rows(slurp(tasks + "/" + name + "/" + task.value("train", std::string("train.jsonl"))));
        std::string line, head;
        for (int i = 0; i < 24 && std::getline(rows, line); ++i) head += line + "\n";
        s.push_back(join_parts({task.dump(1), head}));
    }
    // CSV and TSV with a header, quoting and a regression target.
    s.push_back(join_parts({R"({"format": "csv", "train": "train.csv", "tokenizer": "tokenizer.json", "labels": ["a", "b"],
      "fields": {"text": "text", "label": "label"}, "header": true, "max_length": 16})",
                            "text,label\n\"the butri, was\"\"good\"\"\",a\nnida nuklimed it,b\n"}));
    s.push_back(join_parts({R"({"format": "tsv", "train": "train.tsv", "tokenizer": "tokenizer.json", "regression": true,
      "fields": {"text": "text", "label": "score"}, "skip_bad_lines": true})",
                            "text\tscore\nthe butri\t0.5\nnida\tx\n"}));
    s.push_back(join_parts({R"({"format": "jsonl", "type": "causal_lm", "train": "train.jsonl", "tokenizer": "tokenizer.json"})",
                            "{\"prompt\": \"the butri\", \"response\": \"was good\"}\n"}));
    return s;
}

// ---- run specs (with their delta spec), and the model and delta they build ----
void run_run_spec(const std::string& input) {
    const std::string dir = fresh("spec");
    spit(dir + "/spec.json", input);
    RunSpec rs = RunSpec::load(dir + "/spec.json");
    // Only the tiny built-ins are built: a spec naming a large model is a valid request, not a finding.
    static const std::vector<std::string> tiny = {"tiny-bert", "tiny-llama", "tiny-t5", "tiny-gptneox"};
    if (std::find(tiny.begin(), tiny.end(), rs.model) == tiny.end() || model_needs_data(rs)) return;
    PreparedModel pm = prepare_model(rs);
    forward_once(*pm.model.model);
}

std::vector<std::string> seeds_run_spec() {
    std::vector<std::string> s;
    const char* deltas[] = {
        R"("lora")",
        R"({"method": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["query", "value"], "layers": [0]})",
        R"({"method": "adapter", "size": 8})",
        R"({"method": "prefix", "num_virtual_tokens": 4})",
        R"({"method": "prompt", "num_virtual_tokens": 3})",
        R"({"method": "ia3"})",
        R"({"method": "bitfit"})",
        R"({"method": "vera", "r": 8})",
        R"({"method": "adalora", "init_r": 6, "target_r": 2})",
        R"({"method": "loha", "r": 2})",
        R"({"method": "oft", "r": 4})",
        R"({"method": "last_layers", "num_layers": 1})",
        R"({"method": "selective", "target_modules": ["classifier"]})",
        R"({"method": "full"})",
    };
    const char* models[] = {"tiny-bert", "tiny-llama", "tiny-t5", "tiny-gptneox"};
    int i = 0;
    for (const char* d : deltas) {
        const std::string m = models[i++ % 4];
        s.push_back(std::string("{\"model\": \"") + m + "\", \"num_labels\": 2, \"task\": {\"type\": \"classification\", \"train\": \"t.jsonl\", \"labels\": [\"a\", \"b\"]}, \"delta\": " + d +
                    ", \"training\": {\"max_steps\": 2, \"batch_size\": 4, \"lr\": 0.001, \"seed\": 3, \"base_dtype\": \"bf16\"}, \"output_dir\": \"runs/x\"}");
    }
    s.push_back(R"({"model": "tiny-llama", "task": {"type": "causal_lm", "format": "jsonl", "train": "t.jsonl"}, "delta": {"method": "lora", "r": 2},
      "training": {"max_steps": 3, "quantize": "nf4", "double_quant": true, "gradient_checkpointing": true, "grad_accum": 2}})");
    return s;
}

// ---- an exported delta folder: the base's name, then the config, then the tensors ----
void run_delta_folder(const std::string& input, const char* config_name, const char* tensors_name) {
    const auto parts = split_parts(reinterpret_cast<const std::uint8_t*>(input.data()), input.size(), 3);
    std::string base = parts[0];
    if (std::find(adapter_bases().begin(), adapter_bases().end(), base) == adapter_bases().end()) base = adapter_bases()[0];
    const std::string dir = fresh("delta");
    if (parts.size() > 1) spit(dir + "/" + config_name, parts[1]);
    if (parts.size() > 2) spit(dir + "/" + tensors_name, parts[2]);
    LoadedModel m = load_model(data("hf/" + base));
    const DeltaImport imp = import_exported_delta(*m.model, dir);
    (void)imp;
    forward_once(*m.model);
}

void run_peft(const std::string& input) { run_delta_folder(input, "adapter_config.json", "adapter_model.safetensors"); }
void run_deltatune(const std::string& input) { run_delta_folder(input, "delta_config.json", "delta.safetensors"); }

std::vector<std::string> seeds_peft() {
    std::vector<std::string> s;
    const std::string peft = data("hf/peft");
    for (const auto& name : list_folder(peft)) {
        const std::string dir = peft + "/" + name;
        if (!path_exists(dir + "/adapter_config.json") || !path_exists(dir + "/adapter_model.safetensors")) continue;
        for (const auto& base : adapter_bases())
            if (name.rfind(base + "-", 0) == 0)
                s.push_back(join_parts({base, slurp(dir + "/adapter_config.json"), slurp(dir + "/adapter_model.safetensors")}));
    }
    return s;
}

std::vector<std::string> seeds_deltatune() {
    std::vector<std::string> s;
    const char* specs[] = {R"({"method": "lora", "r": 2, "target_modules": ["query", "value"]})", R"({"method": "adapter", "size": 4})",
                           R"({"method": "prefix", "num_virtual_tokens": 2})", R"({"method": "ia3"})", R"({"method": "bitfit"})",
                           R"({"method": "loha", "r": 2})"};
    for (const char* spec : specs) {
        try {
            LoadedModel m = load_model(data("hf/bert-seqcls"));
            DeltaSet d = DeltaSet::apply(*m.model, DeltaSpec::from_json(nlohmann::json::parse(spec), "seed"));
            const std::string dir = scratch_root() + "/seed-delta";
            remove_tree(dir);
            export_deltatune(*m.model, d, dir, "bert-seqcls");
            s.push_back(join_parts({"bert-seqcls", slurp(dir + "/delta_config.json"), slurp(dir + "/delta.safetensors")}));
        } catch (const Error&) {
            // a method this base does not take: no seed from it
        }
    }
    return s;
}

// ---- events.jsonl, as the run history, the runs table and the TensorBoard export read it ----
void run_events(const std::string& input) {
    const std::string run = fresh("run");
    spit(run_folder::events_path(run), input);
    std::istringstream in(input);
    std::string line;
    EventLine ev;
    while (std::getline(in, line)) (void)parse_event_line(line.data(), line.data() + line.size(), ev);
    (void)run_folder::summarize_run(run);
    (void)tensorboard::export_run(run);
}

std::vector<std::string> seeds_events() {
    std::vector<std::string> s;
    StepEvent st;
    st.step = 3, st.loss = 0.7, st.lr = 1e-3, st.grad_norm = 2, st.tokens_per_s = 900, st.elapsed_s = 1.5;
    EvalEvent ev;
    ev.step = 3, ev.metrics = {{"accuracy", 0.75}, {"loss", 0.6}};
    ev.confusion.labels = {"a", "b"}, ev.confusion.counts = {{3, 1}, {0, 4}}, ev.confusion.unmatched = {0, 0};
    StatusEvent done{"finished", 3};
    s.push_back(st.to_json().dump() + "\n" + ev.to_json().dump() + "\n" + done.to_json().dump() + "\n");
    st.skipped = true;
    s.push_back(st.to_json().dump() + "\n{\"event\": \"step\", \"step\": 2, \"loss\": nul");
    return s;
}

}  // namespace

const std::vector<Target>& targets() {
    static const std::vector<Target> t = {
        {"safetensors", "a .safetensors file", run_safetensors, seeds_safetensors},
        {"shard_index", "model.safetensors.index.json, then up to 3 shard files", run_shard_index, seeds_shard_index},
        {"config", "config.json, then model.safetensors (loaded and run once)", run_config, seeds_config},
        {"tokenizer", "tokenizer.json, then a text, then a pair text", run_tokenizer, seeds_tokenizer},
        {"task_data", "task.json, then its JSONL/CSV/TSV training file", run_task_data, seeds_task_data},
        {"run_spec", "a run spec with its delta spec (tiny built-ins are built)", run_run_spec, seeds_run_spec},
        {"peft_adapter", "a base name, then adapter_config.json, then adapter_model.safetensors", run_peft, seeds_peft},
        {"delta_folder", "a base name, then delta_config.json, then delta.safetensors", run_deltatune, seeds_deltatune},
        {"events", "a run folder's events.jsonl", run_events, seeds_events},
    };
    return t;
}

const Target* find_target(const std::string& name) {
    for (const auto& t : targets())
        if (name == t.name) return &t;
    return nullptr;
}

int run_one(const Target& t, const std::uint8_t* data, std::size_t size) {
    try {
        t.run(std::string(reinterpret_cast<const char*>(data), size));
    } catch (const Error& e) {
        if (std::string(e.what()).empty()) throw;  // a refusal must say something
        static const bool verbose = std::getenv("DT_FUZZ_VERBOSE") != nullptr;
        if (verbose) std::fprintf(stderr, "refused: %s\n", e.what());
        return 1;
    }
    return 0;
}

}  // namespace dt::fuzz
