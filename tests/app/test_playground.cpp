// The Playground and Scale tabs as a user drives them: a run's validation examples offered as the
// model sees them, the base model's answer beside the run's delta's (label probabilities for a
// label-word task, streamed text for T5), Stop, refusals that say why; the power-of-scale run over
// the demo's two BERTs with its curves, plot and CSV.
#include "test_registry.h"
#include "test_util.h"

#include "playground_tab.h"
#include "scale_tab.h"
#include "workbench.h"

#include <nlohmann/json.hpp>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

namespace {

QString demoPath(const QString& rel) { return Workbench::demoDir() + QLatin1Char('/') + rel; }

// A LoRA run on a demo task through the CLI, as the Training tab leaves one.
QString trainDemoRun(const QTemporaryDir& dir, const QString& model, const QString& task, int steps) {
    const nlohmann::json spec = {{"model", demoPath(QStringLiteral("models/") + model).toStdString()},
                                 {"task", demoPath(QStringLiteral("tasks/") + task + QStringLiteral("/task.json")).toStdString()},
                                 {"delta", {{"method", "lora"}, {"r", 8}}},
                                 {"training", {{"max_steps", steps}, {"batch_size", 16}, {"lr", 0.01}, {"eval_every", steps}}}};
    dttest::writeBytes(dir.filePath(task + QStringLiteral(".json")), QByteArray::fromStdString(spec.dump()));
    const QString out = dir.filePath(QStringLiteral("run-") + task);
    const auto r = dttest::runCli({QStringLiteral("train"), QStringLiteral("--spec"), dir.filePath(task + QStringLiteral(".json")),
                                   QStringLiteral("--out"), out});
    if (r.code != 0) qWarning("%s", qPrintable(r.err));
    return r.code == 0 ? out : QString();
}

}  // namespace

class TestPlayground : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void baseAndTunedSideBySideOnALabelWordTask() {
        QTemporaryDir dir;
        const QString run = trainDemoRun(dir, QStringLiteral("synth-bert-small"), QStringLiteral("reviews"), 80);
        QVERIFY(!run.isEmpty());
        Workbench session;
        PlaygroundTab tab(&session, [run] { return QStringList{run}; });
        tab.refreshRuns();  // no model open: the newest run is picked
        QCOMPARE(tab.currentRun(), run);
        {
            // With a model open, the newest run on that model: none of them for the T5.
            Workbench t5;
            t5.setModel(nullptr, demoPath(QStringLiteral("models/synth-t5-small")));
            PlaygroundTab other(&t5, [run] { return QStringList{run}; });
            QCOMPARE(other.currentRun(), QString());
            Workbench bert;
            bert.setModel(nullptr, demoPath(QStringLiteral("models/synth-bert-small")));
            PlaygroundTab same(&bert, [run] { return QStringList{run}; });
            QCOMPARE(same.currentRun(), run);
        }
        const QStringList examples = tab.examples();
        QVERIFY2(examples.size() == 50, qPrintable(tab.statusText()));
        QVERIFY2(examples.first().endsWith(QStringLiteral(" overall it was [MASK] .")), qPrintable(examples.first()));
        tab.setInput(examples.first());
        QSignalSpy finished(&tab, &PlaygroundTab::finished);
        QVERIFY2(tab.generate(), qPrintable(tab.lastError()));
        QVERIFY(!tab.generate());  // one at a time
        QTRY_VERIFY_WITH_TIMEOUT(finished.size() == 1, 60000);
        QVERIFY2(tab.lastError().isEmpty(), qPrintable(tab.lastError()));
        // Both sides list the two labels with probabilities; the delta changed them.
        for (int side = 0; side < 2; ++side) {
            QVERIFY2(tab.output(side).contains(QStringLiteral("positive")) && tab.output(side).contains(QStringLiteral("negative")),
                     qPrintable(tab.output(side)));
        }
        QVERIFY(tab.output(0) != tab.output(1));
        // With neither a run nor an open model, Generate is refused, saying why.
        tab.setRun(QString());
        session.setModel(nullptr, QString());
        QVERIFY(!tab.generate());
        QVERIFY(tab.lastError().contains(QStringLiteral("Open a model")));
    }

    void t5StreamsAndStops() {
        Workbench session;
        session.setModel(nullptr, demoPath(QStringLiteral("models/synth-t5-small")));
        PlaygroundTab tab(&session, [] { return QStringList(); });
        tab.setRun(QString());
        tab.setInput(QStringLiteral("the food was [MASK] . overall it was good ."));
        QSignalSpy finished(&tab, &PlaygroundTab::finished);
        QVERIFY2(tab.generate(), qPrintable(tab.lastError()));
        QTRY_VERIFY_WITH_TIMEOUT(finished.size() == 1, 60000);
        QVERIFY2(tab.lastError().isEmpty(), qPrintable(tab.lastError()));
        QVERIFY(!tab.output(0).trimmed().isEmpty());
        QVERIFY(tab.output(1).isEmpty());  // no run: the base alone
        // Stop ends a generation at once and leaves the tab ready.
        QVERIFY(tab.generate());
        tab.stop();
        QTRY_VERIFY_WITH_TIMEOUT(finished.size() == 2, 60000);
        QVERIFY(!tab.isRunning());
    }

    void scaleTabRunsTwoSizes() {
        QTemporaryDir dir;
        ScaleTab tab({demoPath(QStringLiteral("tasks/reviews/task.json"))}, [&](const QString& n) { return dir.filePath(n); });
        const QString small = demoPath(QStringLiteral("models/synth-bert-small")), base = demoPath(QStringLiteral("models/synth-bert-base"));
        const QString task = demoPath(QStringLiteral("tasks/reviews/task.json"));
        QVERIFY(!tab.start(task, {small}, {QStringLiteral("lora")}, 10));
        QVERIFY(tab.lastError().contains(QStringLiteral("two or more sizes")));
        QVERIFY(!tab.start(task, {small, dir.filePath(QStringLiteral("nothing"))}, {QStringLiteral("lora")}, 10));
        QVERIFY(tab.lastError().contains(QStringLiteral("not a model folder")));
        QSignalSpy finished(&tab, &ScaleTab::finished);
        QVERIFY2(tab.start(task, {small, base}, {QStringLiteral("lora"), QStringLiteral("bitfit")}, 20), qPrintable(tab.lastError()));
        QTRY_VERIFY_WITH_TIMEOUT(finished.size() == 1, 120000);
        QVERIFY2(tab.lastError().isEmpty(), qPrintable(tab.lastError()));
        QCOMPARE(tab.resultCount(), 4);
        QVERIFY(tab.curvePoints(QStringLiteral("synth-bert-base/lora")) >= 2);
        QVERIFY(QFile::exists(tab.outputDir() + QStringLiteral("/scale.json")));
        const QString csv = tab.toCsv();
        QVERIFY(csv.contains(QStringLiteral("synth-bert-small,")) && csv.contains(QStringLiteral("synth-bert-base,")));
        const QString png = dir.filePath(QStringLiteral("scale.png"));
        QVERIFY(tab.savePng(png));
        QVERIFY(QFileInfo(png).size() > 1000);
    }
};

DT_REGISTER_TEST(TestPlayground);
#include "test_playground.moc"
