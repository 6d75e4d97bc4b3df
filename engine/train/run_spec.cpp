#include "train/run_spec.h"
#include "models/quantize.h"

#include "core/error.h"
#include "export/delta_format.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "tokenizers/tokenizer.h"

#include <algorithm>
#include <unistd.h>

namespace dt {
std::string resolve_path(const std::string& p, const std::string& base) {
    if (p.empty() || p[0] == '/' || base.empty() || base == "." || is_builtin_model(p)) return p;
    return base + "/" + p;
}

std::string absolute_path(const std::string& p) {
    if (p.empty() || p[0] == '/' || is_builtin_model(p)) return p;
    char buf[4096];
    return ::getcwd(buf, sizeof buf) ? std::string(buf) + "/" + p : p;
}

namespace {

void only_fields(const nlohmann::json& j, const std::vector<std::string>& allowed, const std::string& where) {
    if (!j.is_object()) throw Error("expected a JSON object, got " + std::string(j.type_name()), where);
    for (auto it = j.begin(); it != j.end(); ++it)
        if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
            std::string list;
            for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
            throw Error("unknown field '" + it.key() + "'", where, "accepted: " + list);
        }
}

// Ranges and choices of the training fields; errors name the field.
void check_training(const TrainConfig& c, const std::string& w) {
    if (c.precision != "fp32" && c.precision != "bf16" && c.precision != "fp16")
        throw Error("field 'precision' is '" + c.precision + "'", w, "fp32, bf16 or fp16 (CUDA)");
    QuantKind kind;
    parse_quantize(c.quantize, &kind, "quantize");
    if (c.base_dtype != "fp32" && c.base_dtype != "bf16" && c.base_dtype != "fp16")
        throw Error("field 'base_dtype' is '" + c.base_dtype + "'", w, "fp32, bf16 or fp16 (CUDA): how the frozen base is stored");
    auto positive = [&](std::int64_t v, const char* f) {
        if (v <= 0) throw Error(std::string("field '") + f + "' must be positive", w);
    };
    positive(c.max_steps, "max_steps");
    positive(c.batch_size, "batch_size");
    positive(c.grad_accum, "grad_accum");
    if (!(c.lr > 0)) throw Error("field 'lr' must be positive", w);
    if (c.schedule != "constant" && c.schedule != "linear" && c.schedule != "cosine")
        throw Error("field 'schedule' is '" + c.schedule + "'", w, "constant, linear or cosine");
    if (c.warmup_ratio < 0 || c.warmup_ratio >= 1) throw Error("field 'warmup_ratio' must be in [0, 1)", w);
}

}  // namespace

// The task's data files and their format; `base` is the folder its paths are relative to.
static void read_task_files(RunSpec& r, const nlohmann::json& t, const std::string& base, const std::string& tw) {
    only_fields(t, {"train", "validation", "format", "labels", "tokenizer", "fields", "header", "regression", "skip_bad_lines",
                    "max_length", "validation_split", "template", "label_words", "mask_token", "type", "name", "category",
                    "description", "generation"},
                tw);
    r.task_name = json::get_string_or(t, "name", "", tw);
    r.task_category = json::get_string_or(t, "category", "", tw);
    r.format = json::get_string_or(t, "format", "", tw);
    r.train_file = resolve_path(json::get_string(t, "train", tw), base);
    r.validation_file = resolve_path(json::get_string_or(t, "validation", "", tw), base);
    if (r.format.empty()) {
        const auto dot = r.train_file.find_last_of('.');
        const std::string ext = dot == std::string::npos ? "" : r.train_file.substr(dot + 1);
        r.format = (ext == "csv" || ext == "tsv") ? ext : (t.contains("fields") || t.contains("tokenizer") ? "jsonl" : "tokenized-jsonl");
    }
    if (r.format != "tokenized-jsonl" && r.format != "jsonl" && r.format != "csv" && r.format != "tsv")
        throw Error("field 'format' is '" + r.format + "'", tw, "tokenized-jsonl, jsonl, csv or tsv");
    r.text.format = r.format == "tokenized-jsonl" ? "" : r.format;
    r.tokenizer_file = resolve_path(json::get_string_or(t, "tokenizer", "", tw), base);
    r.validation_split = json::get_number_or(t, "validation_split", 0.0, tw);
    if (r.validation_split < 0 || r.validation_split >= 1) throw Error("field 'validation_split' must be in [0, 1)", tw);
}

