#include "cli.h"

#include "core/error.h"
#include "core/threads.h"
#include "core/torch_compat.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace dt::cli {

static const char* kUsage =
    "usage: deltatune [--threads N] COMMAND ...\n"
    "\n"
    "commands:\n"
    "  doctor [--device cpu|cuda|cuda:N] [--json]   what this install runs on (LibTorch, BLAS, threads, GPUs),\n"
    "                                               then a self-test on the device: forward parity, a LoRA\n"
    "                                               step per precision, generation, save/load (exit 1: a\n"
    "                                               check failed; --inject-failure CHECK: testing aid)\n"
    "  methods [--json]                             the delta methods and their options (defaults, ranges,\n"
    "                                               PEFT names); --json: the engine's declarations\n"
    "  inspect MODEL [--delta SPEC] [--json]        module tree with parameter counts, dtypes, bytes;\n"
    "                                               with --delta, trainable counts and memory\n"
    "  select MODEL (--targets NAME... | --regex RE | --all-linear)\n"
    "         [--exclude NAME... | --exclude-regex RE] [--layers N...] [--layers-pattern P]\n"
    "         [--linear-only] [--json]                 module paths matched with PEFT's rules\n"
    "  forward MODEL [--delta SPEC] --input IN.safetensors --output OUT.safetensors [--device D]\n"
    "                                               one eval-mode float32 forward pass\n"
    "  generate MODEL [--delta SPEC] --input IN.safetensors --output OUT.safetensors [--max-new-tokens N] [--device D]\n"
    "  generate MODEL [--delta SPEC] --prompt TEXT [--tokenizer F] [--stop TEXT] [--temperature T --top-k K --top-p P --seed S]\n"
    "         [--num-beams K [--length-penalty X] [--early-stopping true|false|never]]\n"
    "                                               greedy (or sampled) generation with a KV cache (--no-cache: recompute)\n"
    "  init BUILTIN|CONFIG.json OUT_DIR [--seed N]  write a random-initialised model folder\n"
    "  tokenize TOKENIZER_JSON [--pair] [--no-special]\n"
    "                                               stdin lines (tab-separated pairs) -> JSON id arrays\n"
    "  bench tokenize TOKENIZER_JSON TEXT_FILE      tokens per second on one thread\n"
    "  train --spec RUN.json [--out DIR] [--delta SPEC|FOLDER] [--json] [--nproc N]\n"
    "                                               train a delta (run spec: docs/run-spec.md); an\n"
    "                                               exported delta FOLDER continues from its values;\n"
    "                                               --nproc N: N data-parallel workers (torchrun's\n"
    "                                               environment works too: docs/distributed.md)\n"
    "  spec --model MODEL --task TASK.json [--delta SPEC.json|FOLDER|METHOD] [--steps N] [--lr X]\n"
    "       [--batch B] [--device D] [--precision P] [--seed N] [--out DIR]\n"
    "                                               print the run spec the workbench writes for these\n"
    "                                               choices (a classification head on a masked-LM model)\n"
    "  resume RUN_DIR [--json] [--nproc N]          continue a stopped or killed run exactly\n"
    "  eval --spec RUN.json [--checkpoint DIR | --delta FOLDER]\n"
    "                                               metrics on the validation file\n"
    "  export RUN_DIR --format peft|deltatune|merged --out DIR [--checkpoint NAME]\n"
    "         [--max-shard-size SIZE]               merged weights past SIZE (default 5GB) are sharded\n"
    "                                               a PEFT adapter, DeltaTune's delta, or a merged model\n"
    "  tensorboard RUN_DIR...                       (re)write the runs' TensorBoard event files (scalars)\n"
    "  merge-deltas A B [C...] --base MODEL --weights W... --combination linear|cat|svd|ties|dare_linear|dare_ties|magnitude_prune\n"
    "         [--density D] [--svd-rank K] [--majority-sign total|frequency] [--seed S] [--format peft|deltatune] --out DIR\n"
    "                                               one delta from several (PEFT's add_weighted_adapter); A, B: exported\n"
    "                                               delta folders or run folders\n"
    "  transfer --spec TRANSFER.json                cross-task transfer matrix (docs/experiments.md)\n"
    "  inspect-delta RUN_DIR [--checkpoint NAME] [--json]\n"
    "                                               how far the trained delta moved, per layer and module\n"
    "  compare --spec COMPARE.json                  methods on one task: metric vs trainable parameters,\n"
    "                                               convergence curves, Pareto front (docs/experiments.md)\n"
    "  scale --spec SCALE.json                      power of scale: methods x model sizes on one task,\n"
    "                                               metric per size and convergence curves\n"
    "  ablate --spec RUN.json --checkpoint DIR --out DIR [--max-eval N]\n"
    "                                               layer ablation: the delta removed from layers i..j\n"
    "  demo data OUT_DIR [--seed N] [--corpus-lines N] [--train N] [--valid N]\n"
    "                                               the demo's synthetic language: tokenizer, corpus, tasks\n"
    "  pretrain --model CONFIG.json|MODEL --corpus TEXT --tokenizer TOKENIZER_JSON --out DIR\n"
    "         [--steps N] [--batch B] [--seq T] [--lr X] [--seed N] [--lines N] [--mask-prob P]\n"
    "         [--noise-density P] [--mean-span L]\n"
    "                                               masked-LM pretraining of a BERT-family model, span\n"
    "                                               corruption of a T5ForConditionalGeneration\n"
    "  bench load MODEL [--runs N]                  load throughput vs. reading the files with cat\n"
    "  bench memory --spec RUN.json [--batch B]     one training step; resident memory after loading and peak (JSON)\n"
    "  bench step MODEL --delta SPEC... [--batch B] [--seq T] [--steps N]\n"
    "                                               forward+backward+AdamW step time per method\n"
    "  bench train MODEL [--delta SPEC] ...         the same, LoRA r=8 on query/value by default\n"
    "                    [--profile]                and where a step's time goes: phases, regions, operators\n"
    "                    [--base-dtype bf16]        the frozen base stored in bf16 (deltas and AdamW stay fp32)\n"
    "                    [--quantize int8|nf4 [--double-quant]]  the frozen Linear weights quantized (QLoRA-style)\n"
    "                    [--loss-only]              LM heads: the chunked loss from hidden states (no B x T x V logits)\n"
    "                    [--checkpointing]          activation checkpointing per block\n"
    "         [--device cpu|cuda[:N]] [--precision fp32|bf16|fp16]\n"
    "\n"
    "SPEC is a delta spec JSON file, a method name with its defaults (lora, adapter, bitfit, prefix,\n"
    "prompt, ia3, layernorm, last_layers, selective, full), or an exported delta folder: DeltaTune's\n"
    "format or an adapter saved by Hugging Face PEFT (inspect, forward, train, eval).\n"
    "\n"
    "MODEL is a Hugging Face model folder (config.json + model.safetensors or shards) or a built-in:\n"
    "tiny-bert, bert-base-shape, bert-base-seqcls, tiny-llama, llama-1b-shape, tiny-t5, tiny-gptneox\n"
    "(random weights, --seed N).\n"
    "Threads: --threads N, else DELTATUNE_THREADS, else every core.\n";

