// Atomic file output: write to a temporary sibling, fsync, rename over the target, fsync the
// folder. A crash leaves the old file or the new one, never half of either.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace dt {

class AtomicFile {
public:
    explicit AtomicFile(std::string path);  // creates the temporary sibling; throws dt::Error
    ~AtomicFile();                          // removes the temporary unless commit() succeeded
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, std::size_t n);
    void write(const std::string& s) { write(s.data(), s.size()); }
    void commit();

    const std::string& temp_path() const { return tmp_; }

private:
    std::string path_;
    std::string tmp_;
    int fd_ = -1;
    bool committed_ = false;
};

// Convenience: atomically replace `path` with `content`.
void write_file_atomic(const std::string& path, const std::string& content);

// Writes a folder as a whole: `fill` writes into a fresh staging sibling, which then takes the place
// of `dir` (an existing `dir` is moved aside and deleted only after the swap). On any error the
// staging folder is removed and `dir` is as it was. What a write killed part-way left (its staging
// folder, or the previous `dir` moved aside) is cleaned up, or put back, by the next write of `dir`.
void write_folder_atomic(const std::string& dir, const std::function<void(const std::string& staging)>& fill);

// Line-oriented logs (events.jsonl, an experiment's cells.jsonl and results.jsonl) are appended to,
// and a process killed mid-write can leave a last line without its newline. end_torn_line() gives
// such a file its newline, so the next line starts on a line of its own and only the torn one is
// lost (readers skip it); append_line() does that, then appends `line` + "\n" in one write(2).
// Both throw dt::Error naming the file.
void end_torn_line(const std::string& path);
void append_line(const std::string& path, const std::string& line);

// True when something exists at `path`.
bool path_exists(const std::string& path);
// Creates `dir` and its missing parents; throws dt::Error naming the folder that could not be made.
void make_dirs(const std::string& dir);

// Removes a folder and the plain files in it (no recursion); missing folders are fine.
void remove_flat_folder(const std::string& dir);
// The names in a folder (no "." or ".."), unsorted; empty when it cannot be read.
std::vector<std::string> list_folder(const std::string& dir);

}  // namespace dt
