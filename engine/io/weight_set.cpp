#include "io/weight_set.h"

#include "core/error.h"
#include "io/json_util.h"
#include "io/limits.h"

#include <nlohmann/json.hpp>

#include <set>
#include <sys/stat.h>

namespace dt {

static bool file_exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_plain_file_name(const std::string& name) {
    if (name.empty() || name == "." || name == "..") return false;
    for (char c : name)
        if (c == '/' || c == '\\' || c == '\0') return false;
    return true;
}

void WeightSet::add_file(std::shared_ptr<st::File> f) {
    const std::size_t idx = files_.size();
    for (const auto& t : f->tensors()) {
        auto [it, inserted] = where_.emplace(t.name, idx);
        if (!inserted)
            throw Error("tensor '" + t.name + "' appears in two files (also in " + files_[it->second]->path() + ")",
                        f->path());
    }
    files_.push_back(std::move(f));
}

WeightSet WeightSet::open_file(const std::string& path) {
    WeightSet w;
    w.add_file(st::File::open(path));
    return w;
}

WeightSet WeightSet::open_folder(const std::string& dir) {
    const std::string index_path = dir + "/model.safetensors.index.json";
    const std::string single = dir + "/model.safetensors";
    WeightSet w;
    if (file_exists(index_path)) {
        nlohmann::json idx = json::load_file(index_path);
        if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
            throw Error("missing object field 'weight_map'", index_path);
        std::map<std::string, std::set<std::string>> by_file;
        for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
            if (!it.value().is_string())
                throw Error("weight_map entry '" + it.key() + "' must be a file name string", index_path);
            const std::string shard = it.value().get<std::string>();
            if (!is_plain_file_name(shard))
                throw Error("weight_map entry '" + it.key() + "' names '" + shard + "', which is not a file in the model folder",
                            index_path, "shard names must be plain file names");
            by_file[shard].insert(it.key());
        }
        if (by_file.empty()) throw Error("weight_map is empty", index_path);
        if (by_file.size() > limits::kShardFiles)
            throw Error("weight_map names " + std::to_string(by_file.size()) + " shard files (" + limits::describe("shard_files", limits::kShardFiles) + ")",
                        index_path);
        for (const auto& [shard, names] : by_file) {
            const std::string p = dir + "/" + shard;
            if (!file_exists(p)) throw Error("shard '" + shard + "' listed in the index is missing", index_path);
            auto f = st::File::open(p);
            for (const auto& n : names)
                if (!f->contains(n))
                    throw Error("tensor '" + n + "' is listed in the index but missing from this shard", p,
                                "the index and the shards come from different saves");
            w.add_file(std::move(f));
        }
        return w;
    }
    if (file_exists(single)) {
        w.add_file(st::File::open(single));
        return w;
    }
    std::string hint = "save the model with safe_serialization=True";
    if (file_exists(dir + "/pytorch_model.bin"))
        hint = "only safetensors weights are read; convert pytorch_model.bin with transformers' save_pretrained(..., safe_serialization=True)";
    throw Error("no model.safetensors or model.safetensors.index.json in the folder", dir, hint);
}

std::vector<std::string> WeightSet::names() const {
    std::vector<std::string> out;
    out.reserve(where_.size());
    for (const auto& kv : where_) out.push_back(kv.first);
    return out;
}

at::Tensor WeightSet::tensor(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) throw Error("no tensor named '" + name + "' in the checkpoint");
    return files_[it->second]->tensor(name);
}

const st::TensorInfo& WeightSet::info(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) throw Error("no tensor named '" + name + "' in the checkpoint");
    return files_[it->second]->info(name);
}

const std::string& WeightSet::file_of(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) throw Error("no tensor named '" + name + "' in the checkpoint");
    return files_[it->second]->path();
}

std::uint64_t WeightSet::total_file_bytes() const {
    std::uint64_t s = 0;
    for (const auto& f : files_) s += f->file_size();
    return s;
}

}  // namespace dt
