#include "train/trainer.h"

#include "core/autocast.h"
#include "core/devices.h"
#include "core/error.h"
#include "core/run_rng.h"
#include "dist/collective.h"
#include "delta/delta_set.h"
#include "generate/generate.h"
#include "tokenizers/tokenizer.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "models/quantize.h"
#include "train/metrics.h"
#include "train/text_metrics.h"
#include "train/run_folder.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <optional>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <numeric>
#include <random>
#include <sys/stat.h>
#include <thread>
#include <type_traits>

namespace dt {

double scheduled_lr(const TrainConfig& c, std::int64_t step) {
    const std::int64_t warm = static_cast<std::int64_t>(std::ceil(c.warmup_ratio * static_cast<double>(c.max_steps)));
    if (step < warm) return c.lr * static_cast<double>(step + 1) / static_cast<double>(warm);
    if (c.schedule == "constant") return c.lr;
    const double span = static_cast<double>(std::max<std::int64_t>(1, c.max_steps - warm));
    const double progress = std::min(1.0, static_cast<double>(step - warm) / span);
    if (c.schedule == "cosine") return c.lr * 0.5 * (1.0 + std::cos(M_PI * progress));
    return c.lr * (1.0 - progress);  // linear
}

namespace {

void to_device(Batch& b, const at::Device& dev) {
    if (dev.is_cpu()) return;
    for (at::Tensor* t : {&b.inputs.input_ids, &b.inputs.attention_mask, &b.inputs.token_type_ids, &b.inputs.position_ids,
                          &b.inputs.segment_ids, &b.labels, &b.targets, &b.mask_pos, &b.lm_labels})
        if (t->defined()) *t = t->to(dev);
    if (b.inputs.score_positions.defined()) b.inputs.score_positions = b.mask_pos;
}

// A 1-D tensor's values appended to `out` with one copy to the host (not one sync per element).
template <typename T>
void append_all(const at::Tensor& t, std::vector<T>& out) {
    const at::Tensor c = t.detach().to(at::kCPU, c10::CppTypeToScalarType<T>::value).contiguous();
    const T* p = c.data_ptr<T>();
    out.insert(out.end(), p, p + c.numel());
}

bool no_decay(const std::string& name) {
    return (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) || name.find("LayerNorm") != std::string::npos ||
           name.find("layer_norm") != std::string::npos || name.find("norm.") != std::string::npos;
}

}  // namespace

struct Trainer::Impl {
    TransformerModel& model;
    std::unique_ptr<RunRng> rng;  // this run's dropout generator (checkpointed)
    ConfusionMatrix confusion;  // of the latest classification evaluation
    at::Device device{at::kCPU};
    double loss_scale = 65536.0;  // fp16 dynamic loss scaling
    std::int64_t good_steps = 0, overflow_skips = 0;
    double allreduce_seconds = 0;
    std::int64_t allreduce_bytes = 0, allreduces = 0;
    std::int64_t eval_examples = 0;  // examples this process evaluated in the latest evaluation
    const Dataset& train;
    const Dataset* eval;
    TrainConfig cfg;
    TrainObserver* obs;
    std::vector<std::pair<std::string, at::Tensor>> params;  // trainable, unique, in a fixed order
    std::vector<at::Tensor> tensors;                          // the same tensors, for clipping
    std::unique_ptr<torch::optim::AdamW> opt;
    std::vector<double> lr_factors;  // per optimizer group
    std::vector<std::size_t> order;
    std::int64_t epoch = 0, cursor = 0;
    std::int64_t skipped = 0, consecutive_bad = 0;
    double best = -1e300;
    int evals_without_gain = 0;
    std::vector<double> losses;
    std::vector<std::string> saved;  // periodic checkpoints of this run, oldest first
    std::ofstream events;

    Impl(TransformerModel& m, const Dataset& t, const Dataset* e, TrainConfig c, TrainObserver* o)
        : model(m), train(t), eval(e), cfg(std::move(c)), obs(o) {
        rng = std::make_unique<RunRng>(cfg.seed);  // a checkpoint's state replaces it on resume
        if (cfg.max_steps <= 0) throw Error("must be positive", "max_steps");
        if (cfg.batch_size <= 0) throw Error("must be positive", "batch_size");
        if (cfg.grad_accum <= 0) throw Error("must be positive", "grad_accum");
        if (cfg.precision != "fp32" && cfg.precision != "bf16" && cfg.precision != "fp16")
            throw Error("unknown precision '" + cfg.precision + "'", "precision", "fp32, bf16 or fp16");
        device = parse_device(cfg.device);
        if (cfg.collective && cfg.collective->rank() != 0) cfg.run_dir.clear();  // rank 0 alone writes
        if (cfg.precision == "fp16" && device.is_cpu()) throw Error("fp16 needs a CUDA device", "precision", "use bf16 on CPU");
        model.to(device);
        model.set_gradient_checkpointing(cfg.gradient_checkpointing);
        QuantKind qkind;
        if (parse_quantize(cfg.quantize, &qkind, "quantize")) quantize_frozen_linears(model, qkind, cfg.double_quant);
        if (cfg.base_dtype != "fp32") {
            if (cfg.base_dtype != "bf16" && cfg.base_dtype != "fp16")
                throw Error("unknown base_dtype '" + cfg.base_dtype + "'", "base_dtype", "fp32, bf16 or fp16 (CUDA)");
            if (cfg.base_dtype == "fp16" && device.is_cpu()) throw Error("an fp16 base needs a CUDA device", "base_dtype", "use bf16 on CPU");
            store_frozen_weights_as(model, cfg.base_dtype == "bf16" ? at::kBFloat16 : at::kHalf);
        }
        if (cfg.schedule != "constant" && cfg.schedule != "linear" && cfg.schedule != "cosine")
            throw Error("unknown schedule '" + cfg.schedule + "'", "schedule", "constant, linear or cosine");
        if (train.size() == 0) throw Error("the training set is empty", train.source);
        if (train.seq2seq && !model.is_encoder_decoder())
            throw Error("a seq2seq task needs an encoder-decoder model, not " + model.name(), "task.type",
                        "load a T5ForConditionalGeneration, or use type causal_lm with prompt/response fields");
        if (cfg.packing && !train.causal_lm) throw Error("packing applies to causal LM tasks", "packing", "turn it off for this task");
        if (cfg.packing && model.is_encoder_decoder()) throw Error("packing applies to decoder-only models", "packing", "turn it off for " + model.name());
        check_fits(train);
        if (eval) check_fits(*eval);
        params = named_trainable_parameters(model);
        if (params.empty()) throw Error("nothing to train: every parameter is frozen", "delta spec");
        for (auto& p : params) tensors.push_back(p.second);
        // One group per (weight decay, learning-rate factor): a method's hook may ask for a larger
        // rate on some tensors (LoRA+ on B).
        std::map<std::pair<bool, double>, std::vector<at::Tensor>> by_group;
        for (auto& [n, t] : params) {
            double factor = 1.0;
            for (const auto& h : model.training_hooks()) factor *= h->lr_factor(n);
            by_group[{no_decay(n), factor}].push_back(t);
        }
        std::vector<torch::optim::OptimizerParamGroup> groups;
        for (auto& [key, tensors_of_group] : by_group) {
            groups.emplace_back(tensors_of_group, std::make_unique<torch::optim::AdamWOptions>(
                                                      torch::optim::AdamWOptions(cfg.lr * key.second).weight_decay(key.first ? 0.0 : cfg.weight_decay)));
            lr_factors.push_back(key.second);
        }
        opt = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(cfg.lr));
        new_epoch();
        if (!cfg.run_dir.empty()) {
            make_dirs(cfg.run_dir);
            end_torn_line(run_folder::events_path(cfg.run_dir));  // a killed run's last line, cut short
            events.open(run_folder::events_path(cfg.run_dir), std::ios::app);
            if (!events) throw Error("cannot write events.jsonl", cfg.run_dir);
        }
    }

