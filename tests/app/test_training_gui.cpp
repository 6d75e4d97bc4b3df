// Training from the workbench: a real QThread runs the Trainer while the window stays responsive,
// curves arrive through queued signals and repaint on a coalescing timer, Stop ends the run with a
// checkpoint, a bad spec is reported without stopping the app. A PNG is written for a person to see.
#include "test_registry.h"
#include "test_util.h"

#include "main_window.h"
#include "training_controller.h"
#include "training_plot.h"

#include <nlohmann/json.hpp>

#include <QDir>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <random>

namespace {

// A generated pre-tokenized task (label: does token 7 occur) and a run spec for tiny-bert.
QString writeRun(const QTemporaryDir& dir, int steps) {
    std::mt19937_64 rng(1);
    QByteArray data;
    for (int i = 0; i < 256; ++i) {
        nlohmann::json ids = nlohmann::json::array({2});
        const int len = 6 + static_cast<int>(rng() % 9);
        for (int k = 1; k < len; ++k) ids.push_back(10 + static_cast<int>(rng() % 190));
        const bool yes = rng() % 2;
        if (yes) ids[1 + rng() % (len - 1)] = 7;
        data += QByteArray::fromStdString(nlohmann::json({{"input_ids", ids}, {"label", yes ? "yes" : "no"}}).dump()) + "\n";
    }
    dttest::writeBytes(dir.filePath("task.jsonl"), data);
    const nlohmann::json spec = {{"model", "tiny-bert"},
                                 {"architecture", "BertForSequenceClassification"},
                                 {"task", {{"train", "task.jsonl"}, {"validation_split", 0.25}}},
                                 {"delta", {{"methods", {{{"method", "lora"}, {"target_modules", "all-linear"}}}}, {"modules_to_save", {"classifier"}}}},
                                 {"training", {{"max_steps", steps}, {"batch_size", 16}, {"lr", 0.003}, {"eval_every", 20}, {"seed", 2}}}};
    const QString path = dir.filePath(QStringLiteral("run-%1.json").arg(steps));
    dttest::writeBytes(path, QByteArray::fromStdString(spec.dump()));
    return path;
}

}  // namespace

class TestTrainingGui : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void trainsInAWorkerThread() {
        QTemporaryDir dir;
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        QSignalSpy finished(w.training(), &TrainingController::finished);
        QSignalSpy steps(w.training(), &TrainingController::step);
        QVERIFY(w.startTraining(writeRun(dir, 120), dir.filePath("out")));
        QVERIFY(w.training()->isRunning());
        QVERIFY(!w.startTraining(writeRun(dir, 120), dir.filePath("other")));  // one run at a time
        QVERIFY(finished.wait(120000));
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("finished"));
        QCOMPARE(finished.first().at(1).toLongLong(), 120);
        QCOMPARE(steps.size(), 120);
        QTest::qWait(100);  // the last coalesced repaint
        QCOMPARE(w.trainingPlot()->pointCount(), 120);
        QVERIFY2(w.trainingPlot()->replotCount() < 120, "every step repainted the plot");
        QVERIFY(QFile::exists(dir.filePath("out/checkpoints/final/trainable.safetensors")));
        QVERIFY(w.grab().save(QStringLiteral(DT_BUILD_DIR "/workbench_training.png")));
    }

    void stopAndBadSpec() {
        QTemporaryDir dir;
        MainWindow w;
        QSignalSpy finished(w.training(), &TrainingController::finished);
        QSignalSpy steps(w.training(), &TrainingController::step);
        QVERIFY(w.startTraining(writeRun(dir, 100000), dir.filePath("out")));
        QTRY_VERIFY_WITH_TIMEOUT(steps.size() >= 3, 60000);
        w.training()->stop();
        QVERIFY(finished.wait(60000));
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("cancelled"));
        const qint64 n = finished.first().at(1).toLongLong();
        QVERIFY(QFile::exists(dir.filePath(QStringLiteral("out/checkpoints/step-%1/state.json").arg(n))));
        QSignalSpy failed(w.training(), &TrainingController::failed);
        dttest::writeBytes(dir.filePath("bad.json"), R"({"model": "tiny-bert", "task": {"train": "task.jsonl"}, "delta": "loraa"})");
        QVERIFY(w.startTraining(dir.filePath("bad.json"), dir.filePath("out2")));
        QVERIFY(failed.wait(60000));
        QVERIFY2(failed.first().at(0).toString().contains("unknown method 'loraa'"), qPrintable(failed.first().at(0).toString()));
        QVERIFY(!w.training()->isRunning());
    }
};

DT_REGISTER_TEST(TestTrainingGui);
#include "test_training_gui.moc"
