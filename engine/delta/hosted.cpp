#include "delta/hosted.h"

#include "core/error.h"

#include <torch/torch.h>

#include <cmath>
#include <regex>

namespace dt::delta {

bool DeltaWeightBranch::dropped() const {
    return module_dropout_ > 0 && host_.is_training() && torch::rand({1}).item<double>() < module_dropout_;
}

at::Tensor DeltaWeightBranch::transform_output(const at::Tensor& y, const at::Tensor& x) {
    if (merged_ || dropped()) return y;
    return y + at::linear(x, delta_weight().to(x.scalar_type()));
}

void DeltaWeightBranch::merge(LinearImpl& host) {
    torch::NoGradGuard ng;
    host.weight.add_(delta_weight());
    merged_ = true;
}

void DeltaWeightBranch::unmerge(LinearImpl& host) {
    torch::NoGradGuard ng;
    host.weight.sub_(delta_weight());
    merged_ = false;
}

void HostedMethod::detach(TransformerModel&) {
    for (auto& h : hosts_) {
        if (h.branch) h.host->remove_branch(h.branch.get());
        for (const auto& p : h.params) h.host->remove_parameter(p);
    }
    hosts_.clear();
}

bool HostedMethod::merged() const { return !hosts_.empty() && hosts_.front().branch && hosts_.front().branch->merged(); }

void HostedMethod::merge() {
    for (auto& h : hosts_)
        if (!h.branch->merged()) h.branch->merge(*h.host);
}

void HostedMethod::unmerge() {
    for (auto& h : hosts_)
        if (h.branch->merged()) h.branch->unmerge(*h.host);
}

HostedMethod::Host& HostedMethod::new_host(const std::string& path, LinearImpl& host) {
    hosts_.push_back({path, &host, nullptr, {}});
    targets_.push_back(path);
    return hosts_.back();
}

at::Tensor HostedMethod::add_param(Host& h, const std::string& local, const at::Tensor& value, bool trainable) {
    if (h.host->named_parameters(false).contains(local))
        throw Error("module '" + h.path + "' already has '" + local + "'", "delta spec: " + name(), "two methods of one kind target it");
    at::Tensor t = h.host->register_parameter(local, value.to(h.host->weight.device(), h.host->weight.scalar_type()), trainable);
    h.params.push_back(local);
    added_.push_back(h.path + "." + local);
    return t;
}

void HostedMethod::set_branch(Host& h, std::shared_ptr<DeltaWeightBranch> b) {
    h.branch = std::move(b);
    h.host->add_branch(h.branch);
}

double pattern_number(const nlohmann::json& patterns, const std::string& path, double fallback, const std::string& where,
                      const char* field) {
    if (patterns.is_null()) return fallback;
    for (auto it = patterns.begin(); it != patterns.end(); ++it) {
        std::regex re;
        try {
            re = std::regex("(.*\\.)?" + it.key());
        } catch (const std::regex_error&) {
            throw Error("invalid pattern '" + it.key() + "'", where + ": " + field);
        }
        if (std::regex_match(path, re)) {
            if (!it.value().is_number()) throw Error("values must be numbers", where + ": " + field);
            return it.value().get<double>();
        }
    }
    return fallback;
}

void kaiming_uniform_(at::Tensor& t, at::Generator& gen) {
    torch::NoGradGuard ng;
    const double fan_in = t.dim() >= 2 ? static_cast<double>(t.size(1)) : static_cast<double>(t.size(0));
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(fan_in) : 0.0;
    t.uniform_(-bound, bound, gen);
}

}  // namespace dt::delta