    // Every example must fit the model (ids in the vocabulary, length within the positions): checked
    // once here so a bad file fails before training, with its name, instead of mid-run.
    void check_fits(const Dataset& d) const {
        std::int64_t max_id = 0, max_type = 0;
        std::size_t max_len = 1;
        for (const auto& ex : d.examples) {
            for (auto id : ex.ids) max_id = std::max(max_id, id);
            for (auto t : ex.type_ids) max_type = std::max(max_type, t);
            max_len = std::max(max_len, ex.ids.size());
        }
        for (auto id : d.label_word_ids) max_id = std::max(max_id, id);
        if (d.masked_lm) {  // the mask and every random replacement must be in the model's vocabulary
            if (d.mask_token_id < 0 || d.mlm_vocab_size <= d.mlm_first_regular_id)
                throw Error("a masked-LM dataset needs a mask token and a vocabulary size", d.source);
            max_id = std::max({max_id, d.mask_token_id, d.mlm_vocab_size - 1});
        }
        if (d.span_corruption) max_id = std::max({max_id, d.sentinel_id, d.eos_id});
        ForwardInputs in;
        in.input_ids = torch::full({1, static_cast<std::int64_t>(max_len)}, max_id, torch::kLong);
        in.token_type_ids = torch::full({1, static_cast<std::int64_t>(max_len)}, max_type, torch::kLong);
        if (d.seq2seq) {  // the targets' ids must fit the vocabulary too
            std::int64_t max_target = 0;
            for (const auto& ex : d.examples)
                for (auto id : ex.target_ids) max_target = std::max(max_target, id);
            if (d.span_corruption) max_target = std::max(d.sentinel_id, d.eos_id);
            in.labels = torch::full({1, 1}, max_target, torch::kLong);
        }
        try {
            model.validate_inputs(in);
        } catch (const Error& e) {
            throw e.within(d.source);
        }
        if (!d.regression && !d.causal_lm && !d.masked_lm)
            for (const auto& ex : d.examples)
                if (ex.label < 0) throw Error("an example has no class label", d.source);
        if (!d.label_word_ids.empty())
            for (const auto& ex : d.examples)
                if (ex.mask_pos < 0 || ex.mask_pos >= static_cast<std::int64_t>(ex.ids.size()))
                    throw Error("an example has no mask position", d.source);
    }

    void new_epoch() {
        order.resize(train.size());
        std::iota(order.begin(), order.end(), 0);
        std::mt19937_64 rng(cfg.seed * 1000003ull + static_cast<std::uint64_t>(epoch));
        std::shuffle(order.begin(), order.end(), rng);
        if (cfg.length_bucketing) {
            // Sort windows of 50 batches by length, cut them into batches, shuffle the batches.
            const std::size_t bs = static_cast<std::size_t>(cfg.batch_size), window = 50 * bs;
            for (std::size_t s = 0; s < order.size(); s += window) {
                auto e = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), s + window));
                std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(s), e, [&](std::size_t a, std::size_t b) {
                    return train.examples[a].ids.size() < train.examples[b].ids.size();
                });
            }
            std::vector<std::vector<std::size_t>> batches;
            for (std::size_t s = 0; s < order.size(); s += bs)
                batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(s),
                                     order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), s + bs)));
            std::shuffle(batches.begin(), batches.end(), rng);
            order.clear();
            for (const auto& b : batches) order.insert(order.end(), b.begin(), b.end());
        }
        cursor = 0;
    }

    int world() const { return cfg.collective ? cfg.collective->world_size() : 1; }

    // The next batch: batch_size examples, or with several ranks this rank's slice of the global
    // batch of batch_size x world_size (the same seeded order on every rank, so no example is
    // counted twice or dropped).
    std::vector<std::size_t> next_indices() {
        std::vector<std::size_t> idx;
        const std::int64_t global = cfg.batch_size * world();
        while (static_cast<std::int64_t>(idx.size()) < global) {
            if (cursor >= static_cast<std::int64_t>(order.size())) {
                ++epoch;
                new_epoch();
            }
            idx.push_back(order[static_cast<std::size_t>(cursor++)]);
        }
        if (world() > 1) {
            const auto from = idx.begin() + static_cast<std::ptrdiff_t>(cfg.collective->rank() * cfg.batch_size);
            idx = std::vector<std::size_t>(from, from + static_cast<std::ptrdiff_t>(cfg.batch_size));
        }
        return idx;
    }

    void emit(const nlohmann::json& event) {
        if (events) {
            events << event.dump() << "\n";
            events.flush();
        }
    }

    // Label words: the LM logits at each example's mask position, restricted to the label words.
    // `vocab_top`, when given, receives the top token over the whole vocabulary at the mask.
    at::Tensor class_logits(const ForwardOutputs& out, const Batch& b, const Dataset& d, at::Tensor* vocab_top = nullptr) const {
        if (d.label_word_ids.empty()) return out.logits;
        if (!out.logits.defined() || out.logits.dim() != 3)
            throw Error("label words need a model with a language-modelling head", "task.label_words", "load a *ForMaskedLM model");
        at::Tensor at_mask;  // (B, V)
        if (b.inputs.score_positions.defined() && out.logits.size(1) == 1) {
            at_mask = out.logits.squeeze(1);  // the head ran at the masks only
        } else {
            const auto T = b.inputs.input_ids.size(1), shift = out.logits.size(1) - T;  // a soft prompt adds positions in front
            at::Tensor pos = (b.mask_pos + shift).view({-1, 1, 1}).expand({-1, 1, out.logits.size(2)});
            at_mask = out.logits.gather(1, pos).squeeze(1);
        }
        if (vocab_top) *vocab_top = at_mask.argmax(1);
        return at_mask.index_select(1, torch::tensor(d.label_word_ids, torch::kLong).to(at_mask.device()));
    }

    // Next-token loss over the scored positions (logits at t predict the token at t + 1).
    static at::Tensor causal_loss(const ForwardOutputs& out, const Batch& b, at::Reduction::Reduction red = at::Reduction::Mean) {
        if (!out.logits.defined() || out.logits.dim() != 3)
            throw Error("a causal LM task needs a model with a language-modelling head", "task", "load a *ForCausalLM model");
        const auto T = b.lm_labels.size(1);
        at::Tensor lg = out.logits.narrow(1, out.logits.size(1) - T, T);  // a soft prompt adds positions in front
        const auto V = lg.size(2);
        return torch::nll_loss(torch::log_softmax(lg.narrow(1, 0, T - 1).reshape({-1, V}).to(torch::kFloat), -1),
                               b.lm_labels.narrow(1, 1, T - 1).reshape({-1}), {}, red, -100);
    }

    // Masked-LM loss over the masked positions (logits at t predict the token at t).
    static at::Tensor masked_loss(const ForwardOutputs& out, const Batch& b, at::Reduction::Reduction red = at::Reduction::Mean) {
        if (!out.logits.defined() || out.logits.dim() != 3)
            throw Error("masked-LM pretraining needs a model with a language-modelling head", "model", "load a *ForMaskedLM model");
        const auto T = b.lm_labels.size(1);
        at::Tensor lg = out.logits.narrow(1, out.logits.size(1) - T, T);
        return torch::nll_loss(torch::log_softmax(lg.reshape({-1, lg.size(2)}).to(torch::kFloat), -1), b.lm_labels.reshape({-1}), {},
                               red, -100);
    }

    at::Tensor loss_of(const ForwardOutputs& out, const Batch& b) {
        if (train.seq2seq) {  // the model's own loss on the targets (given as labels)
            if (!out.loss.defined()) throw Error("the model returned no loss for the targets", "task", "load a T5ForConditionalGeneration");
            return out.loss;
        }
        if (train.masked_lm) return masked_loss(out, b);
        if (train.causal_lm) return out.loss.defined() ? out.loss : causal_loss(out, b);
        if (!train.label_word_ids.empty()) return torch::cross_entropy_loss(class_logits(out, b, train), b.labels);
        if (!out.logits.defined() || out.logits.dim() != 2)
            throw Error("the model has no classification head", "task", "load a *ForSequenceClassification model");
        if (train.regression) {
            if (out.logits.size(1) != 1) throw Error("a regression task needs a head with one output", "num_labels", "set num_labels to 1");
            return torch::mse_loss(out.logits.view({-1}), b.targets.to(out.logits.dtype()));
        }
        return torch::cross_entropy_loss(out.logits, b.labels);
    }
};

