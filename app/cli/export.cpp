// `deltatune export RUN_DIR --format peft|deltatune|merged --out DIR [--checkpoint NAME]
// [--max-shard-size SIZE]`: engine/export/export_run does the work.
#include "cli.h"

#include "core/error.h"
#include "export/export_run.h"
#include "train/tensorboard.h"

#include <cstdio>

namespace dt::cli {

int cmd_export(const Args& a) {
    if (a.positional.size() != 1) throw Error("needs RUN_DIR", "export", "deltatune export RUN_DIR --format peft --out DIR");
    const std::string run = a.positional[0], out = a.value("--out"), format = a.value("--format", "peft");
    if (out.empty()) throw Error("needs --out DIR", "export");
    if (a.has("--max-shard-size") && format != "merged") throw Error("only merged exports are sharded", "--max-shard-size");
    const std::uint64_t shard = a.has("--max-shard-size") ? parse_byte_size(a.value("--max-shard-size"), "--max-shard-size") : kDefaultMaxShardBytes;
    const std::string name = export_run(run, format, out, a.value("--checkpoint"), shard);
    std::fprintf(stderr, "exported %s (%s) from checkpoint %s to %s\n", run.c_str(), format.c_str(), name.c_str(), out.c_str());
    return 0;
}

// `deltatune tensorboard RUN_DIR...`: (re)writes each run's TensorBoard event file (runs write it
// when they end; this is for runs made before, or killed).
int cmd_tensorboard(const Args& a) {
    if (a.positional.empty()) throw Error("needs RUN_DIR", "tensorboard", "deltatune tensorboard RUN_DIR [RUN_DIR...]; then tensorboard --logdir RUN_DIR");
    for (const auto& run : a.positional) std::printf("%s\n", tensorboard::export_run(run).c_str());
    return 0;
}

}  // namespace dt::cli
