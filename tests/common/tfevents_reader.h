// A reader of TensorBoard event files written for the tests from the format's specification (not
// from the engine's writer): TFRecord framing (uint64 length, masked CRC32C of the length, data,
// masked CRC32C of the data; little-endian; mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8) and the
// Event protobuf fields wall_time (1, fixed64 double), step (2, varint), file_version (3, bytes),
// summary (5, bytes) -> value (1, bytes) -> tag (1, bytes), simple_value (2, fixed32 float).
// Unknown fields are skipped by wire type, as a protobuf parser does. Any framing or CRC error
// makes read() return false with `error` set.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace tfevents {

struct Scalar {
    std::string tag;
    std::int64_t step = 0;
    double wall_time = 0;
    float value = 0;
};

struct File {
    std::string file_version;  // from the first event
    std::vector<Scalar> scalars;
    int records = 0;
    std::string error;
};

// Bit by bit (the engine uses a table): reflected polynomial 0x82F63B78.
inline std::uint32_t crc32c_bitwise(const unsigned char* p, std::size_t n) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

inline std::uint32_t masked(std::uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

struct Cursor {
    const unsigned char* p;
    const unsigned char* end;
    bool ok = true;
    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p >= end) return ok = false, 0;
            const unsigned char b = *p++;
            v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
            if (!(b & 0x80)) return v;
        }
        return ok = false, 0;
    }
    template <typename T>
    T fixed() {
        T v{};
        if (end - p < static_cast<std::ptrdiff_t>(sizeof(T))) return ok = false, v;
        std::memcpy(&v, p, sizeof(T));  // little-endian host (x86-64, aarch64)
        p += sizeof(T);
        return v;
    }
    std::string bytes() {
        const std::uint64_t n = varint();
        if (!ok || static_cast<std::uint64_t>(end - p) < n) return ok = false, std::string();
        std::string s(reinterpret_cast<const char*>(p), n);
        p += n;
        return s;
    }
    void skip(int wire) {
        if (wire == 0) varint();
        else if (wire == 1) fixed<std::uint64_t>();
        else if (wire == 2) bytes();
        else if (wire == 5) fixed<std::uint32_t>();
        else ok = false;
    }
};

inline Cursor cursor(const std::string& s) {
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    return Cursor{b, b + s.size()};
}

// Summary.Value messages of a Summary: their tag and simple_value.
inline bool read_summary(const std::string& summary, double wall, std::int64_t step, std::vector<Scalar>& out) {
    Cursor c = cursor(summary);
    while (c.ok && c.p < c.end) {
        const std::uint64_t key = c.varint();
        if (key == (1 << 3 | 2)) {
            const std::string bytes = c.bytes();
            Cursor v = cursor(bytes);
            Scalar s{{}, step, wall, 0};
            bool has_value = false;
            while (c.ok && v.ok && v.p < v.end) {
                const std::uint64_t k = v.varint();
                if (k == (1 << 3 | 2)) s.tag = v.bytes();
                else if (k == (2 << 3 | 5)) s.value = v.fixed<float>(), has_value = true;
                else v.skip(static_cast<int>(k & 7));
            }
            if (!v.ok) return false;
            if (has_value) out.push_back(s);
        } else {
            c.skip(static_cast<int>(key & 7));
        }
    }
    return c.ok;
}

inline File read(const std::string& path) {
    File f;
    std::ifstream in(path, std::ios::binary);
    if (!in) return f.error = "cannot open " + path, f;
    const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto* p = reinterpret_cast<const unsigned char*>(all.data());
    std::size_t at = 0;
    while (at < all.size()) {
        if (all.size() - at < 12) return f.error = "truncated record header", f;
        std::uint64_t len;
        std::uint32_t len_crc;
        std::memcpy(&len, p + at, 8);
        std::memcpy(&len_crc, p + at + 8, 4);
        if (masked(crc32c_bitwise(p + at, 8)) != len_crc) return f.error = "length CRC mismatch", f;
        if (all.size() - at - 12 < len + 4) return f.error = "truncated record data", f;
        const std::string data = all.substr(at + 12, len);
        std::uint32_t data_crc;
        std::memcpy(&data_crc, p + at + 12 + len, 4);
        if (masked(crc32c_bitwise(reinterpret_cast<const unsigned char*>(data.data()), data.size())) != data_crc)
            return f.error = "data CRC mismatch", f;
        at += 12 + len + 4;
        ++f.records;
        Cursor c = cursor(data);
        double wall = 0;
        std::int64_t step = 0;
        std::string summary;
        while (c.ok && c.p < c.end) {
            const std::uint64_t key = c.varint();
            if (key == (1 << 3 | 1)) wall = c.fixed<double>();
            else if (key == (2 << 3 | 0)) step = static_cast<std::int64_t>(c.varint());
            else if (key == (3 << 3 | 2)) f.file_version = c.bytes();
            else if (key == (5 << 3 | 2)) summary = c.bytes();
            else c.skip(static_cast<int>(key & 7));
        }
        if (!c.ok) return f.error = "malformed Event", f;
        if (!summary.empty() && !read_summary(summary, wall, step, f.scalars)) return f.error = "malformed Summary", f;
    }
    return f;
}

}  // namespace tfevents