Trainer::Trainer(TransformerModel& model, const Dataset& train, const Dataset* eval, TrainConfig config, TrainObserver* observer)
    : impl_(std::make_unique<Impl>(model, train, eval, std::move(config), observer)) {}

Trainer::~Trainer() = default;

// The confusion matrix with the data's class names where it has them (else the class numbers).
static ConfusionMatrix labelled_confusion(const std::vector<std::int64_t>& pred, const std::vector<std::int64_t>& gold, std::int64_t K,
                                          const std::vector<std::string>& names) {
    ConfusionMatrix cm = confusion_matrix(pred, gold, K);
    for (std::size_t k = 0; k < cm.labels.size() && k < names.size(); ++k) cm.labels[k] = names[k];
    return cm;
}

const ConfusionMatrix& Trainer::last_confusion() const { return impl_->confusion; }

std::map<std::string, double> Trainer::evaluate(const Dataset& data) {
    auto& I = *impl_;
    torch::NoGradGuard ng;
    I.confusion = {};
    const bool was_training = I.model.is_training();
    I.model.eval();
    std::vector<std::int64_t> pred, gold;
    std::vector<double> yhat, y;
    std::int64_t K = 2, lm_tokens = 0, mlm_correct = 0, word_hits = 0;
    std::vector<std::string> predictions, references;  // seq2seq: generated and target text
    std::vector<std::vector<std::int64_t>> generated;  // seq2seq: the generated ids of the examples in `generated_for`
    std::vector<std::int64_t> rank_pred;                // text-to-text classification: the likeliest class
    double loss_sum = 0;
    const at::Tensor word_ids = torch::tensor(data.label_word_ids, torch::kLong).to(I.device);  // label k's word
    // Data parallel: rank r evaluates batches r, r + world, ...; the per-example results, the sums and
    // the generated ids of text-to-text tasks are combined below, so every rank gets the whole set's
    // metrics, computed as one process computes them.
    const int world = I.world(), rank = I.cfg.collective ? I.cfg.collective->rank() : 0;
    const bool shard = I.cfg.collective != nullptr;
    std::vector<std::size_t> seen;  // the examples evaluated here, in order
    std::size_t batch_no = 0;
    for (std::size_t s = 0; s < data.size(); s += static_cast<std::size_t>(I.cfg.batch_size)) {
        if (shard && static_cast<int>(batch_no++ % static_cast<std::size_t>(world)) != rank) continue;
        std::vector<std::size_t> idx;
        for (std::size_t i = s; i < std::min(data.size(), s + static_cast<std::size_t>(I.cfg.batch_size)); ++i) idx.push_back(i);
        seen.insert(seen.end(), idx.begin(), idx.end());
        Batch b = data.span_corruption ? span_corruption_batch(data, idx, I.cfg.pad_id, 0x5EEDull + s) : collate(data, idx, I.cfg.pad_id);
        if (data.masked_lm) mask_batch(b, data, 0x5EEDull, idx);  // the same masks at every evaluation
        to_device(b, I.device);
        if (data.masked_lm) {
            AutocastScope autocast(I.cfg.precision, I.device.type());
            const auto out = I.model.forward(b.inputs);
            loss_sum += Impl::masked_loss(out, b, at::Reduction::Sum).item<double>();
            const at::Tensor scored = b.lm_labels.ne(-100);
            lm_tokens += scored.sum().item<std::int64_t>();
            const auto T = b.lm_labels.size(1);
            const at::Tensor guess = out.logits.narrow(1, out.logits.size(1) - T, T).argmax(2);
            mlm_correct += (guess.eq(b.lm_labels) & scored).sum().item<std::int64_t>();
            continue;
        }
        if (data.seq2seq) {
            const auto U = b.lm_labels.size(1);
            at::Tensor logits;
            {
                AutocastScope autocast(I.cfg.precision, I.device.type());
                logits = I.model.forward(b.inputs).logits;
            }
            loss_sum += torch::nll_loss(torch::log_softmax(logits.reshape({-1, logits.size(2)}).to(torch::kFloat), -1), b.lm_labels.reshape({-1}),
                                        {}, at::Reduction::Sum, -100)
                            .item<double>();
            lm_tokens += b.lm_labels.ne(-100).sum().item<std::int64_t>();
            if (data.span_corruption)  // teacher-forced: the top token is the hidden one
                mlm_correct += logits.argmax(2).eq(b.lm_labels).sum().item<std::int64_t>();
            if (!data.target_words.empty()) append_all(b.labels, gold);
            if (!data.target_word_ids.empty()) {  // rank classification: the class whose target is likeliest
                const auto B = b.inputs.input_ids.size(0), K = static_cast<std::int64_t>(data.target_word_ids.size());
                at::Tensor scores = torch::empty({B, K}, torch::kDouble);
                for (std::int64_t k = 0; k < K; ++k) {
                    ForwardInputs in = b.inputs;
                    in.labels = torch::tensor(data.target_word_ids[static_cast<std::size_t>(k)], torch::kLong).to(I.device).unsqueeze(0).repeat({B, 1});
                    at::Tensor lg;
                    {
                        AutocastScope autocast(I.cfg.precision, I.device.type());
                        lg = I.model.forward(in).logits;
                    }
                    const at::Tensor ll = torch::log_softmax(lg.to(torch::kFloat), -1).gather(2, in.labels.unsqueeze(2)).squeeze(2).sum(1);
                    scores.select(1, k).copy_(ll.to(torch::kDouble).cpu());
                }
                append_all(scores.argmax(1), rank_pred);
            }
            if (data.tokenizer) {  // scored by greedy generation, as the study and T5 score text-to-text tasks
                GenerationOptions g = GenerationOptions::for_model(I.model.config(), "");
                const auto& eg = I.cfg.eval_generation;
                g.max_new_tokens = eg.max_new_tokens > 0 ? eg.max_new_tokens : U + 4;
                g.num_beams = eg.num_beams;
                g.length_penalty = eg.length_penalty;
                const at::Tensor out = generate(I.model, b.inputs.input_ids, b.inputs.attention_mask, g).cpu();
                for (std::int64_t r = 0; r < out.size(0); ++r)
                    generated.emplace_back(out[r].data_ptr<std::int64_t>() + 1, out[r].data_ptr<std::int64_t>() + out.size(1));
            }
            continue;
        }
        if (data.causal_lm) {
            AutocastScope autocast(I.cfg.precision, I.device.type());
            b.inputs.labels = b.lm_labels;
            b.inputs.loss_only = true;  // no B x T x V logits in evaluation either
            const auto out = I.model.forward(b.inputs);
            const std::int64_t scored = b.lm_labels.narrow(1, 1, b.lm_labels.size(1) - 1).ne(-100).sum().item<std::int64_t>();
            if (out.loss.defined()) {
                if (scored > 0) loss_sum += out.loss.item<double>() * static_cast<double>(scored);
            } else {
                loss_sum += Impl::causal_loss(out, b, at::Reduction::Sum).item<double>();
            }
            lm_tokens += scored;
            continue;
        }
        at::Tensor logits, top;
        {
            AutocastScope autocast(I.cfg.precision, I.device.type());
            logits = I.class_logits(I.model.forward(b.inputs), b, data, &top).to(torch::kFloat);
        }
        if (top.defined())  // the gold label word is the top word over the whole vocabulary
            word_hits += top.eq(word_ids.index_select(0, b.labels)).sum().item<std::int64_t>();
        K = logits.size(1);
        if (data.regression) {
            at::Tensor p = logits.view({-1}).to(torch::kDouble), t = b.targets.to(torch::kDouble);
            loss_sum += (p - t).pow(2).sum().item<double>();
            append_all(p, yhat);
            append_all(t, y);
            continue;
        }
        loss_sum += torch::cross_entropy_loss(logits, b.labels, {}, at::Reduction::Sum).item<double>();
        append_all(logits.argmax(1), pred);
        append_all(b.labels, gold);
    }
    if (was_training) I.model.train();
    I.eval_examples = static_cast<std::int64_t>(seen.size());
    std::vector<std::size_t> generated_for = seen;
    if (shard) {
        Collective& c = *I.cfg.collective;
        at::Tensor sums = torch::tensor({loss_sum, static_cast<double>(lm_tokens), static_cast<double>(mlm_correct), static_cast<double>(word_hits)},
                                        torch::kDouble)
                                .to(c.device());
        c.all_reduce(sums, Collective::Op::Sum);
        sums = sums.cpu();
        loss_sum = sums[0].item<double>();
        lm_tokens = static_cast<std::int64_t>(sums[1].item<double>());
        mlm_correct = static_cast<std::int64_t>(sums[2].item<double>());
        word_hits = static_cast<std::int64_t>(sums[3].item<double>());
        at::Tensor k = torch::tensor({static_cast<double>(K)}, torch::kDouble).to(c.device());
        c.all_reduce(k, Collective::Op::Max);
        k = k.cpu();
        K = static_cast<std::int64_t>(k.item<double>());
        // Per-example values: each rank fills its examples' slots (value, present), the sum has them all.
        const auto N = static_cast<std::int64_t>(data.size());
        auto combine = [&](auto& v) {
            at::Tensor full = torch::zeros({2, N}, torch::kDouble);
            if (v.size() == seen.size()) {
                auto a = full.accessor<double, 2>();
                for (std::size_t j = 0; j < v.size(); ++j) {
                    a[0][static_cast<std::int64_t>(seen[j])] = static_cast<double>(v[j]);
                    a[1][static_cast<std::int64_t>(seen[j])] = 1;
                }
            }
            full = full.to(c.device());
            c.all_reduce(full, Collective::Op::Sum);
            full = full.cpu();
            using T = typename std::decay_t<decltype(v)>::value_type;
            v.clear();
            auto a = full.accessor<double, 2>();
            for (std::int64_t i = 0; i < N; ++i)
                if (a[1][i] > 0) v.push_back(static_cast<T>(a[0][i]));
        };
        combine(pred);
        combine(gold);
        combine(yhat);
        combine(y);
        combine(rank_pred);
        if (data.seq2seq && data.tokenizer) {
            // Generated ids, one row per example: [1 + length, ids...]; each rank fills its rows.
            std::size_t longest = 0;
            for (const auto& g : generated) longest = std::max(longest, g.size());
            at::Tensor len = torch::tensor({static_cast<double>(longest)}, torch::kDouble).to(c.device());
            c.all_reduce(len, Collective::Op::Max);
            const auto L = static_cast<std::int64_t>(len.cpu().item<double>());
            at::Tensor rows = torch::zeros({N, L + 1}, torch::kDouble);
            if (generated.size() == seen.size()) {
                auto a = rows.accessor<double, 2>();
                for (std::size_t j = 0; j < generated.size(); ++j) {
                    const auto r = static_cast<std::int64_t>(seen[j]);
                    a[r][0] = 1.0 + static_cast<double>(generated[j].size());
                    for (std::size_t k = 0; k < generated[j].size(); ++k) a[r][static_cast<std::int64_t>(k) + 1] = static_cast<double>(generated[j][k]);
                }
            }
            rows = rows.to(c.device());
            c.all_reduce(rows, Collective::Op::Sum);
            rows = rows.cpu();
            auto a = rows.accessor<double, 2>();
            generated.clear();
            generated_for.clear();
            for (std::int64_t i = 0; i < N; ++i) {
                if (a[i][0] < 1) continue;
                std::vector<std::int64_t> g(static_cast<std::size_t>(a[i][0] - 1));
                for (std::size_t k = 0; k < g.size(); ++k) g[k] = static_cast<std::int64_t>(a[i][static_cast<std::int64_t>(k) + 1]);
                generated.push_back(std::move(g));
                generated_for.push_back(static_cast<std::size_t>(i));
            }
        }
    }
    for (std::size_t j = 0; j < generated.size(); ++j) {  // the generated text against each example's target
        predictions.push_back(data.tokenizer->decode(generated[j]));
        references.push_back(data.tokenizer->decode(data.examples[generated_for[j]].target_ids));
    }
    std::map<std::string, double> m;
    if (data.masked_lm) {
        const double n = static_cast<double>(std::max<std::int64_t>(1, lm_tokens)), nll = loss_sum / n;
        return {{"loss", nll}, {"perplexity", std::exp(nll)}, {"accuracy", static_cast<double>(mlm_correct) / n}};
    }
    if (data.causal_lm || data.seq2seq) {
        const double nll = loss_sum / static_cast<double>(std::max<std::int64_t>(1, lm_tokens));
        m = {{"loss", nll}, {"perplexity", std::exp(nll)}};
        if (data.span_corruption) m["accuracy"] = static_cast<double>(mlm_correct) / static_cast<double>(std::max<std::int64_t>(1, lm_tokens));
        if (!predictions.empty())
            for (const auto& [k, v] : text_metrics(predictions, references)) m[k] = v;
        if (!data.target_words.empty() && !predictions.empty()) {  // the class whose word was generated; -1: none
            std::vector<std::string> words;
            for (const auto& w : data.target_words) words.push_back(normalize_answer(w));
            for (const auto& p : predictions) {
                const auto it = std::find(words.begin(), words.end(), normalize_answer(p));
                pred.push_back(it == words.end() ? -1 : static_cast<std::int64_t>(it - words.begin()));
            }
            for (const auto& [k, v] : classification_metrics(pred, gold, static_cast<std::int64_t>(words.size()))) m[k] = v;
            I.confusion = labelled_confusion(pred, gold, static_cast<std::int64_t>(words.size()), data.labels);
        }
        if (!rank_pred.empty()) {
            std::size_t hits = 0;
            for (std::size_t i = 0; i < rank_pred.size() && i < gold.size(); ++i) hits += rank_pred[i] == gold[i];
            m["rank_accuracy"] = static_cast<double>(hits) / static_cast<double>(rank_pred.size());
        }
        return m;
    }
    if (data.regression) m = {{"pearson", pearson(yhat, y)}, {"spearman", spearman(yhat, y)}};
    else {
        m = classification_metrics(pred, gold, K);
        I.confusion = labelled_confusion(pred, gold, K, data.labels);
    }
    // Label-word tasks: how often the model's own top word at the mask is the gold label word, as a
    // text-to-text model's answer would be judged; accuracy only compares the label words.
    if (!data.label_word_ids.empty() && !data.regression)
        m["exact_match"] = static_cast<double>(word_hits) / static_cast<double>(std::max<std::size_t>(1, data.size()));
    m["loss"] = loss_sum / static_cast<double>(std::max<std::size_t>(1, data.size()));
    return m;
}

