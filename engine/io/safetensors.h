// safetensors files: a validating, mmap-backed reader (zero-copy tensors where the data is aligned)
// and an atomic writer. Format: u64 LE header size N, N bytes of JSON header, then the data buffer.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dt::st {


struct TensorInfo {
    std::string name;
    std::string dtype;  // as written in the file: "F32", "BF16", ...
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0;  // offsets into the data buffer
    std::uint64_t end = 0;
};

// Element size in bytes of a safetensors dtype name, or 0 if the name is unknown.
std::size_t dtype_size(const std::string& dtype);
// torch scalar type for a dtype name; throws dt::Error (naming `where`) when unsupported.
c10::ScalarType to_scalar_type(const std::string& dtype, const std::string& where);
std::string from_scalar_type(c10::ScalarType t);

class Mapping;

class File {
public:
    // Maps and validates the file. Every rejection throws dt::Error naming the file and the tensor or field.
    static std::shared_ptr<File> open(const std::string& path);

    const std::string& path() const { return path_; }
    const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in buffer order
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    bool contains(const std::string& name) const { return index_.count(name) != 0; }
    const TensorInfo& info(const std::string& name) const;

    // A CPU tensor over the mapped bytes when they are aligned for the dtype (copy-on-write, so the
    // file is never modified); a copy otherwise.
    at::Tensor tensor(const std::string& name) const;
    bool is_zero_copy(const std::string& name) const;
    std::uint64_t file_size() const { return file_size_; }

private:
    File() = default;
    std::string path_;
    std::shared_ptr<Mapping> map_;
    std::uint64_t data_start_ = 0;
    std::uint64_t file_size_ = 0;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, std::size_t> index_;
    std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes tensors (any device; copied to CPU, contiguous) atomically. Names must be unique.
// Tensors are laid out by decreasing element size, then by name, so every tensor is aligned.
void save(const std::string& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata = {});

// The header a save() would write, without padding (for tests and tools).
std::string build_header(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                         std::vector<std::size_t>* order = nullptr);

}  // namespace dt::st
