// `deltatune export RUN_DIR --format peft|merged --out DIR [--checkpoint NAME]`: a trained run's delta
// as a PEFT adapter folder, or merged into a complete Hugging Face model folder. Both are written
// beside the destination and renamed into place.
#include "cli.h"

#include "core/error.h"
#include "export/delta_format.h"
#include "export/peft_export.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/json_util.h"
#include "models/loader.h"
#include "train/run_spec.h"

#include <cstdio>
#include <fstream>
#include <sys/stat.h>

namespace dt::cli {
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

int cmd_export(const Args& a) {
    if (a.positional.size() != 1) throw Error("needs RUN_DIR", "export", "deltatune export RUN_DIR --format peft --out DIR");
    const std::string run = a.positional[0], out = a.value("--out"), format = a.value("--format", "peft");
    if (out.empty()) throw Error("needs --out DIR", "export");
    if (format != "peft" && format != "merged" && format != "deltatune")
        throw Error("unknown format '" + format + "'", "--format", "peft, deltatune or merged");
    std::string name = a.value("--checkpoint");
    if (name.empty()) {
        name = path_exists(run + "/checkpoints/final") ? "final" : json::read_text_file(run + "/checkpoints/latest", 4096);
        while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    }
    if (!is_plain_file_name(name) || !path_exists(run + "/checkpoints/" + name))
        throw Error("no checkpoint '" + name + "'", run + "/checkpoints", "train first, or pass --checkpoint NAME");
    if (format == "merged" && path_exists(out)) throw Error("the destination exists", out, "choose a new folder; nothing was written there");
    const std::uint64_t shard = a.has("--max-shard-size") ? parse_byte_size(a.value("--max-shard-size"), "--max-shard-size") : kDefaultMaxShardBytes;
    if (a.has("--max-shard-size") && format != "merged") throw Error("only merged exports are sharded", "--max-shard-size");
    PreparedRun p = prepare_run(RunSpec::load(run + "/spec.json"));
    Trainer t(*p.model.model, p.train, nullptr, p.spec.training);
    t.load_checkpoint(run + "/checkpoints/" + name);
    if (format == "deltatune") {
        export_deltatune(*p.model.model, p.deltas, out, p.spec.model);
    } else if (format == "peft") {
        for (const auto& m : p.deltas.methods())
            if (m->can_fold()) m->fold(*p.model.model);
        export_peft(*p.model.model, p.deltas, out, p.spec.model);
    } else {
        p.deltas.merge_and_unload(*p.model.model);
        write_folder_atomic(out, [&](const std::string& staging) {
            save_model(*p.model.model, staging, shard);
            // The task's own tokenizer.json wins over the model folder's.
            if (!p.spec.tokenizer_file.empty()) copy_file(p.spec.tokenizer_file, staging + "/tokenizer.json");
            if (!is_builtin_model(p.spec.model))
                for (const char* f : kTokenizerFiles)
                    if (path_exists(p.spec.model + "/" + f) && !path_exists(staging + "/" + f)) copy_file(p.spec.model + "/" + f, staging + "/" + f);
        });
    }
    std::fprintf(stderr, "exported %s (%s) from checkpoint %s to %s\n", run.c_str(), format.c_str(), name.c_str(), out.c_str());
    return 0;
}

}  // namespace dt::cli
