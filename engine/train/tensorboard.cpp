#include "train/tensorboard.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/limits.h"
#include "train/events.h"
#include "train/run_folder.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace dt::tensorboard {
namespace {

std::array<std::uint32_t, 256> crc_table() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli
        t[i] = c;
    }
    return t;
}

template <typename T>
void put_le(std::string& out, T v) {
    for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7F) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, int field, int wire) { put_varint(out, static_cast<std::uint64_t>(field << 3 | wire)); }

void put_bytes(std::string& out, int field, const std::string& bytes) {
    put_key(out, field, 2);
    put_varint(out, bytes.size());
    out += bytes;
}

void put_double(std::string& out, int field, double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    put_key(out, field, 1);
    put_le(out, bits);
}

// An Event with wall_time, step and one of file_version / summary.
std::string event(double wall_time, std::int64_t step, const std::string& file_version, const std::string& summary) {
    std::string e;
    put_double(e, 1, wall_time);
    put_key(e, 2, 0);
    put_varint(e, static_cast<std::uint64_t>(step));
    if (!file_version.empty()) put_bytes(e, 3, file_version);
    if (!summary.empty()) put_bytes(e, 5, summary);
    return e;
}

// A Summary.Value with a tag and a simple_value.
std::string scalar_value(const std::string& tag, double v) {
    std::string value;
    put_bytes(value, 1, tag);
    const float f = static_cast<float>(v);
    std::uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    put_key(value, 2, 5);
    put_le(value, bits);
    std::string summary;
    put_bytes(summary, 1, value);
    return summary;
}

double run_start(const std::string& run_dir) {
    std::error_code ec;
    const auto t = std::filesystem::last_write_time(run_folder::spec_path(run_dir), ec);
    if (ec) return 0;
    const auto sys = std::chrono::time_point_cast<std::chrono::seconds>(t - decltype(t)::clock::now() + std::chrono::system_clock::now());
    return static_cast<double>(sys.time_since_epoch().count());
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t n) {
    static const auto table = crc_table();
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

std::uint32_t masked_crc32c(const void* data, std::size_t n) {
    const std::uint32_t c = crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string record(const std::string& data) {
    std::string header;
    put_le(header, static_cast<std::uint64_t>(data.size()));
    std::string out = header;
    put_le(out, masked_crc32c(header.data(), header.size()));
    out += data;
    put_le(out, masked_crc32c(data.data(), data.size()));
    return out;
}

std::string event_file_path(const std::string& run_dir) {
    return run_dir + "/events.out.tfevents." + std::to_string(static_cast<std::int64_t>(run_start(run_dir))) + ".deltatune";
}

std::string export_run(const std::string& run_dir) {
    std::ifstream in(run_folder::events_path(run_dir));
    if (!in) throw Error("the folder holds no training run (no events.jsonl)", run_dir, "pick a run folder made by deltatune train or the workbench");
    const double start = run_start(run_dir);
    std::string out = record(event(start, 0, "brain.Event:2", ""));
    double wall = start;
    std::string line;
    EventLine ev;
    for (std::size_t lineno = 1; limits::getline_limited(in, line, run_folder::events_path(run_dir), lineno); ++lineno) {
        // a torn or edited line: skipped, as the workbench's history skips it
        if (!parse_event_line(line.data(), line.data() + line.size(), ev)) continue;
        if (ev.kind == "step") {
            const StepEvent& e = ev.step;
            if (std::isfinite(e.elapsed_s)) wall = start + e.elapsed_s;
            if (e.skipped) continue;
            for (const auto& [tag, v] : {std::pair<const char*, double>{"train/loss", e.loss}, {"train/lr", e.lr},
                                         {"train/grad_norm", e.grad_norm}, {"train/tokens_per_s", e.tokens_per_s}})
                if (std::isfinite(v)) out += record(event(wall, e.step, "", scalar_value(tag, v)));
        } else if (ev.kind == "eval") {
            for (const auto& [k, v] : ev.eval.metrics)
                if (std::isfinite(v)) out += record(event(wall, ev.eval.step, "", scalar_value("eval/" + k, v)));
        }
    }
    const std::string path = event_file_path(run_dir);
    write_file_atomic(path, out);
    return path;
}

}  // namespace dt::tensorboard