// How text is read: fields, the task type, the template and label words, the label list.
static void read_task_text(RunSpec& r, const nlohmann::json& t, const std::string& tw) {
    if (t.contains("fields")) {
        const auto& f = t["fields"];
        const std::string fw = tw + ".fields";
        only_fields(f, {"text", "pair", "label", "prompt", "response", "input", "target"}, fw);
        r.prompt_field = json::get_string_or(f, "prompt", json::get_string_or(f, "input", r.prompt_field, fw), fw);
        r.response_field = json::get_string_or(f, "response", json::get_string_or(f, "target", r.response_field, fw), fw);
        r.text.text_field = json::get_string_or(f, "text", r.text.text_field, fw);
        r.text.pair_field = json::get_string_or(f, "pair", "", fw);
        r.text.label_field = json::get_string_or(f, "label", r.text.label_field, fw);
    }
    const auto flag = [&](const char* field, bool& out) {
        if (!t.contains(field)) return;
        if (!t[field].is_boolean()) throw Error("field '" + std::string(field) + "' must be true or false", tw);
        out = t[field].get<bool>();
    };
    flag("header", r.text.header);
    flag("regression", r.text.regression);
    flag("skip_bad_lines", r.text.skip_bad_lines);
    const std::int64_t max_length = json::get_int_or(t, "max_length", 128, tw);
    if (max_length < 2) throw Error("field 'max_length' must be at least 2, got " + std::to_string(max_length), tw, "the longest tokenized example kept, e.g. 128");
    r.text.max_length = static_cast<std::size_t>(max_length);
    r.task_type = json::get_string_or(t, "type", r.text.regression ? "regression" : "classification", tw);
    if (r.task_type != "classification" && r.task_type != "regression" && r.task_type != "causal_lm" && r.task_type != "seq2seq")
        throw Error("field 'type' is '" + r.task_type + "'", tw, "classification, regression, causal_lm or seq2seq");
    if (r.task_type == "seq2seq") {
        if (r.format == "tokenized-jsonl") throw Error("seq2seq tasks read text", tw, "set format to jsonl, csv or tsv with input/target fields");
        // Text-to-text fields default to input/target (fields.input / fields.target, or prompt /
        // response, rename them).
        const bool named = t.contains("fields") && t["fields"].is_object();
        if (!named || !(t["fields"].contains("prompt") || t["fields"].contains("input"))) r.prompt_field = "input";
        if (!named || !(t["fields"].contains("response") || t["fields"].contains("target"))) r.response_field = "target";
    }
    if (r.task_type == "regression") r.text.regression = true;
    if (r.task_type == "causal_lm" && r.format == "tokenized-jsonl")
        throw Error("causal_lm tasks read text", tw, "set format to jsonl, csv or tsv with prompt/response or text fields");
    if (t.contains("generation")) {  // how evaluation generates (text-to-text tasks)
        const auto& g = t["generation"];
        const std::string gw = tw + ".generation";
        if (!g.is_object()) throw Error("field 'generation' must be an object", tw, "e.g. {\"max_new_tokens\": 8, \"num_beams\": 4}");
        only_fields(g, {"max_new_tokens", "num_beams", "length_penalty"}, gw);
        auto& eg = r.training.eval_generation;
        eg.max_new_tokens = json::get_int_or(g, "max_new_tokens", 0, gw);
        eg.num_beams = json::get_int_or(g, "num_beams", 1, gw);
        eg.length_penalty = json::get_number_or(g, "length_penalty", 1.0, gw);
        if (eg.max_new_tokens < 0) throw Error("field 'max_new_tokens' must be >= 0", gw);
        if (eg.num_beams < 1) throw Error("field 'num_beams' must be >= 1", gw);
    }
    r.text.template_text = json::get_string_or(t, "template", "", tw);
    r.text.mask_token = json::get_string_or(t, "mask_token", "", tw);
    if (t.contains("label_words")) {
        if (!t["label_words"].is_object()) throw Error("field 'label_words' must map labels to words", tw);
        for (auto it = t["label_words"].begin(); it != t["label_words"].end(); ++it) {
            if (!it.value().is_string()) throw Error("label_words['" + it.key() + "'] must be a string", tw);
            r.text.label_words.emplace_back(it.key(), it.value().get<std::string>());
        }
        if (r.text.template_text.empty()) throw Error("label_words need a 'template' with the mask token", tw);
    }
    if (t.contains("labels")) {
        if (!t["labels"].is_array()) throw Error("field 'labels' must be a list of strings", tw);
        for (const auto& l : t["labels"]) {
            if (!l.is_string()) throw Error("field 'labels' must be a list of strings", tw);
            r.labels.push_back(l.get<std::string>());
        }
    }
}

