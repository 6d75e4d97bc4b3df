// The Delta Tuning study's experiments as engine functions the CLI and the GUI's worker thread run:
// a cross-task transfer matrix (train one delta per task, evaluate every delta zero-shot on every
// task), a layer ablation of one delta (remove it from layers i..j), and the Pareto front of metric
// against trainable parameters. Results are written to the experiment folder as they come, and a
// stopped experiment resumes with the cells it already has. Schema: docs/experiments.md.
// This header only gathers them: result_matrix.h, transfer.h, ablation.h.
#pragma once

#include "experiments/ablation.h"
#include "experiments/result_matrix.h"
#include "experiments/transfer.h"
