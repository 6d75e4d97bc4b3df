// inspect, select, forward, init: thin wrappers over the engine.
#include "cli.h"

#include "core/devices.h"
#include "core/error.h"
#include "delta/delta_set.h"
#include "delta/method.h"
#include "export/delta_format.h"
#include "export/peft_import.h"
#include "generate/generate.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "tree/module_tree.h"
#include "tree/selection.h"
#include "tokenizers/tokenizer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

namespace dt::cli {
namespace {

const std::string& need_model(const Args& a, const char* cmd) {
    if (a.positional.empty())
        throw Error(std::string("missing MODEL argument"), cmd, "give a model folder or a built-in name such as tiny-bert");
    return a.positional[0];
}

LoadedModel load(const Args& a, const char* cmd) {
    LoadOptions o;
    o.seed = static_cast<std::uint64_t>(a.int_value("--seed", 0));
    LoadedModel m = load_model(need_model(a, cmd), o);
    auto list = [](const std::vector<std::string>& v) {
        std::string s;
        for (std::size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + v[i];
        if (v.size() > 8) s += ", ... (" + std::to_string(v.size()) + " in all)";
        return s;
    };
    if (!m.report.missing.empty())
        std::fprintf(stderr, "warning: %zu parameters not in the checkpoint, randomly initialised: %s\n",
                     m.report.missing.size(), list(m.report.missing).c_str());
    if (!m.report.unexpected.empty())
        std::fprintf(stderr, "warning: %zu checkpoint tensors not used by %s: %s\n", m.report.unexpected.size(),
                     m.model->name().c_str(), list(m.report.unexpected).c_str());
    return m;
}

}  // namespace

int cmd_methods(const Args& a) {
    if (a.has("--json")) {
        nlohmann::json all = nlohmann::json::array();
        for (const auto& m : method_table()) all.push_back(m.to_json());
        std::printf("%s\n", all.dump(2).c_str());
        return 0;
    }
    for (const auto& m : method_table()) {
        std::printf("%s (%s): %s\n  trains %s\n", m.name.c_str(), m.family.c_str(), m.summary.c_str(), m.formula.c_str());
        for (const auto& o : m.options) {
            const std::string def = o.default_value.is_null() ? "-" : o.default_value.dump();
            std::printf("  %-22s %-8s default %-10s %s%s\n", o.name.c_str(), o.kind.c_str(), def.c_str(), o.help.c_str(),
                        o.peft.empty() ? "" : (" [PEFT: " + o.peft + "]").c_str());
        }
    }
    return 0;
}

DeltaSet attach_delta(TransformerModel& model, const std::string& arg) {
    if (is_exported_delta(arg)) {  // PEFT's adapter folder or DeltaTune's
        DeltaImport d = import_exported_delta(model, arg);
        if (!d.warning.empty()) std::fprintf(stderr, "warning: %s\n", d.warning.c_str());
        return std::move(d.deltas);
    }
    return DeltaSet::apply(model, delta_spec_arg(arg));
}

DeltaSpec delta_spec_arg(const std::string& arg) {
    // A file, or a method name with its defaults ("lora", "bitfit", ...).
    if (arg.find('/') == std::string::npos && arg.find(".json") == std::string::npos)
        return DeltaSpec::from_json({{"method", arg}}, "--delta " + arg);
    return DeltaSpec::load(arg);
}

int cmd_inspect(const Args& a) {
    LoadedModel m = load(a, "inspect");
    DeltaSet deltas;
    if (a.has("--delta")) deltas = attach_delta(*m.model, a.value("--delta"));
    ModuleTree tree = ModuleTree::build(*m.model);
    const Accounting acc = deltas.accounting(*m.model);
    if (a.has("--json")) {
        auto j = nlohmann::ordered_json::parse(tree.to_json());
        nlohmann::ordered_json doc;
        doc["source"] = m.source;
        doc["weights"] = m.report.weights_source;
        doc["missing"] = m.report.missing;
        doc["unexpected"] = m.report.unexpected;
        for (auto it = j.begin(); it != j.end(); ++it) doc[it.key()] = it.value();
        if (a.has("--delta")) {
            doc["delta"] = deltas.spec().to_json();
            doc["accounting"] = acc.to_json();
        }
        std::cout << doc.dump(2) << "\n";
    } else {
        std::cout << tree.to_text();
        if (a.has("--delta")) {
            for (const auto& pm : acc.per_method)
                std::cout << "  " << pm.method << ": " << pm.added << " added, " << pm.unfrozen << " unfrozen\n";
            std::cout << "memory: weights " << format_bytes(acc.weight_bytes) << ", gradients " << format_bytes(acc.gradient_bytes)
                      << ", AdamW state " << format_bytes(acc.adamw_bytes) << "\n";
        }
        std::cout << acc.summary() << "\n";
    }
    return 0;
}

int cmd_select(const Args& a) {
    LoadedModel m = load(a, "select");
    ModuleTree tree = ModuleTree::build(*m.model);
    SelectionSpec s;
    s.targets = a.values("--targets");
    if (a.has("--regex")) s.target_regex = a.value("--regex");
    s.all_linear = a.has("--all-linear");
    if (s.targets.size() == 1 && s.targets[0] == "all-linear") {
        s.targets.clear();
        s.all_linear = true;
    }
    s.exclude = a.values("--exclude");
    if (a.has("--exclude-regex")) s.exclude_regex = a.value("--exclude-regex");
    for (const auto& l : a.values("--layers")) {
        char* end = nullptr;
        long v = std::strtol(l.c_str(), &end, 10);
        if (l.empty() || *end != '\0' || v < 0) throw Error("expected a layer index, got '" + l + "'", "--layers");
        s.layers.push_back(static_cast<int>(v));
    }
    s.layers_pattern = a.values("--layers-pattern");
    s.linear_only = a.has("--linear-only");
    const auto paths = select_modules(tree, s);
    if (a.has("--json")) {
        nlohmann::ordered_json j;
        j["matched"] = paths;
        std::int64_t params = 0;
        for (const auto& p : paths) params += tree.nodes()[tree.find(p)].total_params;
        j["count"] = paths.size();
        j["params"] = params;
        std::cout << j.dump(2) << "\n";
    } else {
        for (const auto& p : paths) std::cout << p << "\n";
    }
    if (paths.empty()) std::fprintf(stderr, "warning: no module matched\n");
    return 0;
}

int cmd_forward(const Args& a) {
    const std::string in_path = a.value("--input"), out_path = a.value("--output");
    if (in_path.empty() || out_path.empty()) throw Error("needs --input IN.safetensors and --output OUT.safetensors", "forward");
    auto in_file = st::File::open(in_path);
    LoadedModel m = load(a, "forward");
    DeltaSet deltas;
    if (a.has("--delta")) deltas = attach_delta(*m.model, a.value("--delta"));
    ForwardInputs in;
    auto get = [&](const char* name) { return in_file->contains(name) ? in_file->tensor(name).clone() : at::Tensor(); };
    in.input_ids = get("input_ids");
    in.attention_mask = get("attention_mask");
    in.token_type_ids = get("token_type_ids");
    in.decoder_input_ids = get("decoder_input_ids");
    in.labels = get("labels");
    in.output_hidden_states = true;
    try {
        m.model->validate_inputs(in);
    } catch (const Error& e) {
        throw e.within(in_path);
    }
    // --device: the same pass on a GPU (gpu-check.sh compares it with the CPU's and transformers').
    const c10::Device device = parse_device(a.value("--device", "cpu"));
    m.model->to(device);
    for (at::Tensor* x : {&in.input_ids, &in.attention_mask, &in.token_type_ids, &in.decoder_input_ids, &in.labels})
        if (x->defined()) *x = x->to(device);
    torch::NoGradGuard ng;
    m.model->eval();
    ForwardOutputs out = m.model->forward(in);
    st::NamedTensors t;
    if (out.logits.defined()) t.emplace_back("logits", out.logits.to(torch::kFloat));
    t.emplace_back("last_hidden_state", out.last_hidden_state.to(torch::kFloat));
    if (out.pooler_output.defined()) t.emplace_back("pooler_output", out.pooler_output.to(torch::kFloat));
    // Encoder-decoders (T5) name the decoder's states decoder_hidden_states_<i>, as transformers does.
    const std::string hs = out.encoder_last_hidden_state.defined() ? "decoder_hidden_states_" : "hidden_states_";
    for (std::size_t i = 0; i < out.hidden_states.size(); ++i) t.emplace_back(hs + std::to_string(i), out.hidden_states[i].to(torch::kFloat));
    if (out.encoder_last_hidden_state.defined()) {
        t.emplace_back("encoder_last_hidden_state", out.encoder_last_hidden_state.to(torch::kFloat));
        for (std::size_t i = 0; i < out.encoder_hidden_states.size(); ++i)
            t.emplace_back("encoder_hidden_states_" + std::to_string(i), out.encoder_hidden_states[i].to(torch::kFloat));
    }
    if (out.loss.defined()) t.emplace_back("loss", out.loss.to(torch::kFloat));
    st::save(out_path, t, {{"format", "pt"}, {"model", m.source}});
    std::fprintf(stderr, "wrote %zu tensors to %s\n", t.size(), out_path.c_str());
    return 0;
}

int cmd_generate(const Args& a) {
    LoadedModel m = load(a, "generate");
    DeltaSet deltas;
    if (a.has("--delta")) deltas = attach_delta(*m.model, a.value("--delta"));
    const std::string folder = std::filesystem::is_directory(m.source) ? m.source : std::string();
    GenerationOptions g = GenerationOptions::for_model(m.model->config(), folder);
    g.max_new_tokens = a.int_value("--max-new-tokens", static_cast<int>(g.max_new_tokens));
    g.use_cache = !a.has("--no-cache");
    if (a.has("--temperature") || a.has("--top-p") || a.has("--top-k") || a.has("--do-sample")) g.do_sample = true;
    g.temperature = a.number_value("--temperature", g.temperature);
    g.top_p = a.number_value("--top-p", g.top_p);
    g.top_k = a.int_value("--top-k", static_cast<int>(g.top_k));
    g.seed = static_cast<std::uint64_t>(a.int_value("--seed", 0));
    g.num_beams = a.int_value("--num-beams", static_cast<int>(g.num_beams));
    g.length_penalty = a.number_value("--length-penalty", g.length_penalty);
    if (a.has("--early-stopping")) g.early_stopping = a.value("--early-stopping");
    g.validate();
    if (a.has("--input")) {  // ids in, ids out, as transformers' generate returns them
        const std::string in_path = a.value("--input"), out_path = a.value("--output");
        if (out_path.empty()) throw Error("needs --output OUT.safetensors with --input", "generate");
        auto f = st::File::open(in_path);
        if (!f->contains("input_ids")) throw Error("missing tensor 'input_ids'", in_path);
        ForwardInputs in;
        in.input_ids = f->tensor("input_ids").clone();
        if (f->contains("attention_mask")) in.attention_mask = f->tensor("attention_mask").clone();
        if (m.model->is_encoder_decoder()) in.decoder_input_ids = torch::zeros({in.input_ids.size(0), 1}, torch::kLong);
        try {
            m.model->validate_inputs(in);
        } catch (const Error& e) {
            throw e.within(in_path);
        }
        const c10::Device device = parse_device(a.value("--device", "cpu"));
        m.model->to(device);
        const at::Tensor out = generate(*m.model, in.input_ids.to(device), in.attention_mask.defined() ? in.attention_mask.to(device) : at::Tensor(), g)
                                   .to(at::kCPU);
        st::save(out_path, {{"generated_ids", out}}, {{"format", "pt"}, {"model", m.source}});
        std::fprintf(stderr, "wrote generated_ids %s to %s\n", c10::str(out.sizes()).c_str(), out_path.c_str());
        return 0;
    }
    if (!a.has("--prompt")) throw Error("needs --prompt TEXT or --input IN.safetensors", "generate");
    if (a.has("--device")) throw Error("is for --input (ids in, ids out); --prompt generates on the CPU", "--device");
    std::string tok_path = a.value("--tokenizer");
    if (tok_path.empty()) tok_path = folder.empty() ? std::string() : folder + "/tokenizer.json";
    if (tok_path.empty() || !std::filesystem::exists(tok_path))
        throw Error("no tokenizer for the prompt", tok_path.empty() ? m.source : tok_path, "give --tokenizer tokenizer.json");
    const tok::Tokenizer tokenizer = tok::Tokenizer::from_file(tok_path);
    const tok::Encoding enc = tokenizer.encode(a.value("--prompt"));
    if (enc.ids.empty()) throw Error("the prompt encodes to no tokens", "--prompt");
    const at::Tensor ids = torch::tensor(enc.ids, torch::kLong).unsqueeze(0);
    ForwardInputs check;
    check.input_ids = ids;
    if (m.model->is_encoder_decoder()) check.decoder_input_ids = torch::zeros({1, 1}, torch::kLong);
    m.model->validate_inputs(check);
    const std::vector<std::string> stops = a.values("--stop");
    auto cut_at_stop = [&](std::string text, bool& stopped) {
        for (const auto& s : stops) {
            const auto at = text.find(s);
            if (!s.empty() && at != std::string::npos) {
                text = text.substr(0, at);
                stopped = true;
            }
        }
        return text;
    };
    if (g.num_beams > 1) {  // the best beam is known only at the end: printed whole
        const at::Tensor out = generate(*m.model, ids, {}, g);
        const std::int64_t from = m.model->is_encoder_decoder() ? 1 : ids.size(1);
        std::vector<std::int64_t> tokens(out[0].data_ptr<std::int64_t>() + from, out[0].data_ptr<std::int64_t>() + out.size(1));
        bool stopped = false;
        std::fputs((cut_at_stop(tokenizer.decode(tokens), stopped) + "\n").c_str(), stdout);
        return 0;
    }
    std::vector<std::int64_t> generated;
    std::string shown;  // the decoded text printed so far: each step prints what decoding added
    bool stopped = false;
    generate(*m.model, ids, {}, g, [&](const at::Tensor& next) {
        generated.push_back(next[0].item<std::int64_t>());
        const std::string text = cut_at_stop(tokenizer.decode(generated), stopped);
        if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
            std::fputs(text.c_str() + shown.size(), stdout);
            std::fflush(stdout);
            shown = text;
        }
        return !stopped;
    });
    std::fputs("\n", stdout);
    return 0;
}

int cmd_init(const Args& a) {
    if (a.positional.size() != 2)
        throw Error("needs BUILTIN (or CONFIG.json) and OUT_DIR", "init", "e.g. deltatune init tiny-bert /tmp/tiny");
    const auto seed = static_cast<std::uint64_t>(a.int_value("--seed", 0));
    const std::string& what = a.positional[0];
    const bool from_file = what.size() > 5 && what.compare(what.size() - 5, 5, ".json") == 0;
    auto model = create_model(from_file ? ModelConfig::load(what) : builtin_config(what), seed);
    save_model(*model, a.positional[1]);
    std::fprintf(stderr, "wrote %s (%s, seed %llu) to %s\n", a.positional[0].c_str(), model->name().c_str(),
                 static_cast<unsigned long long>(seed), a.positional[1].c_str());
    return 0;
}

}  // namespace dt::cli
