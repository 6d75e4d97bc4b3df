// Trainer: AdamW (no decay on biases and norms), warmup + constant/linear/cosine schedule, gradient
// clipping and accumulation, periodic evaluation, non-finite steps skipped and counted, pause and
// cancel between micro-batches, atomic checkpoints (trainable tensors, optimizer moments, RNG, data
// position) and exact resume. Runs on the calling thread and reports through TrainObserver.
#pragma once

#include "data/dataset.h"
#include "train/defaults.h"
#include "train/events.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dt {

class TransformerModel;
class DeltaSet;
class Collective;

struct TrainConfig {
    std::int64_t max_steps = TrainingDefaults::max_steps;  // optimizer steps
    std::int64_t batch_size = TrainingDefaults::batch_size;
    std::int64_t grad_accum = 1;       // micro-batches per optimizer step
    double lr = TrainingDefaults::lr;
    double weight_decay = TrainingDefaults::weight_decay;
    std::string schedule = "linear";   // constant | linear | cosine
    double warmup_ratio = TrainingDefaults::warmup_ratio;
    double max_grad_norm = 1.0;        // <= 0: no clipping
    std::int64_t eval_every = 0;       // 0: only at the end
    std::int64_t checkpoint_every = 0; // 0: none (needs run_dir)
    int keep_checkpoints = 3;          // periodic checkpoints kept (oldest removed first)
    bool save_best = true;             // checkpoints/best after an evaluation that improves (needs run_dir)
    bool length_bucketing = false;     // batches of similar length (less padding), still seeded
    std::string precision = "fp32";    // fp32 | bf16 | fp16 (fp16: CUDA only, with dynamic loss scaling);
                                       // autocast of the forward pass; weights, deltas and optimizer stay fp32
    std::string device = "cpu";        // cpu | cuda | cuda:N (the model is moved there)
    std::string base_dtype = "fp32";   // fp32 | bf16 | fp16 (CUDA): how the frozen base's matrices are stored;
                                       // bf16 halves their memory, deltas and the optimizer stay fp32.
                                       // The trainer converts the model it is given (store_frozen_weights_as).
    std::string quantize = "none";     // none | int8 | nf4: the frozen Linear weights quantized (models/quantize.h)
    bool double_quant = false;         // nf4/int8: the block scales quantized too (QLoRA's double quantisation)
    bool gradient_checkpointing = false;  // activations recomputed per block in backward (less memory, about 1/3 more compute)
    bool packing = false;              // causal LM: training batches packed into fewer rows (pack_causal), the same loss
    std::uint64_t seed = 0;
    int max_nonfinite = 5;             // consecutive skipped steps before stopping
    int patience = 0;                  // evaluations without improvement before stopping; 0: off
    std::int64_t pad_id = 0;
    std::int64_t grad_norms_every = 0; // > 0: StepEvent::grad_norms on every N-th step (one extra sync then)
    std::string run_dir;               // events.jsonl and checkpoints/ go here when set
    // Text-to-text evaluation by generation (the task's "generation" settings): 0 new tokens = the
    // longest target of the batch + 4; beams as GenerationOptions.
    struct EvalGeneration {
        std::int64_t max_new_tokens = 0, num_beams = 1;
        double length_penalty = 1.0;
    } eval_generation;
    // Data parallelism (dist/process_group.h): each optimizer step takes a global batch of
    // batch_size x world_size examples from the seeded order and this rank trains on its slice;
    // the trainable gradients are averaged over the ranks before clipping (so accumulation and
    // clipping see the global gradient), and every rank takes the same AdamW step. Rank 0 alone
    // writes events and checkpoints. Null: a single process.
    std::shared_ptr<Collective> collective;
    std::int64_t replica_check_every = 100;  // steps between checks that every rank holds the same delta
    // Testing aid: may overwrite the loss of a micro-batch (e.g. with NaN) before backward.
    std::function<void(std::int64_t step, at::Tensor& loss)> loss_hook;
};

class TrainObserver {
public:
    virtual ~TrainObserver() = default;
    virtual void on_step(const StepEvent&) {}
    virtual void on_eval(const EvalEvent&) {}
    virtual void on_status(const std::string&) {}
    virtual void on_error(const std::string&) {}
};

struct TrainControl {
    std::atomic<bool> cancel{false};
    std::atomic<bool> pause{false};
};

struct TrainResult {
    std::string status;  // finished | cancelled | early_stopped | stopped_nonfinite
    std::int64_t steps = 0;
    std::int64_t skipped = 0;
    std::int64_t overflow_skips = 0;  // fp16 steps skipped while the loss scale adapted
    double allreduce_seconds = 0;     // data parallel: time spent in the gradient all-reduces ...
    std::int64_t allreduces = 0;      // ... over this many steps (this process's)
    std::int64_t eval_examples = 0;   // examples this process evaluated in the latest evaluation (data parallel: its shard)
    std::int64_t allreduce_bytes = 0; // data parallel: the gradient bucket's bytes (per step)
    std::vector<double> losses;  // per optimizer step (NaN for skipped ones)
    std::map<std::string, double> last_metrics;
};

// Learning rate at `step` (0-based) for the config's schedule.
double scheduled_lr(const TrainConfig& c, std::int64_t step);

class Trainer {
public:
    Trainer(TransformerModel& model, const Dataset& train, const Dataset* eval, TrainConfig config,
            TrainObserver* observer = nullptr);
    ~Trainer();

    TrainResult run(TrainControl* control = nullptr);
    std::map<std::string, double> evaluate(const Dataset& data);
    // The gold x predicted counts of the latest evaluate() on a classification task (empty otherwise).
    const ConfusionMatrix& last_confusion() const;

    // Checkpoint folder: trainable.safetensors (parameters + AdamW moments) and state.json.
    // Written to a temporary sibling and renamed, so a crash leaves the old one or the new one.
    void save_checkpoint(const std::string& dir);
    void load_checkpoint(const std::string& dir);
    std::int64_t step() const { return step_; }

    struct Impl;  // the optimizer, data order and run state (trainer.cpp)

private:
    bool evaluate_step(TrainResult& res);  // false: stop early (patience)
    void save_periodic_checkpoint();        // step-N, the oldest beyond keep_checkpoints removed
    std::unique_ptr<Impl> impl_;
    std::int64_t step_ = 0;
};

}  // namespace dt
