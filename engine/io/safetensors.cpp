#include "io/safetensors.h"

#include "core/error.h"
#include "core/torch_compat.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "io/limits.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <numeric>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace dt::st {

class Mapping {
public:
    Mapping(void* p, std::size_t n) : ptr(p), size(n) {}
    ~Mapping() {
        if (ptr && ptr != MAP_FAILED) ::munmap(ptr, size);
    }
    void* ptr;
    std::size_t size;
};

namespace {

struct DtypeEntry {
    const char* name;
    std::size_t size;
};
constexpr DtypeEntry kDtypes[] = {
    {"F64", 8}, {"F32", 4},  {"F16", 2},     {"BF16", 2},    {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
    {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8},
};

std::string tensor_where(const std::string& path, const std::string& name) { return path + ": tensor '" + name + "'"; }

}  // namespace

std::size_t dtype_size(const std::string& dtype) {
    for (const auto& d : kDtypes)
        if (dtype == d.name) return d.size;
    return 0;
}

c10::ScalarType to_scalar_type(const std::string& dtype, const std::string& where) {
    using c10::ScalarType;
    if (dtype == "F64") return ScalarType::Double;
    if (dtype == "F32") return ScalarType::Float;
    if (dtype == "F16") return ScalarType::Half;
    if (dtype == "BF16") return ScalarType::BFloat16;
    if (dtype == "I64") return ScalarType::Long;
    if (dtype == "I32") return ScalarType::Int;
    if (dtype == "I16") return ScalarType::Short;
    if (dtype == "I8") return ScalarType::Char;
    if (dtype == "U8") return ScalarType::Byte;
    if (dtype == "BOOL") return ScalarType::Bool;
#if DT_HAS_FLOAT8
    if (dtype == "F8_E4M3") return ScalarType::Float8_e4m3fn;
    if (dtype == "F8_E5M2") return ScalarType::Float8_e5m2;
#endif
#if DT_HAS_UINT_WIDE
    if (dtype == "U16") return ScalarType::UInt16;
    if (dtype == "U32") return ScalarType::UInt32;
    if (dtype == "U64") return ScalarType::UInt64;
#endif
    if (dtype_size(dtype) != 0)
        throw Error("dtype " + dtype + " is not supported by this LibTorch (" + compat::torch_version_string() + ")",
                    where, "convert the checkpoint to F32, F16 or BF16");
    throw Error("unknown dtype '" + dtype + "'", where);
}

std::string from_scalar_type(c10::ScalarType t) {
    using c10::ScalarType;
    switch (t) {
        case ScalarType::Double: return "F64";
        case ScalarType::Float: return "F32";
        case ScalarType::Half: return "F16";
        case ScalarType::BFloat16: return "BF16";
        case ScalarType::Long: return "I64";
        case ScalarType::Int: return "I32";
        case ScalarType::Short: return "I16";
        case ScalarType::Char: return "I8";
        case ScalarType::Byte: return "U8";
        case ScalarType::Bool: return "BOOL";
#if DT_HAS_FLOAT8
        case ScalarType::Float8_e4m3fn: return "F8_E4M3";
        case ScalarType::Float8_e5m2: return "F8_E5M2";
#endif
        default: throw Error(std::string("cannot store scalar type ") + c10::toString(t) + " in safetensors");
    }
}

const TensorInfo& File::info(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw Error("no tensor named '" + name + "'", path_);
    return tensors_[it->second];
}

std::shared_ptr<File> File::open(const std::string& path) {
    std::shared_ptr<File> f(new File());
    f->path_ = path;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(std::string("cannot open: ") + std::strerror(errno), path);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error("not a regular file", path);
    }
    const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    f->file_size_ = size;
    if (size < 8) {
        ::close(fd);
        throw Error("file is " + std::to_string(size) + " bytes, too short for a safetensors header", path,
                    "the file is truncated or not a safetensors file");
    }
    // MAP_PRIVATE + PROT_WRITE: tensors over the mapping are copy-on-write, so in-place updates of
    // loaded weights never reach the file.
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) throw Error(std::string("mmap failed: ") + std::strerror(errno), path);
    f->map_ = std::make_shared<Mapping>(p, size);
    const auto* bytes = static_cast<const unsigned char*>(p);

    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
    if (n > limits::kSafetensorsHeaderBytes)
        throw Error("header size " + std::to_string(n) + " exceeds the limit of " + std::to_string(limits::kSafetensorsHeaderBytes) + " bytes (" +
                        limits::describe("safetensors_header_bytes", limits::kSafetensorsHeaderBytes) + ")",
                    path, "the file is corrupt or not a safetensors file");
    if (n > size - 8)
        throw Error("header size " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) +
                        " bytes)", path, "the file is truncated");
    if (n == 0 || bytes[8] != '{')
        throw Error("header does not start with '{'", path, "the file is corrupt or not a safetensors file");
    std::string header(reinterpret_cast<const char*>(bytes + 8), n);
    nlohmann::json j = json::parse_strict(header, path + ": header");
    if (!j.is_object()) throw Error("header is not a JSON object", path);
    if (j.size() > limits::kTensorsPerFile + 1)
        throw Error("header lists " + std::to_string(j.size()) + " tensors (" + limits::describe("tensors_per_file", limits::kTensorsPerFile) + ")", path,
                    "split the weights into shards");
    f->data_start_ = 8 + n;
    const std::uint64_t buffer_len = size - 8 - n;

    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& name = it.key();
        const auto& v = it.value();
        if (name == "__metadata__") {
            if (!v.is_object()) throw Error("__metadata__ must be an object of strings", path);
            for (auto m = v.begin(); m != v.end(); ++m) {
                if (!m.value().is_string())
                    throw Error("__metadata__ value of '" + m.key() + "' must be a string, got " + m.value().dump(),
                                path);
                f->metadata_[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        const std::string where = tensor_where(path, name);
        if (!v.is_object()) throw Error("entry must be an object", where);
        TensorInfo info;
        info.name = name;
        if (!v.contains("dtype") || !v["dtype"].is_string()) throw Error("missing or non-string 'dtype'", where);
        info.dtype = v["dtype"].get<std::string>();
        const std::size_t esize = dtype_size(info.dtype);
        if (esize == 0) throw Error("unknown dtype '" + info.dtype + "'", where);
        if (!v.contains("shape") || !v["shape"].is_array()) throw Error("missing or non-array 'shape'", where);
        if (v["shape"].size() > limits::kTensorRank)
            throw Error("shape has " + std::to_string(v["shape"].size()) + " dimensions (" + limits::describe("tensor_rank", limits::kTensorRank) + ")",
                        where);
        std::uint64_t numel = 1;
        bool overflow = false;
        for (const auto& d : v["shape"]) {
            if (!d.is_number_unsigned()) throw Error("shape entries must be non-negative integers", where);
            const std::uint64_t dim = d.get<std::uint64_t>();
            if (dim > static_cast<std::uint64_t>(INT64_MAX)) overflow = true;
            overflow |= __builtin_mul_overflow(numel, dim, &numel);
            info.shape.push_back(static_cast<std::int64_t>(dim));
        }
        std::uint64_t nbytes = 0;
        overflow |= __builtin_mul_overflow(numel, static_cast<std::uint64_t>(esize), &nbytes);
        if (overflow) throw Error("shape x dtype size overflows", where);
        const auto& off = v.contains("data_offsets") ? v["data_offsets"] : nlohmann::json();
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            throw Error("'data_offsets' must be two non-negative integers", where);
        info.begin = off[0].get<std::uint64_t>();
        info.end = off[1].get<std::uint64_t>();
        if (info.end < info.begin) throw Error("data_offsets end before they begin", where);
        if (info.end - info.begin != nbytes)
            throw Error("data_offsets span " + std::to_string(info.end - info.begin) + " bytes but shape x dtype needs " +
                            std::to_string(nbytes), where, "the header does not match the data");
        f->tensors_.push_back(std::move(info));
    }
    std::sort(f->tensors_.begin(), f->tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t expect = 0;
    for (const auto& t : f->tensors_) {
        if (t.begin != expect)
            throw Error(t.begin < expect ? "data overlaps the previous tensor" : "gap in the data before this tensor",
                        tensor_where(path, t.name), "offsets must be contiguous from 0");
        expect = t.end;
    }
    if (expect != buffer_len)
        throw Error("tensors cover " + std::to_string(expect) + " bytes but the data buffer has " +
                        std::to_string(buffer_len), path,
                    expect > buffer_len ? "the file is truncated" : "the file has trailing bytes no tensor describes");
    for (std::size_t i = 0; i < f->tensors_.size(); ++i) f->index_[f->tensors_[i].name] = i;
    return f;
}

bool File::is_zero_copy(const std::string& name) const {
    const auto& t = info(name);
    return (data_start_ + t.begin) % dtype_size(t.dtype) == 0;
}

at::Tensor File::tensor(const std::string& name) const {
    const auto& t = info(name);
    const auto type = to_scalar_type(t.dtype, tensor_where(path_, name));
    auto* base = static_cast<unsigned char*>(map_->ptr) + data_start_ + t.begin;
    const auto opts = at::TensorOptions().dtype(type).device(at::kCPU);
    if (is_zero_copy(name)) {
        auto keep = map_;
        return at::from_blob(base, t.shape, [keep](void*) {}, opts);
    }
    at::Tensor out = at::empty(t.shape, opts);
    std::memcpy(out.data_ptr(), base, t.end - t.begin);
    return out;
}

std::string build_header(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                         std::vector<std::size_t>* order_out) {
    std::vector<std::size_t> order(tensors.size());
    std::iota(order.begin(), order.end(), 0);
    std::set<std::string> names;
    for (const auto& [name, t] : tensors) {
        if (name == "__metadata__") throw Error("'__metadata__' cannot be a tensor name");
        if (!names.insert(name).second) throw Error("duplicate tensor name '" + name + "'");
        if (!t.defined()) throw Error("tensor '" + name + "' is undefined");
    }
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        auto ea = tensors[a].second.element_size(), eb = tensors[b].second.element_size();
        return ea != eb ? ea > eb : tensors[a].first < tensors[b].first;
    });
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    if (!metadata.empty()) h["__metadata__"] = metadata;
    std::uint64_t offset = 0;
    for (auto i : order) {
        const auto& [name, t] = tensors[i];
        const std::uint64_t nbytes = static_cast<std::uint64_t>(t.numel()) * t.element_size();
        h[name] = {{"dtype", from_scalar_type(t.scalar_type())},
                   {"shape", t.sizes().vec()},
                   {"data_offsets", {offset, offset + nbytes}}};
        offset += nbytes;
    }
    if (order_out) *order_out = order;
    return h.dump();
}

void save(const std::string& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
    std::vector<std::size_t> order;
    std::string header;
    try {
        header = build_header(tensors, metadata, &order);
    } catch (const Error& e) {
        throw e.within(path);
    }
    header.append((8 - header.size() % 8) % 8, ' ');
    unsigned char len[8];
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    AtomicFile out(path);
    out.write(len, 8);
    out.write(header);
    for (auto i : order) {
        at::Tensor t = tensors[i].second.detach().to(at::kCPU).contiguous();
        out.write(t.data_ptr(), static_cast<std::size_t>(t.numel()) * t.element_size());
    }
    out.commit();
}

}  // namespace dt::st
