// Prompt tuning (Lester et al. 2021): P soft token vectors placed before the input embeddings.
// Init: random N(0, init_std), sampled vocabulary rows ("vocab", seeded), or given token ids
// ("ids": `init_token_ids`, repeated to length P as PEFT does for text). Parameters: P·d.
// Module: `prompt_encoder.embedding.weight`.
#include "delta/methods.h"

#include "core/error.h"
#include "delta/util.h"
#include "models/model.h"

#include <torch/torch.h>

namespace dt {
namespace {

class PromptMethod : public DeltaMethod {
public:
    PromptMethod(const nlohmann::json& spec, const std::string& where) : DeltaMethod(spec) {
        const nlohmann::json o = resolve_options("prompt", spec, where);
        p_ = o["num_virtual_tokens"].get<std::int64_t>();
        init_ = o["prompt_tuning_init"].get<std::string>();
        std_ = o["init_std"].get<double>();
        seed_ = o["seed"].get<std::uint64_t>();
        if (init_ == "ids") {
            if (!spec.contains("init_token_ids") || !spec["init_token_ids"].is_array() || spec["init_token_ids"].empty())
                throw Error("prompt_tuning_init 'ids' needs a non-empty list 'init_token_ids'", where);
            for (const auto& e : spec["init_token_ids"]) {
                if (!e.is_number_integer() || e.get<std::int64_t>() < 0)
                    throw Error("'init_token_ids' entries must be non-negative integers", where);
                ids_.push_back(e.get<std::int64_t>());
            }
        }
    }
    std::string name() const override { return "prompt"; }

    void attach(AttachContext& ctx) override {
        PromptProvider* slot = ctx.model.prompt();
        if (!slot) throw Error(ctx.model.name() + " exposes no prompt point", ctx.where);
        if (*slot) throw Error("the model already has a soft prompt", ctx.where, "use one prompt method");
        auto word = delta::module_at(ctx.model, ctx.model.word_embeddings_path());
        auto* we = word ? dynamic_cast<EmbeddingImpl*>(word.get()) : nullptr;
        if (!we) throw Error("word embeddings not found", ctx.where);
        const std::int64_t d = we->weight.size(1), V = we->weight.size(0);
        enc_ = std::make_shared<torch::nn::Module>("PromptEmbedding");
        emb_ = enc_->register_module("embedding", Embedding(p_, d));
        emb_->to(we->weight.device(), we->weight.scalar_type());
        auto gen = delta::make_generator(seed_);
        {
            torch::NoGradGuard ng;
            if (init_ == "random") {
                emb_->weight.normal_(0.0, std_, gen);
            } else {
                at::Tensor ids = torch::empty({p_}, torch::kLong);
                if (init_ == "vocab") ids.random_(0, V, gen);
                for (std::int64_t i = 0; init_ == "ids" && i < p_; ++i) {
                    const auto id = ids_[static_cast<std::size_t>(i) % ids_.size()];
                    if (id >= V) throw Error("init_token_ids holds " + std::to_string(id) + ", outside the vocabulary of " + std::to_string(V), ctx.where);
                    ids[i] = id;
                }
                emb_->weight.copy_(we->weight.detach().index_select(0, ids));
            }
        }
        ctx.model.register_module("prompt_encoder", enc_);
        auto e = emb_;
        *slot = [e] { return e->weight; };
        added_.push_back("prompt_encoder.embedding.weight");
        targets_.push_back(ctx.model.word_embeddings_path());
    }

    void detach(TransformerModel& model) override {
        if (auto* slot = model.prompt()) *slot = nullptr;
        if (model.named_children().contains("prompt_encoder")) model.unregister_module("prompt_encoder");
    }

private:
    std::int64_t p_ = 20;
    std::string init_;
    double std_ = 1.0;
    std::uint64_t seed_ = 0;
    std::vector<std::int64_t> ids_;
    std::shared_ptr<torch::nn::Module> enc_;
    Embedding emb_{nullptr};
};

}  // namespace

std::unique_ptr<DeltaMethod> make_prompt(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<PromptMethod>(spec, where);
}

}  // namespace dt