namespace {

// One optimizer step's micro-batches, summed.
struct MicroBatches {
    double loss = 0;
    double scored = 0;       // the loss's terms: scored tokens (LM tasks) or examples (data parallel weights)
    std::int64_t tokens = 0, positions = 0;
    bool bad = false;        // a non-finite loss: the step is skipped
    bool cancelled = false;  // asked to stop between micro-batches
};

// The gradients after unscaling and clipping.
struct Gradients {
    double norm = 0;
    bool overflow = false;  // fp16: the loss scale was too large; the step is skipped
    bool bad = false;       // a non-finite norm
    std::vector<std::pair<std::string, double>> per_tensor;
};

}  // namespace

// How many terms the batch's loss averages: scored tokens for LM losses, else examples. Data
// parallelism weights each rank's mean by it, so ranks holding more tokens count for more and the
// step is the mean over the whole batch, as in one process.
static double scored_terms(const Dataset& d, const Batch& b) {
    if (d.causal_lm) {
        const auto T = b.lm_labels.size(1);
        return T > 1 ? b.lm_labels.narrow(1, 1, T - 1).ne(-100).sum().item<double>() : 0.0;
    }
    if (d.seq2seq || d.masked_lm) return b.lm_labels.ne(-100).sum().item<double>();
    return static_cast<double>(b.inputs.input_ids.size(0));
}

