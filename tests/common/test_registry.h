// A tiny registry so one executable per area can hold several QObject test classes.
#pragma once

#include <QObject>

#include <functional>
#include <memory>
#include <vector>

namespace dttest {

using Factory = std::function<std::unique_ptr<QObject>()>;
std::vector<std::pair<const char*, Factory>>& registry();

struct Registrar {
    Registrar(const char* name, Factory f) { registry().emplace_back(name, std::move(f)); }
};

// Directory of tests/data in the source tree.
QString dataDir();
// The `deltatune` CLI executable built next to the tests.
QString cliPath();

}  // namespace dttest

#define DT_REGISTER_TEST(Class) \
    static dttest::Registrar dt_registrar_##Class(#Class, [] { return std::unique_ptr<QObject>(new Class); })
