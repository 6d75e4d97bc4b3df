// Formatting of dt::Error: "<where>: <what> (hint: ...)" on one line.
#include "core/error.h"

namespace dt {

Error::Error(std::string what, std::string where, std::string hint)
    : std::runtime_error(compose(what, where, hint)),
      message_(std::move(what)),
      where_(std::move(where)),
      hint_(std::move(hint)) {}

std::string Error::compose(const std::string& what, const std::string& where, const std::string& hint) {
    std::string s;
    if (!where.empty()) s += where + ": ";
    s += what;
    if (!hint.empty()) s += " (" + hint + ")";
    return s;
}

Error Error::within(const std::string& outer) const {
    if (outer.empty()) return *this;
    return Error(message_, where_.empty() ? outer : outer + ": " + where_, hint_);
}

}  // namespace dt
