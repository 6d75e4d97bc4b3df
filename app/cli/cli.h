// Subcommands of the `deltatune` CLI.
#pragma once

#include <string>
#include <vector>

namespace dt {
struct DeltaSpec;
class DeltaSet;
class TransformerModel;
}

namespace dt::cli {

// Runs one command line (without the program name); returns the exit status.
// Throws dt::Error for bad input or usage.
int run(const std::vector<std::string>& args);

// Parsed flags: positional arguments, and --flag values (a flag may take several values).
struct Args {
    std::vector<std::string> positional;
    std::vector<std::pair<std::string, std::vector<std::string>>> flags;
    bool has(const std::string& f) const;
    std::vector<std::string> values(const std::string& f) const;
    std::string value(const std::string& f, const std::string& fallback = {}) const;
    int int_value(const std::string& f, int fallback) const;
    double number_value(const std::string& f, double fallback) const;
};
// The median of timings (the benchmarks report medians).
double median(std::vector<double> v);

// `known` lists the flags taking values; `switches` those that take none.
Args parse_args(const std::vector<std::string>& args, const std::vector<std::string>& known,
                const std::vector<std::string>& switches);

// --delta ARG: a spec file, or a method name with default hyperparameters.
DeltaSpec delta_spec_arg(const std::string& arg);
// --delta ARG on a loaded model: also accepts an adapter folder saved by Hugging Face PEFT.
DeltaSet attach_delta(TransformerModel& model, const std::string& arg);

int cmd_methods(const Args& a);
int cmd_spec(const Args& a);
int cmd_inspect(const Args& a);
int cmd_select(const Args& a);
int cmd_forward(const Args& a);
int cmd_generate(const Args& a);
int cmd_init(const Args& a);
int cmd_bench(const Args& a);
int cmd_train(const Args& a);
int cmd_tokenize(const Args& a);
int cmd_bench_tokenize(const Args& a);
int cmd_resume(const Args& a);
int cmd_eval(const Args& a);
int cmd_export(const Args& a);
int cmd_tensorboard(const Args& a);
int cmd_merge_deltas(const Args& a);
int cmd_demo(const Args& a);
int cmd_transfer(const Args& a);
int cmd_ablate(const Args& a);
int cmd_compare(const Args& a);
int cmd_scale(const Args& a);
int cmd_inspect_delta(const Args& a);
int cmd_pretrain(const Args& a);
int cmd_doctor(const Args& a);
// Starts `nproc` workers running `command` (a train or resume command line without --nproc), with
// torchrun's environment; returns the exit status (launch.cpp).
int launch_workers(int nproc, const std::vector<std::string>& command, int threads);

}  // namespace dt::cli
