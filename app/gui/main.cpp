// deltatune-workbench: the desktop workbench. Opens the model given on the command line, or the
// built-in tiny BERT. `--screenshot FILE` renders the window to a PNG and exits (for checks).
#include "main_window.h"

#include "core/threads.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QPixmap>
#include <QTimer>

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("DeltaTune"));
    QApplication::setApplicationVersion(QStringLiteral("0.1.0"));
    QApplication::setWindowIcon(QIcon(QStringLiteral(":/deltatune/icons/deltatune.svg")));
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("DeltaTune workbench for delta tuning"));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(QStringLiteral("model"), QStringLiteral("Model folder or built-in name (default: the demo model)"));
    QCommandLineOption shot(QStringLiteral("screenshot"), QStringLiteral("Save a PNG of the window and exit."),
                            QStringLiteral("file"));
    parser.addOption(shot);
    parser.process(app);
    try {
        dt::configure_threads();
    } catch (const std::exception& e) {
        qWarning("%s", e.what());
    }
    MainWindow w;
    const QStringList pos = parser.positionalArguments();
    // Default: the pretrained demo model (resources/demo), else the random built-in tiny BERT.
    const QString demo = MainWindow::demoModel();
    w.openModel(!pos.isEmpty() ? pos.first() : !demo.isEmpty() ? demo : QStringLiteral("tiny-bert"));
    w.show();
    if (parser.isSet(shot)) {
        const QString file = parser.value(shot);
        QTimer::singleShot(300, &w, [&w, file] {
            const bool ok = w.grab().save(file);
            QApplication::exit(ok ? 0 : 1);
        });
    }
    return app.exec();
}
