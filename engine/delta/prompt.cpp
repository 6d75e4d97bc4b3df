// Prompt tuning (Lester et al. 2021): P soft token vectors placed before the input embeddings.
// Init: random N(0, init_std), sampled vocabulary rows ("vocab", seeded), or given token ids
// ("ids": `init_token_ids`, repeated to length P as PEFT does for text). Parameters: P·d.
// Module: `prompt_encoder.embedding.weight`.
// P-tuning (Liu et al. 2021, "GPT Understands, Too"), as PEFT's PromptEncoder: the P vectors are the
// output of a trained encoder over a P-row embedding table: an MLP (Linear d→h, ReLU, Linear h→h,
// ReLU, Linear h→d) or a bidirectional LSTM (h per direction, encoder_num_layers) followed by
// Linear 2h→2h, ReLU, Linear 2h→d. Names as PEFT: prompt_encoder.{embedding,mlp_head.N,lstm_head}.
// fold() replaces the table by the encoder's output and drops the encoder: the outputs are
// unchanged, and the folded table is what PEFT saves (`prompt_embeddings`).
#include "delta/methods.h"

#include "core/error.h"
#include "delta/hosted.h"
#include "delta/util.h"
#include "models/model.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace dt {
namespace {

class PromptMethod : public DeltaMethod {
public:
    std::int64_t extra_tokens() const override { return p_; }
    PromptMethod(const nlohmann::json& spec, const std::string& where, const std::string& kind = "prompt") : DeltaMethod(spec) {
        const nlohmann::json o = resolve_options(kind, spec, where);
        p_ = o["num_virtual_tokens"].get<std::int64_t>();
        init_ = o.value("prompt_tuning_init", std::string("random"));
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

protected:
    std::int64_t p_ = 20;
    std::string init_;
    double std_ = 1.0;
    std::uint64_t seed_ = 0;
    std::vector<std::int64_t> ids_;
    std::shared_ptr<torch::nn::Module> enc_;
    Embedding emb_{nullptr};
};

class PtuningMethod : public PromptMethod {
public:
    PtuningMethod(const nlohmann::json& spec, const std::string& where)
        : PromptMethod(spec, where, "ptuning"), o_(resolve_options("ptuning", spec, where)) {
        folded_ = o_["folded"].get<bool>();
    }
    std::string name() const override { return "ptuning"; }

    void attach(AttachContext& ctx) override {
        PromptMethod::attach(ctx);
        if (folded_) return;
        const std::int64_t d = emb_->weight.size(1);
        const std::int64_t h = o_.contains("encoder_hidden_size") ? o_["encoder_hidden_size"].get<std::int64_t>() : d;
        auto gen = delta::make_generator(o_["seed"].get<std::uint64_t>() + 1);
        auto linear = [&](std::int64_t in, std::int64_t out) {
            torch::nn::Linear l(in, out);
            delta::kaiming_uniform_(l->weight, gen);  // PyTorch's Linear init, seeded
            torch::NoGradGuard ng;
            l->bias.uniform_(-1.0 / std::sqrt(static_cast<double>(in)), 1.0 / std::sqrt(static_cast<double>(in)), gen);
            return l;
        };
        torch::nn::Sequential mlp;
        if (o_["encoder_reparameterization_type"].get<std::string>() == "LSTM") {
            auto opts = torch::nn::LSTMOptions(d, h).num_layers(o_["encoder_num_layers"].get<std::int64_t>()).bidirectional(true).batch_first(true);
            opts.dropout(o_["encoder_dropout"].get<double>());
            lstm_ = enc_->register_module("lstm_head", torch::nn::LSTM(opts));
            {
                torch::NoGradGuard ng;
                for (auto& p : lstm_->parameters()) p.uniform_(-1.0 / std::sqrt(static_cast<double>(h)), 1.0 / std::sqrt(static_cast<double>(h)), gen);
            }
            mlp->push_back(linear(2 * h, 2 * h));
            mlp->push_back(torch::nn::ReLU());
            mlp->push_back(linear(2 * h, d));
        } else {
            mlp->push_back(linear(d, h));
            mlp->push_back(torch::nn::ReLU());
            mlp->push_back(linear(h, h));
            mlp->push_back(torch::nn::ReLU());
            mlp->push_back(linear(h, d));
        }
        mlp_ = enc_->register_module("mlp_head", mlp);
        enc_->to(emb_->weight.device(), emb_->weight.scalar_type());
        for (const auto& p : enc_->named_parameters(true))
            if (p.key() != "embedding.weight") added_.push_back("prompt_encoder." + p.key());
        // The provider holds the modules, not the method: a model kept after its delta set is gone
        // still has valid ones.
        *ctx.model.prompt() = [emb = emb_, lstm = lstm_, mlp = mlp_]() mutable { return encode(emb, lstm, mlp); };
    }

    bool can_fold() const override { return !folded_; }
    void fold(TransformerModel& model) override {
        if (folded_) return;
        {
            torch::NoGradGuard ng;
            emb_->weight.copy_(encoded());
        }
        if (lstm_) enc_->unregister_module("lstm_head");
        enc_->unregister_module("mlp_head");
        lstm_ = nullptr;
        mlp_ = nullptr;
        added_.erase(std::remove_if(added_.begin(), added_.end(), [](const std::string& n) { return n != "prompt_encoder.embedding.weight"; }),
                     added_.end());
        auto e = emb_;
        *model.prompt() = [e] { return e->weight; };
        folded_ = true;
    }

private:
    static at::Tensor encode(Embedding& emb, torch::nn::LSTM& lstm, torch::nn::Sequential& mlp) {
        at::Tensor x = emb->weight;
        if (lstm) x = std::get<0>(lstm->forward(x.unsqueeze(0))).squeeze(0);
        return mlp->forward(x);
    }
    at::Tensor encoded() { return encode(emb_, lstm_, mlp_); }
    nlohmann::json o_;
    bool folded_ = false;
    torch::nn::LSTM lstm_{nullptr};
    torch::nn::Sequential mlp_{nullptr};
};

}  // namespace

std::unique_ptr<DeltaMethod> make_ptuning(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<PtuningMethod>(spec, where);
}

std::unique_ptr<DeltaMethod> make_prompt(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<PromptMethod>(spec, where);
}

}  // namespace dt