// Forward and backward over the step's micro-batches; waits while paused.
static MicroBatches forward_backward(Trainer::Impl& I, std::int64_t step, TrainControl* control) {
    const auto& cfg = I.cfg;
    MicroBatches m;
    for (std::int64_t micro = 0; micro < cfg.grad_accum; ++micro) {
        while (control && control->pause.load() && !control->cancel.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (control && control->cancel.load()) {
            m.cancelled = true;
            return m;
        }
        const std::uint64_t key = cfg.seed * 0x100000001B3ull + static_cast<std::uint64_t>(step) * 131u + static_cast<std::uint64_t>(micro);
        const std::vector<std::size_t> idx = I.next_indices();
        Batch b = I.train.span_corruption      ? span_corruption_batch(I.train, idx, cfg.pad_id, key)
                  : cfg.packing && I.train.causal_lm ? pack_causal(I.train, idx, cfg.pad_id)
                                                     : collate(I.train, idx, cfg.pad_id);
        if (I.train.masked_lm) mask_batch(b, I.train, key, idx);  // a fresh mask per step, reproducible on resume
        if (cfg.collective) m.scored += scored_terms(I.train, b);
        to_device(b, I.device);
        // LM losses from the hidden states: the vocabulary projection runs on the scored rows only,
        // in chunks (head_lm_loss); the full B x T x V logits are never made.
        if (I.train.causal_lm && !b.inputs.labels.defined()) b.inputs.labels = b.lm_labels;
        b.inputs.loss_only = I.train.causal_lm || I.train.seq2seq;
        m.tokens += b.tokens;
        m.positions += b.inputs.input_ids.numel();
        at::Tensor loss;
        {
            AutocastScope autocast(cfg.precision, I.device.type());
            {
                RunRng::Scope own(*I.rng);  // this run's masks, whatever else trains in the process
                loss = I.loss_of(I.model.forward(b.inputs), b).to(torch::kFloat);
            }
            for (const auto& h : I.model.training_hooks())  // e.g. AdaLoRA's orthogonality penalty
                if (at::Tensor r = h->regularizer(); r.defined()) loss = loss + r.to(torch::kFloat);
            loss = loss / static_cast<double>(cfg.grad_accum);
        }
        if (cfg.loss_hook) cfg.loss_hook(step, loss);
        const double lv = loss.item<double>();  // the one synchronisation a step needs
        if (!std::isfinite(lv)) {
            m.bad = true;
            continue;
        }
        {
            // Checkpointed blocks run again in backward and replay their dropout masks from the
            // generator state of the first run: this run's generator stays in place meanwhile.
            std::optional<RunRng::Scope> own;
            if (cfg.gradient_checkpointing) own.emplace(*I.rng);
            (cfg.precision == "fp16" ? loss * I.loss_scale : loss).backward();
        }
        m.loss += lv;
    }
    return m;
}

// Data parallelism: the step's loss, token counts and the non-finite and stop flags summed over the
// ranks, then the trainable gradients averaged in one bucket. Every rank calls it once per step, so
// all agree on skipping or stopping. Returns true when some rank asked to stop.
static bool reduce_across_ranks(Trainer::Impl& I, MicroBatches& m, bool stop) {
    Collective& c = *I.cfg.collective;
    const double world = c.world_size();
    torch::NoGradGuard ng;
    // Each rank's mean loss weighted by its share of the loss's terms (scored tokens, examples): the
    // global mean, as one process with the whole batch computes it. One rank: as it is.
    const double local_scored = m.scored;
    at::Tensor meta = torch::tensor({m.loss * local_scored, m.bad ? 1.0 : 0.0, static_cast<double>(m.tokens), static_cast<double>(m.positions),
                                     stop ? 1.0 : 0.0, local_scored, m.loss},
                                    torch::kDouble)
                          .to(c.device());
    c.all_reduce(meta, Collective::Op::Sum);
    meta = meta.cpu();
    const double* v = meta.data_ptr<double>();
    const double total_scored = v[5];
    const bool weigh = world > 1 && total_scored > 0;
    m.loss = weigh ? v[0] / total_scored : v[6] / world;
    m.bad = v[1] > 0;
    m.tokens = static_cast<std::int64_t>(v[2]);
    m.positions = static_cast<std::int64_t>(v[3]);
    if (v[4] > 0) return true;
    std::vector<at::Tensor> flat;
    for (const auto& t : I.tensors)
        flat.push_back(t.grad().defined() ? t.grad().detach().reshape({-1}).to(c.device(), at::kFloat)
                                          : torch::zeros({t.numel()}, at::TensorOptions().dtype(at::kFloat).device(c.device())));
    at::Tensor bucket = torch::cat(flat);
    if (weigh && local_scored != total_scored / world) bucket.mul_(local_scored * world / total_scored);
    const auto t0 = std::chrono::steady_clock::now();
    c.all_reduce(bucket, Collective::Op::Sum);
    I.allreduce_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    I.allreduce_bytes = bucket.numel() * static_cast<std::int64_t>(sizeof(float));
    ++I.allreduces;
    bucket.div_(world);
    std::int64_t off = 0;
    for (auto& t : I.tensors) {
        const at::Tensor part = bucket.narrow(0, off, t.numel()).view(t.sizes()).to(t.device(), t.scalar_type());
        if (t.grad().defined()) t.mutable_grad().copy_(part);
        else t.mutable_grad() = part.clone();
        off += t.numel();
    }
    return false;
}

// Every rank must hold the same delta (the same spec, seed and steps): a sum and an absolute sum of
// the trainable tensors compared across ranks; a mismatch is an error naming the step.
static void check_replicas(Trainer::Impl& I, std::int64_t step) {
    torch::NoGradGuard ng;
    double s = 0, a = 0;
    for (const auto& t : I.tensors) {
        const at::Tensor d = t.detach().to(at::kCPU, at::kDouble);
        s += d.sum().item<double>();
        a += d.abs().sum().item<double>();
    }
    at::Tensor x = torch::tensor({s, -s, a, -a}, torch::kDouble).to(I.cfg.collective->device());
    I.cfg.collective->all_reduce(x, Collective::Op::Max);
    x = x.cpu();
    const double* v = x.data_ptr<double>();
    const double tol = 1e-9 * std::max(1.0, std::abs(a));
    if (v[0] + v[1] > tol || v[2] + v[3] > tol)
        throw Error("the ranks' deltas differ at step " + std::to_string(step) + " (checksums from " + std::to_string(-v[1]) + " to " +
                        std::to_string(v[0]) + ")",
                    "distributed", "every rank must run the same spec, seed and checkpoint");
}

// Every rank must run the same settings over the same data (else batches overlap or go missing
// silently): a hash of them compared across ranks at the start.
static void check_same_settings(Trainer::Impl& I) {
    const auto& c = I.cfg;
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&](double v) {
        std::uint64_t bits = 0;
        std::memcpy(&bits, &v, sizeof bits);
        for (int i = 0; i < 8; ++i) h = (h ^ ((bits >> (8 * i)) & 0xff)) * 1099511628211ull;
    };
    for (double v : {static_cast<double>(c.seed), static_cast<double>(c.batch_size), static_cast<double>(c.grad_accum), static_cast<double>(c.max_steps),
                     c.lr, c.weight_decay, c.warmup_ratio, c.max_grad_norm, static_cast<double>(I.train.size()), static_cast<double>(c.length_bucketing)})
        mix(v);
    // Two exact halves (a double holds 32-bit integers exactly), as max and -min.
    const double hi = static_cast<double>(h >> 32), lo = static_cast<double>(h & 0xffffffffull);
    at::Tensor x = torch::tensor({hi, -hi, lo, -lo}, torch::kDouble).to(I.cfg.collective->device());
    I.cfg.collective->all_reduce(x, Collective::Op::Max);
    x = x.cpu();
    const double* v = x.data_ptr<double>();
    if (v[0] != -v[1] || v[2] != -v[3])
        throw Error("the ranks disagree on the training settings or data (seed, batch_size, grad_accum, max_steps, lr, schedule values or the "
                    "number of training examples)",
                    "distributed", "start every rank with the same run spec and data");
}

