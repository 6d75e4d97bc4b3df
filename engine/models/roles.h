// Module roles, as llama.cpp's tensor tables have them: each architecture maps the roles below to
// its own module names, in one table per architecture (bert.cpp, llama.cpp, gpt2.cpp), and delta
// methods ask for roles (LoRA's default targets, BitFit's bias groups, the head that `all-linear`
// leaves out) and never name a module of a specific model.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}

namespace dt {

enum class Role {
    AttnQ,     // attn_q: query projection
    AttnK,     // attn_k: key projection
    AttnV,     // attn_v: value projection
    AttnQKV,   // attn_qkv: fused query/key/value projection (GPT-2's c_attn); stands in for q, k, v
    AttnOut,   // attn_out: attention output projection
    FfnUp,     // ffn_up: feed-forward up (or first) projection
    FfnGate,   // ffn_gate: gated feed-forward's gate projection
    FfnDown,   // ffn_down: feed-forward down (or second) projection
    Norm,      // norm: every normalisation layer
    Embed,     // embed: the input token embedding
    Head,      // head: the output layer's modules (LM decoder, classifier)
};

// "attn_q", "ffn_down", ... (the names DESIGN.md uses).
const char* role_name(Role r);
// The role called `name`, or nullopt.
std::optional<Role> role_from_name(const std::string& name);
const std::vector<Role>& all_roles();

// One architecture's module names per role. A name is a PEFT target_modules list entry: it matches
// a module path equal to it or ending in "." + name, so it is written relative to a block
// ("query", "mlp.c_proj", "attention.output.dense") or, for modules outside blocks, to the root
// ("lm_head"). A role may have several names (e.g. all norms) or none.
class RoleTable {
public:
    // Replaces the names of `r`; returns *this so tables can be built (and extended) in one expression.
    RoleTable& set(Role r, std::vector<std::string> names);
    // The names declared for `r`; empty if none.
    const std::vector<std::string>& names(Role r) const;
    bool has(Role r) const { return !names(r).empty(); }

    // Target-list entries that select the modules of `roles`, in order, without duplicates. A
    // fused attn_qkv answers for attn_q, attn_k and attn_v where the table lacks them.
    std::vector<std::string> targets(const std::vector<Role>& roles) const;

    // The role of a module path: among the names that match it, the longest wins (so BERT's
    // attention.output.dense is attn_out, not ffn_down's output.dense); nullopt if none matches.
    std::optional<Role> role_of(const std::string& path) const;

    // Paths, in `root`'s module order, of the modules whose role_of() is `r`; with `linear_only`,
    // only the engine's Linear layers among them.
    std::vector<std::string> find(const torch::nn::Module& root, Role r, bool linear_only = false) const;

private:
    std::vector<std::pair<Role, std::vector<std::string>>> rows_;
};

// Whether `path` equals `name` or ends in "." + name (PEFT's list rule).
bool name_matches(const std::string& path, const std::string& name);

}  // namespace dt
