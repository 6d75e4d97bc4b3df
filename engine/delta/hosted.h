// What the weight-update methods share (LoHa, LoKr, OFT, AdaLoRA, VeRA): parameters hung on each
// targeted Linear under PEFT's names (`...query.hada_w1_a`), one branch per host, and merge /
// unmerge / detach over all hosts.
#pragma once

#include "delta/method.h"
#include "models/layers.h"

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

namespace dt::delta {

// A branch adding x ΔWᵀ to the host's output, where ΔW (out, in) is the method's delta_weight();
// merging adds ΔW to W (unmerge subtracts it).
class DeltaWeightBranch : public LinearBranch {
public:
    DeltaWeightBranch(LinearImpl& host, std::string kind, double module_dropout = 0.0)
        : host_(host), kind_(std::move(kind)), module_dropout_(module_dropout) {}
    std::string kind() const override { return kind_; }
    virtual at::Tensor delta_weight() const = 0;
    at::Tensor transform_output(const at::Tensor& y, const at::Tensor& x) override;
    bool can_merge() const override { return true; }
    void merge(LinearImpl& host) override;
    void unmerge(LinearImpl& host) override;
    bool merged() const { return merged_; }

protected:
    // lycoris' module dropout: while training, the whole branch is skipped with this probability.
    bool dropped() const;
    LinearImpl& host_;
    std::string kind_;
    double module_dropout_;
    bool merged_ = false;
};

// A method whose every target is a Linear with parameters and one branch of its own.
class HostedMethod : public DeltaMethod {
public:
    using DeltaMethod::DeltaMethod;
    void detach(TransformerModel& model) override;
    bool can_merge() const override { return true; }
    bool merged() const override;
    void merge() override;
    void unmerge() override;

protected:
    struct Host {
        std::string path;
        LinearImpl* host = nullptr;
        std::shared_ptr<DeltaWeightBranch> branch;
        std::vector<std::string> params;  // local names on the host
    };
    // Registers `value` (moved to the host's device and dtype) as `local` on the host at `path` and
    // records it as added; refuses a host that already has it (two methods of one kind).
    at::Tensor add_param(Host& h, const std::string& local, const at::Tensor& value, bool trainable = true);
    Host& new_host(const std::string& path, LinearImpl& host);
    void set_branch(Host& h, std::shared_ptr<DeltaWeightBranch> b);
    std::vector<Host> hosts_;
};

// PEFT's rank_pattern / alpha_pattern lookup: a key applies when the module path matches
// "(.*\.)?key$"; `fallback` otherwise.
double pattern_number(const nlohmann::json& patterns, const std::string& path, double fallback, const std::string& where,
                      const char* field);

// torch.nn.init.kaiming_uniform_(t, a=sqrt(5)) (PyTorch's Linear default): U(-1/sqrt(fan_in), +),
// fan_in = t.size(1) for 2-D tensors, drawn from `gen`.
void kaiming_uniform_(at::Tensor& t, at::Generator& gen);

}  // namespace dt::delta