// Unscales fp16 gradients, records per-tensor norms when asked, clips, and adapts the loss scale.
static Gradients unscale_and_clip(Trainer::Impl& I, std::int64_t step) {
    const auto& cfg = I.cfg;
    Gradients g;
    if (cfg.precision == "fp16") {
        torch::NoGradGuard ng;
        for (auto& t : I.tensors)
            if (t.grad().defined()) t.mutable_grad().div_(I.loss_scale);
    }
    if (cfg.grad_norms_every > 0 && (step + 1) % cfg.grad_norms_every == 0) {
        torch::NoGradGuard ng;
        std::vector<at::Tensor> norms;
        for (const auto& t : I.tensors) norms.push_back(t.grad().defined() ? t.grad().norm().to(at::kFloat) : torch::zeros({}, t.options().dtype(at::kFloat)));
        const at::Tensor all = torch::stack(norms).to(at::kCPU).to(at::kDouble).contiguous();
        const double* v = all.data_ptr<double>();
        for (std::size_t i = 0; i < I.params.size(); ++i) g.per_tensor.emplace_back(I.params[i].first, v[i]);
    }
    g.norm = torch::nn::utils::clip_grad_norm_(I.tensors, cfg.max_grad_norm > 0 ? cfg.max_grad_norm : 1e30);
    if (!std::isfinite(g.norm) && cfg.precision == "fp16") {
        // Dynamic loss scaling: an overflow skips the step and halves the scale; the scale
        // doubles after 2000 clean steps (the usual GradScaler schedule).
        g.overflow = true;
        I.loss_scale /= 2;
        I.good_steps = 0;
        ++I.overflow_skips;
    } else if (!std::isfinite(g.norm)) {
        g.bad = true;
    } else if (cfg.precision == "fp16" && ++I.good_steps % 2000 == 0) {
        I.loss_scale *= 2;
    }
    return g;
}

