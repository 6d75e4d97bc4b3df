// ModuleTree: a plain, torch-free snapshot of a model's module hierarchy (paths, types, own and
// total parameter counts, shapes, dtypes) that views, the CLI and selection work on. Repeated
// blocks with identical structure fold into one line (`encoder.layer.0-11`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace dt {

class TransformerModel;

struct ParamEntry {
    std::string name;  // local name: "weight"
    std::vector<std::int64_t> shape;
    std::string dtype;  // "F32", ...
    std::int64_t numel = 0;
    std::int64_t bytes = 0;
    bool trainable = true;
    std::string tied_to;  // canonical path when this is an alias (not counted here)
};

struct ModuleNode {
    std::string path;  // HF dotted path; "" for the root
    std::string name;  // last path component
    std::string type;  // HF class name: "BertSelfAttention", "Linear", ...
    int parent = -1;
    std::vector<int> children;
    std::vector<ParamEntry> params;
    std::int64_t own_params = 0;  // parameters first owned here (aliases excluded)
    std::int64_t total_params = 0;
    std::int64_t total_bytes = 0;
    std::int64_t trainable_params = 0;  // in the subtree
    bool is_linear() const { return type == "Linear"; }
};

// A line of the folded view: one node, or a run of structurally identical siblings.
struct FoldedLine {
    int node = -1;        // representative (first of the run)
    int depth = 0;
    int count = 1;        // how many siblings it stands for
    std::string label;    // "layer.0-11" or the node's name
    std::string path;     // "bert.encoder.layer.0-11"
};

class ModuleTree {
public:
    static ModuleTree build(const torch::nn::Module& root);
    static ModuleTree build(const TransformerModel& model);

    const std::vector<ModuleNode>& nodes() const { return nodes_; }
    const ModuleNode& root() const { return nodes_.front(); }
    int find(const std::string& path) const;  // -1 if absent
    const std::string& architecture() const { return architecture_; }
    std::int64_t total_params() const { return root().total_params; }
    std::int64_t total_bytes() const { return root().total_bytes; }
    const std::vector<std::string>& output_head_paths() const { return head_paths_; }

    // Same types, names and parameter shapes/dtypes all the way down.
    std::string structure_signature(int node) const;
    std::vector<FoldedLine> folded() const;
    std::string to_text() const;  // the folded view with counts, for `deltatune inspect`
    std::string to_json() const;  // architecture, total_params, total_bytes, modules[], folded[]

private:
    int add_node(const torch::nn::Module& m, const std::string& path, const std::string& name, int parent,
                 std::vector<const void*>& seen);
    std::vector<ModuleNode> nodes_;
    std::string architecture_;
    std::vector<std::string> head_paths_;
};

std::string format_count(std::int64_t n);  // 1234567 -> "1.23M"
std::string format_bytes(std::int64_t n);  // 1536 -> "1.5 KiB"

}  // namespace dt
