#include "io/atomic_file.h"

#include "core/error.h"

#include <cerrno>
#include <cstdio>
#include <dirent.h>
#include <sys/stat.h>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <signal.h>
#include <unistd.h>

namespace dt {

static std::string parent_dir(const std::string& path) {
    auto p = path.find_last_of('/');
    if (p == std::string::npos) return ".";
    if (p == 0) return "/";
    return path.substr(0, p);
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
    std::random_device rd;
    for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
        tmp_ = path_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000);
        fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd_ < 0 && errno != EEXIST) break;
    }
    if (fd_ < 0)
        throw Error(std::string("cannot create output file: ") + std::strerror(errno), path_,
                    "check that the folder exists and is writable");
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::write(fd_, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            throw Error(std::string("write failed: ") + std::strerror(errno), path_, "is the disk full?");
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

void AtomicFile::commit() {
    if (::fsync(fd_) != 0) throw Error(std::string("fsync failed: ") + std::strerror(errno), path_);
    ::close(fd_);
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
        throw Error(std::string("cannot rename temporary file into place: ") + std::strerror(errno), path_);
    committed_ = true;
    int dfd = ::open(parent_dir(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

std::vector<std::string> list_folder(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (name != "." && name != "..") names.push_back(name);
        }
        ::closedir(d);
    }
    return names;
}

void remove_flat_folder(const std::string& dir) {
    for (const auto& name : list_folder(dir)) ::unlink((dir + "/" + name).c_str());
    ::rmdir(dir.c_str());
}

namespace {

// Leftovers of a folder write killed part-way (SIGKILL, a crash, power loss): the staging folder
// `DIR.tmp-PID` or the previous version moved aside as `DIR.old-PID`, of a process that no longer
// runs. The previous version comes back when the new one had not arrived; staging goes.
void clean_stale_staging(const std::string& dir) {
    const auto slash = dir.find_last_of('/');
    const std::string parent = slash == std::string::npos ? "." : dir.substr(0, slash);
    const std::string base = slash == std::string::npos ? dir : dir.substr(slash + 1);
    if (base.empty()) return;
    for (const auto& name : list_folder(parent)) {
        for (const char* suffix : {".tmp-", ".old-"}) {
            const std::string prefix = base + suffix;
            if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
            const std::string digits = name.substr(prefix.size());
            if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
            const pid_t pid = static_cast<pid_t>(std::stol(digits));
            if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno == EPERM) continue;  // still running
            const std::string path = parent + "/" + name;
            struct stat st {};
            if (suffix[1] == 'o' && ::stat(dir.c_str(), &st) != 0) std::rename(path.c_str(), dir.c_str());
            else remove_flat_folder(path);
        }
    }
}

}  // namespace

void write_folder_atomic(const std::string& dir, const std::function<void(const std::string& staging)>& fill) {
    clean_stale_staging(dir);
    const std::string tmp = dir + ".tmp-" + std::to_string(::getpid());
    remove_flat_folder(tmp);
    if (::mkdir(tmp.c_str(), 0755) != 0) throw Error(std::string("cannot create folder: ") + std::strerror(errno), tmp);
    try {
        fill(tmp);
    } catch (...) {
        remove_flat_folder(tmp);
        throw;
    }
    struct stat st {};
    const bool existed = ::stat(dir.c_str(), &st) == 0;
    const std::string old = dir + ".old-" + std::to_string(::getpid());
    if (existed && std::rename(dir.c_str(), old.c_str()) != 0) {
        remove_flat_folder(tmp);
        throw Error(std::string("cannot replace the existing folder: ") + std::strerror(errno), dir);
    }
    if (std::rename(tmp.c_str(), dir.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        if (existed) std::rename(old.c_str(), dir.c_str());
        remove_flat_folder(tmp);
        throw Error("cannot move the folder into place: " + why, dir);
    }
    if (existed) remove_flat_folder(old);
}

void write_file_atomic(const std::string& path, const std::string& content) {
    AtomicFile f(path);
    f.write(content);
    f.commit();
}

namespace {

// Writes all of `s` to `fd` (retrying short writes), or throws naming `path`.
void write_all(int fd, const std::string& s, const std::string& path) {
    const char* p = s.data();
    std::size_t n = s.size();
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            throw Error(std::string("write failed: ") + std::strerror(errno), path, "is the disk full?");
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

// Opens `path` for appending (created if missing) and returns whether its last byte is not a
// newline, i.e. a write was cut short there.
int open_for_append(const std::string& path, bool& torn) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(std::string("cannot write: ") + std::strerror(errno), path);
    torn = false;
    const off_t size = ::lseek(fd, 0, SEEK_END);
    char last = '\n';
    if (size > 0 && ::pread(fd, &last, 1, size - 1) == 1) torn = last != '\n';
    return fd;
}

}  // namespace

void end_torn_line(const std::string& path) {
    bool torn = false;
    const int fd = open_for_append(path, torn);
    try {
        if (torn) write_all(fd, "\n", path);
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
}

void append_line(const std::string& path, const std::string& line) {
    bool torn = false;
    const int fd = open_for_append(path, torn);
    try {
        write_all(fd, (torn ? "\n" : "") + line + "\n", path);
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
}

bool path_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

void make_dirs(const std::string& dir) {
    for (std::size_t i = 1; i <= dir.size(); ++i)
        if (i == dir.size() || dir[i] == '/') {
            const std::string part = dir.substr(0, i);
            if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) throw Error(std::string("cannot create folder: ") + std::strerror(errno), part);
        }
}

}  // namespace dt