// Takes the optimizer step, or skips it (overflow, non-finite); returns the step's event.
static StepEvent apply_step(Trainer::Impl& I, std::int64_t step, const MicroBatches& m, Gradients& g) {
    StepEvent ev;
    ev.step = step + 1;
    ev.lr = scheduled_lr(I.cfg, step);
    const bool bad = m.bad || g.bad;
    if (g.overflow) {
        I.opt->zero_grad();
        ev.skipped = true;
        ev.loss = m.loss;
    } else if (bad) {
        I.opt->zero_grad();
        ++I.skipped;
        ++I.consecutive_bad;
        ev.skipped = true;
        ev.loss = std::nan("");
    } else {
        auto& groups = I.opt->param_groups();
        for (std::size_t k = 0; k < groups.size(); ++k)
            static_cast<torch::optim::AdamWOptions&>(groups[k].options()).lr(ev.lr * I.lr_factors[k]);
        I.opt->step();
        for (const auto& h : I.model.training_hooks()) h->after_step(step, I.cfg.max_steps);
        I.consecutive_bad = 0;
        ev.loss = m.loss;
    }
    I.losses.push_back(ev.loss);
    ev.grad_norm = g.norm;
    ev.grad_norms = std::move(g.per_tensor);
    ev.pad_fraction = m.positions ? 1.0 - static_cast<double>(m.tokens) / static_cast<double>(m.positions) : 0.0;
    return ev;
}

double eval_score(const std::map<std::string, double>& m) {
    return m.count("accuracy")      ? m.at("accuracy")
           : m.count("pearson")     ? m.at("pearson")
           : m.count("exact_match") ? m.at("exact_match") - 1e-6 * m.at("loss")  // text-to-text: exact match, ties by loss
                                    : -m.at("loss");
}

std::string eval_score_name(const std::map<std::string, double>& m) {
    for (const char* k : {"accuracy", "pearson", "exact_match"})
        if (m.count(k)) return k;
    return "loss";
}

TrainResult Trainer::run(TrainControl* control) {
    auto& I = *impl_;
    const auto& cfg = I.cfg;
    TrainResult res;
    I.model.train();
    if (step_ == 0 && I.device.is_cuda()) torch::cuda::manual_seed_all(cfg.seed);  // CUDA masks: the device's generator
    const auto t0 = std::chrono::steady_clock::now();
    if (I.obs) I.obs->on_status(step_ == 0 ? "started" : "resumed at step " + std::to_string(step_));
    res.status = "finished";
    constexpr int kZeroGradWarnAfter = 5;
    int zero_grad_steps = 0;
    const bool parallel = cfg.collective != nullptr;  // a one-rank group too (a backend's smoke test)
    if (parallel) {
        check_same_settings(I);
        check_replicas(I, step_);
    }
    while (step_ < cfg.max_steps) {
        const auto ts = std::chrono::steady_clock::now();
        I.opt->zero_grad();
        // With several ranks a stop request waits for the step's all-reduce, so all ranks stop together.
        MicroBatches m = forward_backward(I, step_, parallel ? nullptr : control);
        if (parallel && reduce_across_ranks(I, m, control && control->cancel.load())) m.cancelled = true;
        if (m.cancelled) {
            res.status = "cancelled";
            break;
        }
        Gradients g = m.bad ? Gradients{} : unscale_and_clip(I, step_);
        StepEvent ev = apply_step(I, step_, m, g);
        ++step_;
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
        ev.tokens_per_s = dt > 0 ? static_cast<double>(m.tokens) / dt : 0;
        ev.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (I.obs) I.obs->on_step(ev);
        I.emit(ev.to_json());
        // A gradient of exactly zero step after step trains nothing (e.g. label words the tokenizer
        // maps to one token): said once, not silently run to the end.
        zero_grad_steps = (!m.bad && g.norm == 0.0) ? zero_grad_steps + 1 : 0;
        if (zero_grad_steps == kZeroGradWarnAfter && I.obs)
            I.obs->on_status("warning: the trainable gradient has been exactly zero for " + std::to_string(kZeroGradWarnAfter) +
                             " steps: nothing is learning (check the label words, the delta's targets and the learning signal)");
        if (I.consecutive_bad >= cfg.max_nonfinite) {
            res.status = "stopped_nonfinite";
            if (I.obs) I.obs->on_error("stopped after " + std::to_string(I.consecutive_bad) + " non-finite steps in a row");
            break;
        }
        if (I.eval && ((cfg.eval_every > 0 && step_ % cfg.eval_every == 0) || step_ == cfg.max_steps) && !evaluate_step(res)) break;
        if (!I.cfg.run_dir.empty() && cfg.checkpoint_every > 0 && step_ % cfg.checkpoint_every == 0) save_periodic_checkpoint();
        if (parallel && cfg.replica_check_every > 0 && step_ % cfg.replica_check_every == 0) check_replicas(I, step_);
    }
    res.steps = step_;
    res.skipped = I.skipped;
    res.overflow_skips = I.overflow_skips;
    res.allreduce_seconds = I.allreduce_seconds;
    res.allreduce_bytes = I.allreduce_bytes;
    res.allreduces = I.allreduces;
    res.eval_examples = I.eval_examples;
    res.losses = I.losses;
    if (I.obs) I.obs->on_status(res.status);
    I.emit(StatusEvent{res.status, step_}.to_json());
    return res;
}