// "task": an object, or the path of a task.json whose paths are relative to its own folder.
static void read_task(RunSpec& r, const nlohmann::json& j, const std::string& source, const std::string& base) {
    if (!j.contains("task") || !(j["task"].is_object() || j["task"].is_string()))
        throw Error("missing field 'task'", source, "a task object or the path of a task.json file");
    if (j["task"].is_object()) {
        read_task_files(r, j["task"], base, source + ": task");
        read_task_text(r, j["task"], source + ": task");
        return;
    }
    r.task_file = resolve_path(j["task"].get<std::string>(), base);
    const nlohmann::json t = json::load_file(r.task_file);
    if (!t.is_object()) throw Error("a task file must hold a JSON object", r.task_file);
    const auto slash = r.task_file.find_last_of('/');
    read_task_files(r, t, slash == std::string::npos ? std::string(".") : r.task_file.substr(0, slash), r.task_file);
    read_task_text(r, t, r.task_file);
}

// "training": TrainConfig's fields, each checked; absent ones keep TrainingDefaults.
static TrainConfig read_training(const nlohmann::json& tr, const std::string& w) {
    only_fields(tr, {"max_steps", "batch_size", "grad_accum", "lr", "weight_decay", "schedule", "warmup_ratio", "max_grad_norm",
                     "eval_every", "checkpoint_every", "seed", "max_nonfinite", "patience", "pad_id", "length_bucketing", "keep_checkpoints", "precision", "device", "base_dtype", "quantize", "double_quant", "gradient_checkpointing", "packing"},
                w);
    TrainConfig c;
    c.max_steps = json::get_int_or(tr, "max_steps", c.max_steps, w);
    c.batch_size = json::get_int_or(tr, "batch_size", c.batch_size, w);
    c.grad_accum = json::get_int_or(tr, "grad_accum", c.grad_accum, w);
    c.lr = json::get_number_or(tr, "lr", c.lr, w);
    c.weight_decay = json::get_number_or(tr, "weight_decay", c.weight_decay, w);
    c.schedule = json::get_string_or(tr, "schedule", c.schedule, w);
    c.warmup_ratio = json::get_number_or(tr, "warmup_ratio", c.warmup_ratio, w);
    c.max_grad_norm = json::get_number_or(tr, "max_grad_norm", c.max_grad_norm, w);
    c.eval_every = json::get_int_or(tr, "eval_every", c.eval_every, w);
    c.checkpoint_every = json::get_int_or(tr, "checkpoint_every", c.checkpoint_every, w);
    c.seed = static_cast<std::uint64_t>(json::get_int_or(tr, "seed", 0, w));
    c.max_nonfinite = static_cast<int>(json::get_int_or(tr, "max_nonfinite", c.max_nonfinite, w));
    c.patience = static_cast<int>(json::get_int_or(tr, "patience", c.patience, w));
    c.pad_id = json::get_int_or(tr, "pad_id", c.pad_id, w);
    c.precision = json::get_string_or(tr, "precision", c.precision, w);
    c.device = json::get_string_or(tr, "device", c.device, w);
    c.base_dtype = json::get_string_or(tr, "base_dtype", c.base_dtype, w);
    c.quantize = json::get_string_or(tr, "quantize", c.quantize, w);
    if (tr.contains("double_quant")) {
        if (!tr["double_quant"].is_boolean()) throw Error("field 'double_quant' must be true or false", w);
        c.double_quant = tr["double_quant"].get<bool>();
    }
    if (tr.contains("gradient_checkpointing")) {
        if (!tr["gradient_checkpointing"].is_boolean()) throw Error("field 'gradient_checkpointing' must be true or false", w);
        c.gradient_checkpointing = tr["gradient_checkpointing"].get<bool>();
    }
    if (tr.contains("packing")) {
        if (!tr["packing"].is_boolean()) throw Error("field 'packing' must be true or false", w);
        c.packing = tr["packing"].get<bool>();
    }
    c.keep_checkpoints = static_cast<int>(json::get_int_or(tr, "keep_checkpoints", c.keep_checkpoints, w));
    if (tr.contains("length_bucketing")) {
        if (!tr["length_bucketing"].is_boolean()) throw Error("field 'length_bucketing' must be true or false", w);
        c.length_bucketing = tr["length_bucketing"].get<bool>();
    }
    check_training(c, w);
    return c;
}

