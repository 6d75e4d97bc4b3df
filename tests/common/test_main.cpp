// main() for a test executable: runs every registered class. Arguments after the program name go
// to QTest (e.g. -v2, or a test function name); DT_TEST_CLASS=Name runs one class only.
#include "test_registry.h"

#include <QApplication>
#include <QSettings>
#include <QTemporaryDir>
#include <QTest>

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
    const QByteArray only = qgetenv("DT_TEST_CLASS");
    int failures = 0;
    for (auto& [name, make] : dttest::registry()) {
        if (!only.isEmpty() && only != name) continue;
        auto obj = make();
        failures += QTest::qExec(obj.get(), argc, argv);
    }
    return failures == 0 ? 0 : 1;
}