bool Trainer::evaluate_step(TrainResult& res) {
    auto& I = *impl_;
    // The confusion matrix goes into events.jsonl up to 64 classes (4,096 counts a line).
    EvalEvent e{step_, evaluate(*I.eval), I.confusion.labels.size() <= 64 ? I.confusion : ConfusionMatrix{}};
    res.last_metrics = e.metrics;
    if (I.obs) I.obs->on_eval(e);
    I.emit(e.to_json());
    const double score = eval_score(e.metrics);
    if (score > I.best) {
        I.best = score;
        I.evals_without_gain = 0;
        if (I.cfg.save_best && !I.cfg.run_dir.empty())
            save_checkpoint(run_folder::checkpoint_path(I.cfg.run_dir, run_folder::kBest));  // a full checkpoint: resumable too
    } else if (I.cfg.patience > 0 && ++I.evals_without_gain >= I.cfg.patience) {
        res.status = "early_stopped";
        return false;
    }
    return true;
}

void Trainer::save_periodic_checkpoint() {
    auto& I = *impl_;
    const std::string dir = run_folder::checkpoint_path(I.cfg.run_dir, run_folder::step_name(step_));
    save_checkpoint(dir);
    I.saved.push_back(dir);
    while (I.cfg.keep_checkpoints > 0 && static_cast<int>(I.saved.size()) > I.cfg.keep_checkpoints) {
        run_folder::remove_checkpoint(I.saved.front());
        I.saved.erase(I.saved.begin());
    }
}

void Trainer::save_checkpoint(const std::string& dir) {
    auto& I = *impl_;
    st::NamedTensors t;
    for (std::size_t i = 0; i < I.params.size(); ++i) {
        const auto& [name, p] = I.params[i];
        if (!torch::isfinite(p).all().item<bool>())
            throw Error("parameter '" + name + "' is not finite; checkpoint not written", dir);
        t.emplace_back(run_folder::param_key(name), p.detach());
        auto& state = I.opt->state();
        auto it = state.find(c10::guts::to_string(p.unsafeGetTensorImpl()));
        if (it != state.end()) {
            auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
            t.emplace_back("exp_avg." + name, s.exp_avg());
            t.emplace_back("exp_avg_sq." + name, s.exp_avg_sq());
            t.emplace_back("adam_step." + name, torch::tensor(s.step(), torch::kLong));
        }
    }
    t.emplace_back("rng.torch_cpu", I.rng->state());
    if (I.device.is_cuda()) {  // dropout masks of CUDA tensors come from the device's generator
        at::Generator g = at::globalContext().defaultGenerator(I.device);
        std::lock_guard<std::mutex> lock(g.mutex());
        t.emplace_back("rng.torch_cuda", g.get_state());
    }
    for (const auto& h : I.model.training_hooks())
        for (const auto& [name, value] : h->state()) t.emplace_back("hook." + name, value.detach().to(at::kCPU).contiguous());
    nlohmann::json s = {{"step", step_},       {"epoch", I.epoch},         {"cursor", I.cursor},
                        {"skipped", I.skipped}, {"best", I.best},           {"evals_without_gain", I.evals_without_gain},
                        {"losses", I.losses},  {"seed", I.cfg.seed},       {"format", "deltatune-checkpoint-1"}};
    for (auto& l : s["losses"])
        if (l.is_number_float() && !std::isfinite(l.get<double>())) l = nullptr;
    const std::string tmp = dir + ".tmp", old = dir + ".old";
    // Leftovers of a save killed part-way: a staging folder, or the previous checkpoint moved aside
    // (put back where the new one had not yet arrived).
    run_folder::remove_checkpoint(tmp);
    if (!path_exists(dir) && path_exists(old)) std::rename(old.c_str(), dir.c_str());
    run_folder::remove_checkpoint(old);
    make_dirs(tmp);
    try {
        st::save(run_folder::trainable_path(tmp), t, {{"format", "pt"}});
        write_file_atomic(run_folder::state_path(tmp), s.dump(1) + "\n");
    } catch (...) {
        // A full disk (or a file size limit): no half-written staging folder stays behind; the
        // previous checkpoint is untouched, so the run resumes from it once there is room.
        run_folder::remove_checkpoint(tmp);
        throw;
    }
    std::rename(dir.c_str(), old.c_str());  // may not exist
    if (std::rename(tmp.c_str(), dir.c_str()) != 0) throw Error("cannot move checkpoint into place", dir);
    run_folder::remove_checkpoint(old);
    run_folder::set_latest(dir);
}

void Trainer::load_checkpoint(const std::string& dir) {
    auto& I = *impl_;
    const auto stored = run_folder::read_trainable(dir, I.params);
    auto f = st::File::open(run_folder::trainable_path(dir));
    nlohmann::json s = json::load_file(run_folder::state_path(dir));
    torch::NoGradGuard ng;
    for (std::size_t i = 0; i < I.params.size(); ++i) {
        const auto& [name, p] = I.params[i];
        p.copy_(stored[i].second);
        if (f->contains("exp_avg." + name)) {
            auto st = std::make_unique<torch::optim::AdamWParamState>();
            st->exp_avg(f->tensor("exp_avg." + name).to(p.device()).clone());
            st->exp_avg_sq(f->tensor("exp_avg_sq." + name).to(p.device()).clone());
            st->step(f->tensor("adam_step." + name).item<std::int64_t>());
            I.opt->state()[c10::guts::to_string(p.unsafeGetTensorImpl())] = std::move(st);
        }
    }
    I.rng->set_state(f->tensor("rng.torch_cpu"));
    if (I.device.is_cuda() && f->contains("rng.torch_cuda")) {
        at::Generator g = at::globalContext().defaultGenerator(I.device);
        std::lock_guard<std::mutex> lock(g.mutex());
        g.set_state(f->tensor("rng.torch_cuda"));
    }
    std::map<std::string, at::Tensor> hook_state;
    for (const auto& info : f->tensors())
        if (info.name.rfind("hook.", 0) == 0) hook_state[info.name.substr(5)] = f->tensor(info.name);
    for (const auto& h : I.model.training_hooks()) h->load_state(hook_state);
    step_ = json::get_int(s, "step", dir);
    I.epoch = json::get_int(s, "epoch", dir);
    I.new_epoch();
    I.cursor = json::get_int(s, "cursor", dir);
    I.skipped = json::get_int(s, "skipped", dir);
    I.best = s.value("best", -1e300);
    I.evals_without_gain = static_cast<int>(s.value("evals_without_gain", 0));
    I.losses.clear();
    for (const auto& l : s["losses"]) I.losses.push_back(l.is_null() ? std::nan("") : l.get<double>());
}

}  // namespace dt
