// The weights of a model folder: a single model.safetensors or shards listed in
// model.safetensors.index.json. Shard names from the index never leave the folder.
#pragma once

#include "io/safetensors.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dt {

class WeightSet {
public:
    // Opens `dir`'s weights; throws dt::Error when there are none, or a file or the index is bad.
    static WeightSet open_folder(const std::string& dir);
    static WeightSet open_file(const std::string& path);

    std::vector<std::string> names() const;  // sorted
    bool contains(const std::string& name) const { return where_.count(name) != 0; }
    at::Tensor tensor(const std::string& name) const;
    const st::TensorInfo& info(const std::string& name) const;
    const std::string& file_of(const std::string& name) const;
    const std::vector<std::shared_ptr<st::File>>& files() const { return files_; }
    std::uint64_t total_file_bytes() const;

private:
    void add_file(std::shared_ptr<st::File> f);
    std::vector<std::shared_ptr<st::File>> files_;
    std::map<std::string, std::size_t> where_;  // tensor name -> index in files_
};

// True when `name` is a plain file name that stays inside its folder (no separators, not . or ..).
bool is_plain_file_name(const std::string& name);

}  // namespace dt