RunSpec RunSpec::from_json(const nlohmann::json& j, const std::string& source, const std::string& base) {
    RunSpec r;
    r.source = source;
    r.raw = j;
    if (!j.is_object()) throw Error("a run spec must be a JSON object", source);
    only_fields(j, {"model", "architecture", "num_labels", "task", "delta", "training", "output_dir", "max_length"}, source);
    r.model = resolve_path(json::get_string(j, "model", source), base);
    r.load_options.architecture = json::get_string_or(j, "architecture", "", source);
    r.load_options.num_labels = json::get_int_or(j, "num_labels", 0, source);
    read_task(r, j, source, base);
    if (j.contains("max_length")) {  // overrides the task's, e.g. from the workbench's Training settings
        const std::int64_t n = json::get_int(j, "max_length", source);
        if (n < 2) throw Error("field 'max_length' must be at least 2", source, "the longest tokenized example kept, e.g. 128");
        r.text.max_length = static_cast<std::size_t>(n);
    }
    if (!j.contains("delta")) throw Error("missing field 'delta'", source, "a method name such as \"lora\" or a spec object");
    if (j["delta"].is_string()) r.set_delta(j["delta"].get<std::string>(), base, source + ": delta");
    else r.delta = DeltaSpec::from_json(j["delta"], source + ": delta");
    const auto eval_generation = r.training.eval_generation;  // the task's
    r.training = read_training(j.value("training", nlohmann::json::object()), source + ": training");
    r.training.eval_generation = eval_generation;
    if (r.training.packing && r.task_type != "causal_lm")
        throw Error("field 'packing' applies to causal_lm tasks (this task's type is " + r.task_type + ")", source + ": training",
                    "remove it, or set the task's type to causal_lm");
    r.output_dir = resolve_path(json::get_string_or(j, "output_dir", "", source), base);
    return r;
}

