// What a training run reports, as structs with to_json/from_json: the trainer writes them to the run
// folder's events.jsonl, `deltatune train --json` prints them, and the workbench's run history reads
// them back, all through these two functions.
#pragma once

#include "train/metrics.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dt {

struct StepEvent {
    std::int64_t step = 0;
    double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, elapsed_s = 0;
    double pad_fraction = 0;  // share of padding positions in the step's batches
    bool skipped = false;
    // Per trainable tensor, before clipping; filled on the steps TrainConfig::grad_norms_every asks for
    // (not written to events.jsonl).
    std::vector<std::pair<std::string, double>> grad_norms;

    nlohmann::json to_json() const;  // {"event": "step", ...}; loss null for a skipped step
    static StepEvent from_json(const nlohmann::json& j);
};

struct EvalEvent {
    std::int64_t step = 0;
    std::map<std::string, double> metrics;
    ConfusionMatrix confusion;  // classification runs: gold x predicted on the validation set

    // {"event": "eval", "step": N, "<metric>": value, ..., "confusion": {"labels", "counts", "unmatched"}}
    nlohmann::json to_json() const;
    static EvalEvent from_json(const nlohmann::json& j);
};

struct StatusEvent {
    std::string status;  // finished | cancelled | early_stopped | stopped_nonfinite
    std::int64_t step = 0;

    nlohmann::json to_json() const;
    static StatusEvent from_json(const nlohmann::json& j);
};

// The kind of an events.jsonl line ("step", "eval", "status"), or "" when it is none of them.
std::string event_kind(const nlohmann::json& j);

// One line of events.jsonl as the readers take it (the workbench's run history and charts, the fuzz
// target). Returns false for a line that is no event of a known kind: a torn last line of a killed
// run, another program's line, a step that is missing or not a number. Other fields of the wrong type
// read as missing (NaN, false, ""). Never throws.
struct EventLine {
    std::string kind;  // "step", "eval" or "status"
    StepEvent step;
    EvalEvent eval;
    StatusEvent status;
};
bool parse_event_line(const char* begin, const char* end, EventLine& out);

}  // namespace dt
