// Prefix tuning (Li & Liang 2021; P-tuning v2): P virtual key/value vectors per layer, prepended to
// every attention layer's keys and values. The table is (P, 2·L·H·D), viewed as (P, 2L, H, D) with
// slot 2l the keys and 2l+1 the values of layer l (PEFT's layout). With prefix_projection, an MLP
// (d -> k -> 2·L·H·D, tanh) reparameterises it during training; fold() replaces the MLP by its output.
// Module: `prefix_encoder.embedding.weight` (+ `prefix_encoder.transform.{0,2}.*`).
#include "delta/methods.h"

#include "core/error.h"
#include "delta/util.h"
#include "models/model.h"

#include <torch/torch.h>

namespace dt {
namespace {

class PrefixMethod : public DeltaMethod {
public:
    bool spans_layers() const override { return true; }
    PrefixMethod(const nlohmann::json& spec, const std::string& where) : DeltaMethod(spec) {
        const nlohmann::json o = resolve_options("prefix", spec, where);
        p_ = o["num_virtual_tokens"].get<std::int64_t>();
        projection_ = o["prefix_projection"].get<bool>();
        k_ = o.value("encoder_hidden_size", std::int64_t(0));  // 0: the hidden size
        std_ = o["init_std"].get<double>();
        seed_ = o["seed"].get<std::uint64_t>();
    }
    std::string name() const override { return "prefix"; }

    void attach(AttachContext& ctx) override {
        const auto& atts = ctx.model.attentions();
        if (atts.empty()) throw Error(ctx.model.name() + " exposes no attention prefix points", ctx.where);
        if (ctx.model.named_children().contains("prefix_encoder"))
            throw Error("the model already has a prefix encoder", ctx.where, "use one prefix method");
        for (const auto& a : atts)
            if (*a.prefix) throw Error("attention '" + a.path + "' already has a prefix", ctx.where);
        L_ = ctx.model.prefix_layers();
        H_ = atts[0].num_heads;
        D_ = atts[0].head_dim;
        const std::int64_t width = 2 * L_ * H_ * D_, d = ctx.model.hidden_size();
        enc_ = std::make_shared<torch::nn::Module>("PrefixEncoder");
        auto gen = delta::make_generator(seed_);
        torch::NoGradGuard ng;
        if (projection_) {
            const std::int64_t k = k_ > 0 ? k_ : d;
            emb_ = enc_->register_module("embedding", Embedding(p_, d));
            emb_->weight.normal_(0.0, std_, gen);
            transform_ = enc_->register_module("transform", torch::nn::Sequential(Linear(d, k), torch::nn::Tanh(), Linear(k, width)));
            for (auto& t : transform_->parameters()) {
                if (t.dim() == 2) t.uniform_(-1.0 / std::sqrt(static_cast<double>(t.size(1))), 1.0 / std::sqrt(static_cast<double>(t.size(1))), gen);
                else t.zero_();
            }
        } else {
            emb_ = enc_->register_module("embedding", Embedding(p_, width));
            emb_->weight.normal_(0.0, std_, gen);
        }
        const at::Tensor like = ctx.model.parameters().front();
        enc_->to(like.device(), like.scalar_type());
        ctx.model.register_module("prefix_encoder", enc_);
        for (const auto& p : enc_->named_parameters(true)) added_.push_back("prefix_encoder." + p.key());
        install(ctx.model);
        for (const auto& a : atts) targets_.push_back(a.path);
    }

    void detach(TransformerModel& model) override {
        for (const auto& a : model.attentions()) *a.prefix = nullptr;
        if (model.named_children().contains("prefix_encoder")) model.unregister_module("prefix_encoder");
    }

    bool can_fold() const override { return projection_; }
    void fold(TransformerModel& model) override {
        if (!projection_) return;
        at::Tensor table;
        {
            torch::NoGradGuard ng;
            table = kv_table().detach().clone();
        }
        detach(model);
        enc_ = std::make_shared<torch::nn::Module>("PrefixEncoder");
        emb_ = enc_->register_module("embedding", Embedding(table.size(0), table.size(1)));
        emb_->to(table.device(), table.scalar_type());
        {
            torch::NoGradGuard ng;
            emb_->weight.copy_(table);
        }
        transform_ = nullptr;
        projection_ = false;
        model.register_module("prefix_encoder", enc_);
        added_.clear();
        for (const auto& p : enc_->named_parameters(true)) added_.push_back("prefix_encoder." + p.key());
        install(model);
    }

private:
    at::Tensor kv_table() { return transform_ ? transform_->forward(emb_->weight) : emb_->weight; }  // (P, 2·L·H·D)

    void install(TransformerModel& model) {
        const auto P = p_, L = L_, H = H_, D = D_;
        auto self_emb = emb_;
        auto self_tr = transform_;
        for (const auto& a : model.attentions()) {
            const auto l = static_cast<std::int64_t>(a.layer);
            *a.prefix = [=](std::int64_t B) mutable {
                at::Tensor t = self_tr ? self_tr->forward(self_emb->weight) : self_emb->weight;
                at::Tensor kv = t.view({P, 2 * L, H, D}).permute({1, 2, 0, 3});  // (2L, H, P, D)
                return std::make_pair(kv[2 * l].unsqueeze(0).expand({B, H, P, D}), kv[2 * l + 1].unsqueeze(0).expand({B, H, P, D}));
            };
        }
    }

    std::int64_t p_ = 20, k_ = 0, L_ = 0, H_ = 0, D_ = 0;
    bool projection_ = false;
    double std_ = 1.0;
    std::uint64_t seed_ = 0;
    std::shared_ptr<torch::nn::Module> enc_;
    Embedding emb_{nullptr};
    torch::nn::Sequential transform_{nullptr};
};

}  // namespace

std::unique_ptr<DeltaMethod> make_prefix(const nlohmann::json& spec, const std::string& where) {
    return std::make_unique<PrefixMethod>(spec, where);
}

}  // namespace dt