bool model_is_encoder_decoder(const std::string& model) {
    try {
        const ModelConfig c = is_builtin_model(model) ? builtin_config(model) : ModelConfig::load(model + "/config.json");
        return c.get_string_or("model_type", "") == "t5" || (c.raw.contains("is_encoder_decoder") && c.raw["is_encoder_decoder"].is_boolean() &&
                                                             c.raw["is_encoder_decoder"].get<bool>());
    } catch (const Error&) {
        return false;  // loading the model reports what is wrong with it
    }
}

TaskData load_task_data(const RunSpec& spec) {
    TaskData p;
    if (spec.format == "tokenized-jsonl") {
        p.train = read_tokenized_jsonl(spec.train_file, spec.labels, true);
        if (!spec.validation_file.empty()) p.valid = read_tokenized_jsonl(spec.validation_file, p.train.labels, false);
    } else {
        std::string tk = spec.tokenizer_file;
        if (tk.empty()) {
            if (is_builtin_model(spec.model))
                throw Error("a text task needs a tokenizer", spec.source + ": task.tokenizer", "set task.tokenizer to a tokenizer.json");
            tk = spec.model + "/tokenizer.json";
        }
        const auto shared = std::make_shared<const tok::Tokenizer>(tok::Tokenizer::from_file(tk));
        const tok::Tokenizer& tokenizer = *shared;
        if (spec.task_type == "seq2seq") {
            p.train = read_seq2seq_task(spec.train_file, spec.text, tokenizer, &p.train_stats, spec.prompt_field, spec.response_field);
            p.train.tokenizer = shared;
            if (!spec.validation_file.empty()) {
                p.valid = read_seq2seq_task(spec.validation_file, spec.text, tokenizer, &p.valid_stats, spec.prompt_field, spec.response_field);
                p.valid.tokenizer = shared;
            }
        } else if (spec.task_type == "causal_lm") {
            std::int64_t eos = tokenizer.token_to_id("</s>");
            if (eos < 0) eos = tokenizer.token_to_id("<|end_of_text|>");
            if (eos < 0) eos = tokenizer.token_to_id("<|endoftext|>");
            p.train = read_causal_task(spec.train_file, spec.text, tokenizer, eos, &p.train_stats, spec.prompt_field, spec.response_field);
            if (!spec.validation_file.empty())
                p.valid = read_causal_task(spec.validation_file, spec.text, tokenizer, eos, &p.valid_stats, spec.prompt_field,
                                           spec.response_field);
        } else {
            p.train = read_text_task(spec.train_file, spec.text, tokenizer, spec.labels, true, &p.train_stats);
            if (!spec.validation_file.empty())
                p.valid = read_text_task(spec.validation_file, spec.text, tokenizer, p.train.labels, false, &p.valid_stats);
            // An encoder-decoder answers a label-word task in words: scored by generation.
            if (!spec.text.label_words.empty() && !spec.text.regression && model_is_encoder_decoder(spec.model)) {
                as_text_to_text(p.train, tokenizer, spec.text.label_words);
                p.train.tokenizer = shared;
                if (!spec.validation_file.empty()) {
                    as_text_to_text(p.valid, tokenizer, spec.text.label_words);
                    p.valid.tokenizer = shared;
                }
            }
        }
    }
    if (spec.validation_file.empty() && spec.validation_split > 0) {
        auto parts = split_dataset(p.train, spec.validation_split, spec.training.seed);
        p.train = std::move(parts.first);
        p.valid = std::move(parts.second);
    }
    return p;
}

