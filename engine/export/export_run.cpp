#include "export/export_run.h"

#include "core/error.h"
#include "export/delta_format.h"
#include "export/peft_export.h"
#include "io/atomic_file.h"
#include "io/weight_set.h"
#include "io/json_util.h"
#include "train/run.h"
#include "train/run_folder.h"

#include <fstream>

namespace dt {
namespace {

// The tokenizer files transformers' AutoTokenizer reads, whichever the model folder has.
const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                                       "vocab.json", "merges.txt", "tokenizer.model", "spiece.model", "added_tokens.json"};

void copy_file(const std::string& from, const std::string& to) {
    std::ifstream src(from, std::ios::binary);
    std::ofstream dst(to, std::ios::binary);
    dst << src.rdbuf();
    dst.close();
    if (!src || !dst) throw Error("cannot copy " + from, to);
}

}  // namespace

std::string export_run(const std::string& run, const std::string& format, const std::string& out, const std::string& checkpoint,
                       std::uint64_t max_shard_bytes) {
    if (format != "peft" && format != "merged" && format != "deltatune")
        throw Error("unknown format '" + format + "'", "--format", "peft, deltatune or merged");
    const std::string name = run_folder::pick_checkpoint(run, checkpoint);
    if (format == "merged" && path_exists(out)) throw Error("the destination exists", out, "choose a new folder; nothing was written there");
    LoadedRun p = load_run(run, name);  // the model, its delta and the checkpoint's values; no data read
    if (format == "deltatune") {
        export_deltatune(*p.model.model, p.deltas, out, p.spec.model);
    } else if (format == "peft") {
        for (const auto& m : p.deltas.methods())
            if (m->can_fold()) m->fold(*p.model.model);
        export_peft(*p.model.model, p.deltas, out, p.spec.model);
    } else {
        p.deltas.merge_and_unload(*p.model.model);
        write_folder_atomic(out, [&](const std::string& staging) {
            save_model(*p.model.model, staging, max_shard_bytes);
            // The task's own tokenizer.json wins over the model folder's.
            if (!p.spec.tokenizer_file.empty()) copy_file(p.spec.tokenizer_file, staging + "/tokenizer.json");
            if (!is_builtin_model(p.spec.model))
                for (const char* f : kTokenizerFiles)
                    if (path_exists(p.spec.model + "/" + f) && !path_exists(staging + "/" + f)) copy_file(p.spec.model + "/" + f, staging + "/" + f);
        });
    }
    return name;
}

}  // namespace dt