bool Args::has(const std::string& f) const {
    for (const auto& kv : flags)
        if (kv.first == f) return true;
    return false;
}

std::vector<std::string> Args::values(const std::string& f) const {
    std::vector<std::string> out;
    for (const auto& kv : flags)
        if (kv.first == f) out.insert(out.end(), kv.second.begin(), kv.second.end());
    return out;
}

std::string Args::value(const std::string& f, const std::string& fallback) const {
    auto v = values(f);
    return v.empty() ? fallback : v.back();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double Args::number_value(const std::string& f, double fallback) const {
    if (!has(f)) return fallback;
    const std::string v = value(f);
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') throw Error("expected a number, got '" + v + "'", f);
    return d;
}

int Args::int_value(const std::string& f, int fallback) const {
    if (!has(f)) return fallback;
    const std::string v = value(f);
    char* end = nullptr;
    long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0') throw Error("expected an integer, got '" + v + "'", f);
    return static_cast<int>(n);
}

Args parse_args(const std::vector<std::string>& args, const std::vector<std::string>& known,
                const std::vector<std::string>& switches) {
    Args a;
    auto in = [](const std::vector<std::string>& v, const std::string& s) {
        for (const auto& x : v)
            if (x == s) return true;
        return false;
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& s = args[i];
        if (s.rfind("--", 0) == 0 && s.size() > 2) {
            if (in(switches, s)) {
                a.flags.push_back({s, {}});
            } else if (in(known, s)) {
                std::vector<std::string> vals;
                while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) vals.push_back(args[++i]);
                if (vals.empty()) throw Error("option needs a value", s);
                a.flags.push_back({s, vals});
            } else {
                throw Error("unknown option", s, "run 'deltatune --help'");
            }
        } else {
            a.positional.push_back(s);
        }
    }
    return a;
}

