// dt::Error: the one error type of the engine. It says what went wrong, where (file, tensor or
// field, line) and how to get out of it. The CLI prints what() and exits 2; the GUI shows it.
#pragma once

#include <stdexcept>
#include <string>

namespace dt {

class Error : public std::runtime_error {
public:
    Error(std::string what, std::string where = {}, std::string hint = {});

    const std::string& message() const { return message_; }
    const std::string& where() const { return where_; }
    const std::string& hint() const { return hint_; }

    // Returns a copy whose location is prefixed by `outer` (e.g. the file around a field).
    Error within(const std::string& outer) const;

private:
    static std::string compose(const std::string& what, const std::string& where, const std::string& hint);
    std::string message_;
    std::string where_;
    std::string hint_;
};

}  // namespace dt