PreparedRun prepare_run(RunSpec spec) {
    PreparedRun p;
    TaskData d = load_task_data(spec);
    p.train = std::move(d.train);
    p.valid = std::move(d.valid);
    p.train_stats = d.train_stats;
    p.valid_stats = d.valid_stats;
    if (spec.validation_file.empty() && spec.validation_split > 0) spec.validation_file = "(split of " + spec.train_file + ")";
    if (spec.load_options.num_labels <= 0 && p.train.label_word_ids.empty() && !p.train.causal_lm && !p.train.seq2seq) {
        if (p.train.regression) spec.load_options.num_labels = 1;
        else if (!p.train.labels.empty()) spec.load_options.num_labels = static_cast<std::int64_t>(p.train.labels.size());
    }
    PreparedModel m = prepare_model(spec);
    if (p.train.seq2seq && !m.model.model->is_encoder_decoder())
        throw Error("a seq2seq task needs an encoder-decoder model, not " + m.model.model->name(), spec.source + ": task.type",
                    "load a T5ForConditionalGeneration, or use type causal_lm with prompt/response fields");
    p.model = std::move(m.model);
    p.deltas = std::move(m.deltas);
    p.warnings = std::move(m.warnings);
    p.spec = std::move(spec);
    return p;
}

PreparedModel prepare_model(RunSpec& spec) {
    PreparedModel p;
    p.model = load_model(spec.model, spec.load_options);
    const auto& tr = spec.raw.value("training", nlohmann::json::object());
    if (!tr.contains("pad_id")) spec.training.pad_id = p.model.model->config().get_int_or("pad_token_id", 0);
    if (!spec.delta_folder.empty()) {
        DeltaImport d = import_exported_delta(*p.model.model, spec.delta_folder);
        if (!d.warning.empty()) p.warnings.push_back(spec.delta_folder + ": " + d.warning);
        p.deltas = std::move(d.deltas);
        spec.delta = p.deltas.spec();
    } else {
        p.deltas = DeltaSet::apply(*p.model.model, spec.delta);
    }
    return p;
}

bool model_needs_data(const RunSpec& spec) {
    return spec.load_options.num_labels <= 0 && spec.task_type != "causal_lm" && spec.task_type != "seq2seq" && spec.text.label_words.empty();
}

nlohmann::json RunSpec::resolved_json() const {
    const auto absolute = absolute_path;
    nlohmann::json saved = raw;
    saved["model"] = absolute(model);
    if (!task_file.empty()) {
        saved["task"] = absolute(task_file);
    } else {
        saved["task"]["train"] = absolute(train_file);
        if (!validation_file.empty() && raw["task"].contains("validation")) saved["task"]["validation"] = absolute(validation_file);
        if (!tokenizer_file.empty()) saved["task"]["tokenizer"] = absolute(tokenizer_file);
    }
    if (!output_dir.empty()) saved["output_dir"] = absolute(output_dir);
    if (!delta_folder.empty()) saved["delta"] = absolute(delta_folder);
    return saved;
}

void RunSpec::set_delta(const std::string& arg, const std::string& base_dir, const std::string& where) {
    delta_folder.clear();
    if (arg.find('/') == std::string::npos && arg.find(".json") == std::string::npos && !path_exists(resolve_path(arg, base_dir))) {
        delta = DeltaSpec::from_json({{"method", arg}}, where);
        raw["delta"] = arg;
        return;
    }
    const std::string path = resolve_path(arg, base_dir);
    if (is_exported_delta(path)) {
        delta_folder = path;
    } else if (path_exists(path) && path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
        delta = DeltaSpec::load(path);
    } else {
        throw Error("'" + arg + "' is neither a method name, a delta spec file nor an exported delta folder", where,
                    "a folder written by 'deltatune export --format peft|deltatune' or saved by PEFT, a spec .json, or a method such as lora");
    }
    raw["delta"] = path;
}

RunSpec RunSpec::load(const std::string& path) {
    const auto slash = path.find_last_of('/');
    const nlohmann::json j = json::load_file(path);
    try {
        return from_json(j, path, slash == std::string::npos ? std::string(".") : path.substr(0, slash));
    } catch (const nlohmann::json::exception& e) {
        // A value of the wrong type where a field is read without its own check: still one message.
        throw Error("malformed run spec: " + json::exception_text(e), path, "see docs/run-spec.md");
    }
}

}  // namespace dt
