#include "io/json_util.h"

#include "core/error.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <vector>

namespace dt::limits {

std::string describe(const char* name, std::uint64_t value) {
    return std::string("limits.") + name + " = " + std::to_string(value) + ", see docs/limits.md";
}

bool getline_limited(std::istream& in, std::string& line, const std::string& where, std::size_t lineno) {
    line.clear();
    std::streambuf* sb = in.rdbuf();
    if (!sb || !in.good()) {
        in.setstate(std::ios::failbit);
        return false;
    }
    for (bool any = false;; any = true) {
        const int c = sb->sbumpc();
        if (c == std::char_traits<char>::eof()) {
            in.setstate(any ? std::ios::eofbit : std::ios::eofbit | std::ios::failbit);
            return any;
        }
        if (c == '\n') return true;
        if (line.size() >= kLineBytes)
            throw Error("line " + std::to_string(lineno) + " is longer than " + std::to_string(kLineBytes) + " bytes (" +
                            describe("line_bytes", kLineBytes) + ")",
                        where, "split the line, or check that this is a text file");
        line.push_back(static_cast<char>(c));
    }
}

}  // namespace dt::limits

namespace dt::json {

std::string read_text_file(const std::string& path, std::uint64_t max_bytes) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw Error("file not found", path);
    if (S_ISDIR(st.st_mode)) throw Error("is a folder, expected a file", path);
    if (!S_ISREG(st.st_mode)) throw Error("is not a regular file (a device or a pipe)", path, "name a file");
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
        throw Error("file is too large (" + std::to_string(st.st_size) + " bytes)", path,
                    max_bytes == limits::kJsonFileBytes ? limits::describe("json_file_bytes", max_bytes) : std::string());
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open file for reading", path, "check its permissions");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string exception_text(const std::exception& e) {
    const std::string msg = e.what();
    const auto p = msg.find("] ");
    return p == std::string::npos ? msg : msg.substr(p + 2);
}

nlohmann::json parse_strict(const std::string& text, const std::string& where) {
    std::vector<std::set<std::string>> keys;
    std::string duplicate;
    auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if ((ev == E::object_start || ev == E::array_start) && static_cast<std::size_t>(depth) >= limits::kJsonDepth)
            throw Error("JSON nested deeper than " + std::to_string(limits::kJsonDepth) + " levels", where,
                        limits::describe("json_depth", limits::kJsonDepth));
        if (ev == E::object_start) {
            keys.emplace_back();
        } else if (ev == E::object_end) {
            if (!keys.empty()) keys.pop_back();
        } else if (ev == E::key && !keys.empty()) {
            const auto& k = parsed.get_ref<const std::string&>();
            if (!keys.back().insert(k).second && duplicate.empty()) duplicate = k;
        }
        return true;
    };
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text, cb);
    } catch (const nlohmann::json::exception& e) {
        // A syntax error, or a number too large for a double (out_of_range 406: '1e400').
        throw Error("invalid JSON: " + exception_text(e), where);
    }
    if (!duplicate.empty()) throw Error("duplicate key '" + duplicate + "'", where);
    return j;
}

nlohmann::json load_file(const std::string& path) { return parse_strict(read_text_file(path), path); }

static const nlohmann::json& require(const nlohmann::json& obj, const std::string& field, const std::string& where) {
    if (!obj.is_object()) throw Error("expected a JSON object", where);
    auto it = obj.find(field);
    if (it == obj.end()) throw Error("missing field '" + field + "'", where);
    return *it;
}

std::int64_t get_int(const nlohmann::json& obj, const std::string& field, const std::string& where) {
    const auto& v = require(obj, field, where);
    if (!v.is_number_integer()) throw Error("field '" + field + "' must be an integer, got " + v.dump(), where);
    return v.get<std::int64_t>();
}

std::int64_t get_int_or(const nlohmann::json& obj, const std::string& field, std::int64_t fallback,
                        const std::string& where) {
    if (!obj.contains(field) || obj.at(field).is_null()) return fallback;
    return get_int(obj, field, where);
}

double get_number_or(const nlohmann::json& obj, const std::string& field, double fallback, const std::string& where) {
    if (!obj.contains(field) || obj.at(field).is_null()) return fallback;
    const auto& v = obj.at(field);
    if (!v.is_number()) throw Error("field '" + field + "' must be a number, got " + v.dump(), where);
    return v.get<double>();
}

std::string get_string(const nlohmann::json& obj, const std::string& field, const std::string& where) {
    const auto& v = require(obj, field, where);
    if (!v.is_string()) throw Error("field '" + field + "' must be a string, got " + v.dump(), where);
    return v.get<std::string>();
}

std::string get_string_or(const nlohmann::json& obj, const std::string& field, const std::string& fallback,
                          const std::string& where) {
    if (!obj.contains(field) || obj.at(field).is_null()) return fallback;
    return get_string(obj, field, where);
}

}  // namespace dt::json
