// main() for a test executable: runs every registered class. Arguments after the program name go
// to QTest (e.g. -v2, or a test function name); DT_TEST_CLASS=Name runs one class only (as CTest
// does); DT_EXPECT_CLASSES=A;B checks that exactly those classes are registered.
#include "test_registry.h"

#include <QApplication>
#include <QSettings>
#include <QTemporaryDir>
#include <QTest>

#include <cstdio>

namespace dttest {

std::vector<std::pair<const char*, Factory>>& registry() {
    static std::vector<std::pair<const char*, Factory>> r;
    return r;
}

QString dataDir() { return QStringLiteral(DT_TEST_DATA_DIR); }
QString cliPath() { return QStringLiteral(DT_CLI_PATH); }

}  // namespace dttest

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    // The workbench's settings (recent models, window layout) go to a throw-away folder, not ~/.config.
    QTemporaryDir settings;
    QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, settings.path());
    QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, settings.path());
    // Runs, tasks and experiments the workbench starts without an explicit folder go there too.
    QTemporaryDir work;
    qputenv("DELTATUNE_WORK_DIR", work.path().toUtf8());
    // CTest runs one class per entry (tests/CMakeLists.txt lists them with their labels); this check
    // fails when a class is registered here but missing from that list, so none is silently skipped.
    const QByteArray expected = qgetenv("DT_EXPECT_CLASSES");
    if (!expected.isEmpty()) {
        const QList<QByteArray> listed = expected.split(';');
        int missing = 0;
        for (auto& [name, make] : dttest::registry())
            if (!listed.contains(QByteArray(name))) std::fprintf(stderr, "test class %s is not listed in tests/CMakeLists.txt\n", name), ++missing;
        for (const QByteArray& name : listed) {
            bool found = false;
            for (auto& entry : dttest::registry()) found |= name == entry.first;
            if (!found) std::fprintf(stderr, "tests/CMakeLists.txt lists %s, which is not registered\n", name.constData()), ++missing;
        }
        return missing == 0 ? 0 : 1;
    }
    const QByteArray only = qgetenv("DT_TEST_CLASS");
    bool ran = false;
    int failures = 0;
    for (auto& [name, make] : dttest::registry()) {
        if (!only.isEmpty() && only != name) continue;
        auto obj = make();
        failures += QTest::qExec(obj.get(), argc, argv);
        ran = true;
    }
    if (!ran) {
        std::fprintf(stderr, "no test class named %s\n", only.constData());
        return 1;
    }
    return failures == 0 ? 0 : 1;
}
