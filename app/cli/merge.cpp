// `deltatune merge-deltas A B [C...] --base MODEL --weights W... --combination C [--density D]
// [--svd-rank K] [--majority-sign total|frequency] [--seed S] [--format peft|deltatune] --out DIR`:
// engine/export/merge_deltas does the merging; the result is written like any exported delta.
#include "cli.h"

#include "core/error.h"
#include "export/delta_format.h"
#include "export/merge_deltas.h"
#include "export/peft_export.h"
#include "models/loader.h"
#include "models/model.h"

#include <cstdio>

namespace dt::cli {

int cmd_merge_deltas(const Args& a) {
    const char* usage = "deltatune merge-deltas A B --base MODEL --weights 0.7 0.5 --combination linear --out DIR";
    const std::string base = a.value("--base"), out = a.value("--out"), format = a.value("--format", "peft");
    if (a.positional.size() < 2) throw Error("needs at least two delta folders", "merge-deltas", usage);
    if (base.empty()) throw Error("needs --base MODEL (the model the deltas were trained on)", "merge-deltas", usage);
    if (out.empty()) throw Error("needs --out DIR", "merge-deltas", usage);
    if (format != "peft" && format != "deltatune") throw Error("unknown format '" + format + "'", "--format", "peft or deltatune");
    MergeOptions o;
    o.sources = a.positional;
    for (const auto& w : a.values("--weights")) {
        try {
            std::size_t used = 0;
            o.weights.push_back(std::stod(w, &used));
            if (used != w.size()) throw std::invalid_argument(w);
        } catch (const std::exception&) {
            throw Error("'" + w + "' is not a number", "--weights");
        }
    }
    if (o.weights.empty()) o.weights.assign(o.sources.size(), 1.0);
    o.combination = a.value("--combination", "linear");
    o.density = a.number_value("--density", 1.0);
    o.svd_rank = a.int_value("--svd-rank", 0);
    o.majority_sign = a.value("--majority-sign", "total");
    o.seed = static_cast<std::uint64_t>(a.int_value("--seed", 0));
    LoadedModel m = load_model(base);
    DeltaSet merged = merge_deltas(*m.model, o);
    if (format == "peft") export_peft(*m.model, merged, out, base);
    else export_deltatune(*m.model, merged, out, base);
    std::fprintf(stderr, "merged %zu deltas (%s) into %s: %s\n", o.sources.size(), o.combination.c_str(), out.c_str(),
                 merged.accounting(*m.model).summary().c_str());
    return 0;
}

}  // namespace dt::cli