int run(const std::vector<std::string>& all) {
    std::vector<std::string> args;
    int threads = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (all[i] == "--threads") {
            if (i + 1 >= all.size()) throw Error("option needs a value", "--threads");
            char* end = nullptr;
            long n = std::strtol(all[i + 1].c_str(), &end, 10);
            if (*end != '\0' || n <= 0) throw Error("expected a positive integer, got '" + all[i + 1] + "'", "--threads");
            threads = static_cast<int>(n);
            ++i;
        } else {
            args.push_back(all[i]);
        }
    }
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::fputs(kUsage, args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
        std::printf("deltatune 0.1.0 (LibTorch %s)\n", compat::torch_version_string());
        return 0;
    }
    const std::string cmd = args[0];
    // Data parallel: --nproc N starts N workers of the same command (launch.cpp).
    if (cmd == "train" || cmd == "resume") {
        for (std::size_t i = 1; i < args.size(); ++i) {
            if (args[i] != "--nproc") continue;
            if (i + 1 >= args.size()) throw Error("option needs a value", "--nproc");
            char* end = nullptr;
            const long n = std::strtol(args[i + 1].c_str(), &end, 10);
            if (*end != '\0' || n < 1) throw Error("expected a positive integer, got '" + args[i + 1] + "'", "--nproc");
            std::vector<std::string> rest = args;
            rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(i), rest.begin() + static_cast<std::ptrdiff_t>(i) + 2);
            if (n > 1) return launch_workers(static_cast<int>(n), rest, threads);
            args = rest;
            break;
        }
    }
    configure_threads(threads);
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (cmd == "spec")
        return cmd_spec(parse_args(rest, {"--model", "--task", "--delta", "--steps", "--batch", "--lr", "--device", "--precision", "--seed", "--out"}, {}));
    if (cmd == "methods") return cmd_methods(parse_args(rest, {}, {"--json"}));
    if (cmd == "inspect") return cmd_inspect(parse_args(rest, {"--seed", "--delta"}, {"--json"}));
    if (cmd == "select")
        return cmd_select(parse_args(rest, {"--targets", "--regex", "--exclude", "--exclude-regex", "--layers",
                                            "--layers-pattern", "--seed"},
                                     {"--all-linear", "--linear-only", "--json"}));
    if (cmd == "forward") return cmd_forward(parse_args(rest, {"--input", "--output", "--seed", "--delta", "--device"}, {}));
    if (cmd == "generate")
        return cmd_generate(parse_args(rest, {"--input", "--output", "--seed", "--delta", "--max-new-tokens", "--prompt", "--tokenizer", "--temperature",
                                              "--top-k", "--top-p", "--stop", "--num-beams", "--length-penalty", "--early-stopping", "--device"},
                                       {"--no-cache", "--do-sample"}));
    if (cmd == "init") return cmd_init(parse_args(rest, {"--seed"}, {}));
    if (cmd == "tokenize") return cmd_tokenize(parse_args(rest, {}, {"--pair", "--no-special"}));
    if (cmd == "train") return cmd_train(parse_args(rest, {"--spec", "--out", "--delta"}, {"--json"}));
    if (cmd == "resume") return cmd_resume(parse_args(rest, {}, {"--json"}));
    if (cmd == "export") return cmd_export(parse_args(rest, {"--format", "--out", "--checkpoint", "--max-shard-size"}, {}));
    if (cmd == "tensorboard") return cmd_tensorboard(parse_args(rest, {}, {}));
    if (cmd == "merge-deltas")
        return cmd_merge_deltas(parse_args(rest, {"--base", "--weights", "--combination", "--density", "--svd-rank", "--majority-sign", "--seed",
                                                  "--format", "--out"},
                                           {}));
    if (cmd == "eval") return cmd_eval(parse_args(rest, {"--spec", "--checkpoint", "--delta"}, {}));
    if (cmd == "transfer") return cmd_transfer(parse_args(rest, {"--spec"}, {}));
    if (cmd == "inspect-delta") return cmd_inspect_delta(parse_args(rest, {"--checkpoint"}, {"--json"}));
    if (cmd == "compare") return cmd_compare(parse_args(rest, {"--spec"}, {}));
    if (cmd == "scale") return cmd_scale(parse_args(rest, {"--spec"}, {}));
    if (cmd == "ablate") return cmd_ablate(parse_args(rest, {"--spec", "--checkpoint", "--out", "--max-eval"}, {}));
    if (cmd == "demo") return cmd_demo(parse_args(rest, {"--seed", "--corpus-lines", "--train", "--valid"}, {}));
    if (cmd == "pretrain")
        return cmd_pretrain(parse_args(rest, {"--model", "--corpus", "--tokenizer", "--out", "--seq", "--lines", "--mask-prob", "--steps",
                                              "--batch", "--lr", "--seed", "--eval-every", "--noise-density", "--mean-span"},
                                       {}));
    if (cmd == "doctor") return cmd_doctor(parse_args(rest, {"--device", "--inject-failure"}, {"--json"}));
    if (cmd == "bench")
        return cmd_bench(parse_args(rest, {"--runs", "--seed", "--delta", "--batch", "--seq", "--steps", "--precision", "--spec", "--device", "--base-dtype", "--quantize"}, {"--profile", "--double-quant", "--loss-only", "--checkpointing"}));
    throw Error("unknown command '" + cmd + "'", "", "run 'deltatune --help'");
}

}  // namespace dt::cli
