// Training from the workbench: a real QThread runs the Trainer while the window stays responsive,
// curves arrive through queued signals and repaint on a coalescing timer, Stop ends the run with a
// checkpoint, a bad spec is reported without stopping the app. A PNG is written for a person to see.
#include "test_registry.h"
#include "test_util.h"

#include "budget_chart.h"
#include "main_window.h"
#include "method_panel.h"
#include "model_panel.h"
#include "module_tree_model.h"
#include "qcustomplot_compat.h"
#include "class_metrics_view.h"
#include "delta_tab.h"
#include "heatmap_view.h"
#include "resource_view.h"
#include "run_history.h"
#include "training_controller.h"
#include "training_plot.h"
#include "training_tab.h"

#include <nlohmann/json.hpp>

#include <QDir>
#include <QFileInfo>
#include <QComboBox>
#include <QGroupBox>
#include <QSpinBox>
#include <QListWidgetItem>
#include <QStandardItemModel>
#include <QTableWidget>
#include <QTreeWidget>

#include "core/devices.h"
#include "core/process_usage.h"
#include "train/run_folder.h"
#include <QThread>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <cmath>
#include <random>

namespace {

// A generated pre-tokenized task (label: does token 7 occur) and a run spec for tiny-bert.
QString writeRun(const QTemporaryDir& dir, int steps, const nlohmann::json& delta = nullptr) {
    dttest::writeBytes(dir.filePath("task.jsonl"), dttest::keywordTaskJsonl(1, 256));
    nlohmann::json spec = {{"model", "tiny-bert"},
                                 {"architecture", "BertForSequenceClassification"},
                                 {"task", {{"train", "task.jsonl"}, {"validation_split", 0.25}}},
                                 {"delta", {{"methods", {{{"method", "lora"}, {"target_modules", "all-linear"}}}}, {"modules_to_save", {"classifier"}}}},
                                 {"training", {{"max_steps", steps}, {"batch_size", 16}, {"lr", 0.003}, {"eval_every", 20}, {"seed", 2}}}};
    if (!delta.is_null()) spec["delta"] = delta;
    const QString path = dir.filePath(QStringLiteral("run-%1.json").arg(steps));
    dttest::writeBytes(path, QByteArray::fromStdString(spec.dump()));
    return path;
}

}  // namespace

class TestTrainingGui : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void deviceChoiceComesFromTheProbe() {
        // This machine: the probe's devices; without a GPU a disabled CUDA entry carries the reason.
        const dt::DeviceProbe here = dt::probe_devices();
        QComboBox combo;
        fillDeviceChoice(&combo, here);
        QCOMPARE(combo.itemData(0).toString(), QStringLiteral("cpu"));
        QCOMPARE(combo.currentData().toString(), QStringLiteral("cpu"));
        auto* model = qobject_cast<QStandardItemModel*>(combo.model());
        QVERIFY(model);
        if (here.gpus.empty()) {
            QCOMPARE(combo.count(), 2);
            QVERIFY(!model->item(1)->isEnabled());
            QCOMPARE(combo.itemData(1, Qt::ToolTipRole).toString(), QString::fromStdString(here.cuda_reason));
            QVERIFY2(combo.toolTip().contains(QString::fromStdString(here.cuda_reason)), qPrintable(combo.toolTip()));
        }
        // A probe that sees two GPUs (as on a GPU server): one enabled entry each, named, no "not offered".
        dt::DeviceProbe gpus = here;
        gpus.cuda_headers = true;
        gpus.cuda_reason.clear();
        gpus.gpus = {{0, "NVIDIA H200", 150ll << 30, 9, 0, true}, {1, "Tesla T4", 15ll << 30, 7, 5, false}};
        fillDeviceChoice(&combo, gpus);
        QCOMPARE(combo.count(), 3);
        QCOMPARE(combo.itemData(1).toString(), QStringLiteral("cuda:0"));
        QCOMPARE(combo.itemText(1), QStringLiteral("CUDA:0 NVIDIA H200"));
        QCOMPARE(combo.itemData(2).toString(), QStringLiteral("cuda:1"));
        QVERIFY(model->item(2)->isEnabled());
        QVERIFY2(combo.itemData(2, Qt::ToolTipRole).toString().contains(QStringLiteral("compute capability 7.5, bf16 no")),
                 qPrintable(combo.itemData(2, Qt::ToolTipRole).toString()));
        QVERIFY(!combo.toolTip().contains(QStringLiteral("not offered")));
    }

    void resourceViewPlotsGpuMemoryWhenRead() {
        ResourceView v;
        v.addSample(1, 300, 90);  // no CUDA device: said, not plotted
        QVERIFY2(v.caption().contains(QStringLiteral("GPU memory: not read")), qPrintable(v.caption()));
        QCOMPARE(v.plot()->graph(2)->dataCount(), 0);
        QCOMPARE(v.lastGpuMiB(), -1.0);
        v.addSample(2, 310, 95, 2048);  // a CUDA run: the third curve, its peak in the caption
        v.addSample(3, 320, 97, 1024);
        QCOMPARE(v.plot()->graph(2)->dataCount(), 2);
        QVERIFY(v.plot()->legend->hasItemWithPlottable(v.plot()->graph(2)));
        QVERIFY2(v.caption().contains(QStringLiteral("GPU memory 1024 MiB allocated (peak 2048 MiB)")), qPrintable(v.caption()));
        QVERIFY(v.plot()->yAxis->range().upper >= 2048);  // the axis covers the GPU curve too
        // This build's own sample: GPU memory is read exactly when a CUDA device is visible to a CUDA build.
        const dt::ProcessUsage u = dt::process_usage();
        QCOMPARE(u.gpu_bytes >= 0, DT_WITH_CUDA != 0 && !dt::probe_devices().gpus.empty());
    }

    void trainsInSeveralProcesses() {
        // Training settings > Processes 2: the run goes to `deltatune train --nproc 2`, and the same
        // live curves come from rank 0's event stream.
        QTemporaryDir dir;
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        TrainingTab* tab = w.trainingTab();
        auto* group = qobject_cast<QGroupBox*>(tab->settingField(QString()));
        auto* procs = qobject_cast<QSpinBox*>(tab->settingField(QStringLiteral("processes")));
        QVERIFY(group && procs);
        procs->setValue(2);
        QCOMPARE(tab->controller()->processes(), 1);  // the folded group's defaults apply
        group->setChecked(true);
        QCOMPARE(tab->controller()->processes(), 2);
        tab->controller()->setCliPath(cliPath());
        QSignalSpy finished(tab->controller(), &TrainingController::finished);
        QSignalSpy failed(tab->controller(), &TrainingController::failed);
        QSignalSpy steps(tab->controller(), &TrainingController::step);
        QSignalSpy evals(tab->controller(), &TrainingController::evaluated);
        QSignalSpy inspected(tab->controller(), &TrainingController::inspected);
        const QString spec = writeRun(dir, 40);
        QVERIFY(tab->startTraining(spec, dir.filePath("out")));
        QVERIFY(tab->controller()->isRunning());
        QTRY_VERIFY_WITH_TIMEOUT(finished.size() + failed.size() > 0, 120000);
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(0).toString()));
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("finished"));
        QCOMPARE(finished.first().at(1).toLongLong(), 40);
        QCOMPARE(steps.size(), 40);
        QCOMPARE(steps.last().at(1).toLongLong(), 40);  // max steps, from the spec
        QCOMPARE(evals.size(), 2);  // steps 20 and 40
        QVERIFY(evals.last().at(1).toMap().contains(QStringLiteral("accuracy")));
        QTest::qWait(100);
        QCOMPARE(tab->plot()->pointCount(), 40);
        QVERIFY(QFile::exists(dir.filePath("out/checkpoints/final/trainable.safetensors")));
        QVERIFY(!tab->controller()->isRunning());
        // The Delta tab shows the final delta's magnitudes, read from the run's checkpoint.
        QTRY_VERIFY_WITH_TIMEOUT(!inspected.isEmpty(), 60000);
        QCOMPARE(inspected.last().at(0).toLongLong(), 40);
        QCOMPARE(inspected.last().at(1).toString(), QStringLiteral("delta_magnitude"));
        const auto cells = inspected.last().at(4).value<QVector<double>>();
        QVERIFY(std::any_of(cells.begin(), cells.end(), [](double v) { return std::isfinite(v) && v > 0; }));
        QCOMPARE(w.deltaTab()->updates(), 1);
        QVERIFY(w.deltaTab()->gradients()->emptyText().contains(QLatin1String("one-process")));  // says why the right map is empty

        // Stop ends both workers after a step, with a checkpoint to resume from.
        const QString longSpec = writeRun(dir, 5000);
        QVERIFY(tab->startTraining(longSpec, dir.filePath("long")));
        QTRY_VERIFY_WITH_TIMEOUT(steps.size() >= 45, 60000);
        tab->controller()->stop();
        QTRY_VERIFY_WITH_TIMEOUT(finished.size() + failed.size() > 1, 30000);
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(0).toString()));
        QCOMPARE(finished.last().at(0).toString(), QStringLiteral("cancelled"));
        const qint64 at = finished.last().at(1).toLongLong();
        QVERIFY(at > 0 && at < 5000);
        QVERIFY(QFile::exists(dir.filePath(QStringLiteral("long/checkpoints/step-%1/trainable.safetensors").arg(at))));
    }

    void trainsInAWorkerThread() {
        QTemporaryDir dir;
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        QSignalSpy finished(w.trainingTab()->controller(), &TrainingController::finished);
        QSignalSpy failed(w.trainingTab()->controller(), &TrainingController::failed);
        QSignalSpy steps(w.trainingTab()->controller(), &TrainingController::step);
        // The spec and its data are written once: rewriting task.jsonl while the worker reads it
        // made this test fail now and then ("task.jsonl:130: invalid JSON").
        const QString spec = writeRun(dir, 120);
        QVERIFY(w.trainingTab()->startTraining(spec, dir.filePath("out")));
        QVERIFY(w.trainingTab()->controller()->isRunning());
        QVERIFY(!w.trainingTab()->startTraining(spec, dir.filePath("other")));  // one run at a time
        QVERIFY(!QFileInfo::exists(dir.filePath("other")));
        QTRY_VERIFY_WITH_TIMEOUT(finished.size() + failed.size() > 0, 120000);
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(0).toString()));
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("finished"));
        QCOMPARE(finished.first().at(1).toLongLong(), 120);
        QCOMPARE(steps.size(), 120);
        QTest::qWait(100);  // the last coalesced repaint
        QCOMPARE(w.trainingTab()->plot()->pointCount(), 120);
        QVERIFY2(w.trainingTab()->plot()->replotCount() < 120, "every step repainted the plot");
        QVERIFY(QFile::exists(dir.filePath("out/checkpoints/final/trainable.safetensors")));
        QVERIFY(w.grab().save(QStringLiteral(DT_BUILD_DIR "/workbench_training.png")));
    }

    void adaloraRanksShowLive() {
        // AdaLoRA's allocation reaches the window while it trains: the module tree names each
        // module's kept rank and the budget chart plots kept ranks per layer.
        QTemporaryDir dir;
        MainWindow w;
        QVERIFY(w.openModel(QStringLiteral("tiny-bert")));
        QSignalSpy finished(w.trainingTab()->controller(), &TrainingController::finished);
        QSignalSpy ranks(w.trainingTab()->controller(), &TrainingController::ranks);
        const nlohmann::json delta = {{"methods", {{{"method", "adalora"}, {"init_r", 6}, {"target_r", 2}, {"tinit", 3}, {"tfinal", 5},
                                                     {"target_modules", {"query", "value"}}}}},
                                      {"modules_to_save", {"classifier"}}};
        QVERIFY(w.trainingTab()->startTraining(writeRun(dir, 30, delta), dir.filePath("out")));
        QTRY_VERIFY_WITH_TIMEOUT(!finished.isEmpty(), 120000);
        QVERIFY(ranks.size() >= 2);  // the allocation changed during the run
        const QVariantMap last = ranks.last().at(1).toMap();
        int total = 0;
        for (const auto& v : last) total += v.toInt();
        QCOMPARE(total, 2 * 8);  // target_r x 8 modules (tiny-bert: 4 layers x query, value)
        const QString q = QStringLiteral("bert.encoder.layer.0.attention.self.query");
        QCOMPARE(w.modelPanel()->model()->rank(q), last.value(q).toInt());
        const QModelIndex idx = w.modelPanel()->model()->indexForPath(q);
        QVERIFY(idx.isValid());
        QVERIFY2(idx.data().toString().contains(QStringLiteral("[rank %1]").arg(last.value(q).toInt())), qPrintable(idx.data().toString()));
        QCOMPARE(w.methodPanel()->budgetChart()->plot()->yAxis->label(), QStringLiteral("kept rank"));
        QCOMPARE(w.methodPanel()->budgetChart()->groups().size(), 4);  // L0..L3
    }

    void pauseResumeAndStopWithinOneStep() {
        QTemporaryDir dir;
        MainWindow w;
        QSignalSpy finished(w.trainingTab()->controller(), &TrainingController::finished);
        QSignalSpy steps(w.trainingTab()->controller(), &TrainingController::step);
        QVERIFY(w.trainingTab()->startTraining(writeRun(dir, 100000), dir.filePath("out")));
        QTRY_VERIFY_WITH_TIMEOUT(steps.size() >= 2, 60000);
        w.trainingTab()->controller()->setPaused(true);
        QTest::qWait(300);  // a step in flight may still land
        const auto paused = steps.size();
        QTest::qWait(500);
        QCOMPARE(steps.size(), paused);  // no progress while paused
        w.trainingTab()->controller()->setPaused(false);
        QTRY_VERIFY_WITH_TIMEOUT(steps.size() > paused + 2, 60000);
        // Paused again until every step's signal has arrived, then stopped: the run ends where it
        // stood, at most one step later, with a checkpoint.
        w.trainingTab()->controller()->setPaused(true);
        QTest::qWait(300);
        const qint64 lastSeen = steps.last().at(0).toLongLong();
        w.trainingTab()->controller()->stop();
        QVERIFY(finished.wait(60000));
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("cancelled"));
        QVERIFY2(finished.first().at(1).toLongLong() <= lastSeen + 1,
                 qPrintable(QStringLiteral("%1 vs %2").arg(finished.first().at(1).toLongLong()).arg(lastSeen)));
        QVERIFY(QFile::exists(dir.filePath(QStringLiteral("out/checkpoints/step-%1/state.json").arg(finished.first().at(1).toLongLong()))));
        QVERIFY(!w.trainingTab()->controller()->isRunning());
    }

    void fiftyStartStopCycles() {
        // Random stop times, from before the first step to a few steps in: every run ends, its
        // thread is joined, and the next one starts.
        QTemporaryDir dir;
        MainWindow w;
        std::mt19937 rng(7);
        const QString spec = writeRun(dir, 100000);
        for (int i = 0; i < 50; ++i) {
            QSignalSpy ended(w.trainingTab()->controller(), &TrainingController::finished);
            QSignalSpy failed(w.trainingTab()->controller(), &TrainingController::failed);
            QVERIFY(w.trainingTab()->startTraining(spec, dir.filePath(QStringLiteral("cycle-%1").arg(i))));
            QTest::qWait(static_cast<int>(rng() % 40));
            w.trainingTab()->controller()->stop();
            QTRY_VERIFY_WITH_TIMEOUT(ended.size() + failed.size() == 1, 60000);
            QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(0).toString()));
            QVERIFY(!w.trainingTab()->controller()->isRunning());
        }
        QCOMPARE(w.trainingTab()->controller()->findChildren<QThread*>().size(), 0);
    }

    void historyOverlaysEarlierRuns() {
        QTemporaryDir dir;
        MainWindow w;
        QSignalSpy finished(w.trainingTab()->controller(), &TrainingController::finished);
        QVERIFY(w.trainingTab()->startTraining(writeRun(dir, 30), dir.filePath("first")));
        QVERIFY(finished.wait(60000));
        RunHistory* h = w.trainingTab()->history();
        const QString first = QFileInfo(dir.filePath("first")).absoluteFilePath();
        QVERIFY(h->runDirs().contains(first));
        QVector<double> steps, losses;
        QVERIFY(RunHistory::readCurve(dir.filePath("first"), steps, losses));
        QCOMPARE(steps.size(), 30);
        QVERIFY(std::abs(losses.last() - w.trainingTab()->plot()->smoothedLosses().last()) < 1e-6);  // the same EMA as the live plot

        // The run table's row: a readable name, the method, its settings, the counts, best, status, time.
        QTreeWidgetItem* row = h->item(0);
        const QString name = row->text(RunHistory::Name);
        QVERIFY2(name.contains(QLatin1String("lora")) && name.contains(QStringLiteral(" · ")), qPrintable(name));
        QCOMPARE(row->text(RunHistory::Method), QStringLiteral("lora"));
        QVERIFY(row->text(RunHistory::Settings).contains(QLatin1String("lr 0.003")));
        QVERIFY(row->text(RunHistory::Settings).contains(QLatin1String("batch 16")));
        QVERIFY(QLocale().toLongLong(row->text(RunHistory::Trainable)) > 0);
        QVERIFY2(row->text(RunHistory::Best).startsWith(QLatin1String("accuracy 0.")), qPrintable(row->text(RunHistory::Best)));
        QCOMPARE(row->text(RunHistory::Status), QStringLiteral("finished (30)"));
        QVERIFY(!row->text(RunHistory::Duration).isEmpty());
        // The Classes view beside the live plot shows the run's last evaluation; the resource monitor sampled it.
        QCOMPARE(w.trainingTab()->classes()->table()->rowCount(), 2);
        QCOMPARE(w.trainingTab()->classes()->heatmap()->rowCount(), 2);
        QVERIFY(w.trainingTab()->resources()->sampleCount() >= 1);
        QVERIFY(w.trainingTab()->resources()->lastRssMiB() > 10);
        QVERIFY(!w.trainingTab()->resources()->isSampling());

        row->setCheckState(RunHistory::Name, Qt::Checked);
        QCOMPARE(w.trainingTab()->plot()->overlays(), QStringList{name});
        QCOMPARE(h->comparedRuns(), QStringList{name});
        // The comparison plot: accuracy against epochs (16 of the 192 training examples a step).
        h->setMetric(QStringLiteral("accuracy"));
        h->setXAxis(QStringLiteral("epoch"));
        h->setSmoothing(0);
        QCPGraph* g = h->comparisonPlot()->graph(0);
        QCOMPARE(g->dataCount(), 2);  // evaluations at steps 20 and 30
        QCOMPARE((g->data()->end() - 1)->key, 30.0 * 16 / 192);
        row->setCheckState(RunHistory::Name, Qt::Unchecked);
        QVERIFY(w.trainingTab()->plot()->overlays().isEmpty());
        QVERIFY(h->comparedRuns().isEmpty());

        // A second, stopped run: resumable, and its settings differ from the first's in max_steps.
        QSignalSpy stepSpy(w.trainingTab()->controller(), &TrainingController::step);
        QVERIFY(w.trainingTab()->startTraining(writeRun(dir, 100000), dir.filePath("second")));
        QTRY_VERIFY_WITH_TIMEOUT(stepSpy.size() >= 3, 60000);
        w.trainingTab()->controller()->stop();
        QVERIFY(finished.wait(60000));
        const qint64 stoppedAt = finished.last().at(1).toLongLong();
        const QString second = QFileInfo(dir.filePath("second")).absoluteFilePath();
        QCOMPARE(h->runDirs().first(), second);
        QVERIFY(h->item(0)->text(RunHistory::Status).startsWith(QLatin1String("cancelled")));
        const auto diff = RunHistory::specDiff(first, second);
        bool stepsDiffer = false;
        for (const auto& d : diff) stepsDiffer |= d.first == QLatin1String("training.max_steps") && d.second == qMakePair(QStringLiteral("30"), QStringLiteral("100000"));
        QVERIFY(stepsDiffer);
        for (const auto& d : diff) QVERIFY(d.first != QLatin1String("output_dir"));

        // Resume continues the stopped run in place from its checkpoint.
        stepSpy.clear();
        QVERIFY(w.trainingTab()->resumeRun(second));
        QTRY_VERIFY_WITH_TIMEOUT(!stepSpy.isEmpty(), 60000);
        QCOMPARE(stepSpy.first().at(0).toLongLong(), stoppedAt + 1);
        w.trainingTab()->controller()->stop();
        QVERIFY(finished.wait(60000));

        // Rename writes label.txt; delete removes the folder and the row, and refuses a non-run folder.
        QVERIFY(h->renameRun(first, QStringLiteral("baseline")));
        QCOMPARE(h->displayName(first), QStringLiteral("baseline"));
        QCOMPARE(dt::run_folder::summarize_run(first.toStdString()).label, std::string("baseline"));
        QVERIFY(!h->renameRun(first, QStringLiteral("two\nlines")));
        QVERIFY(h->deleteRun(first));
        QVERIFY(!QDir(first).exists());
        QVERIFY(!h->runDirs().contains(first));
        QVERIFY(!h->deleteRun(dir.path()));
        QVERIFY(QDir(dir.path()).exists());
    }

    void stopAndBadSpec() {
        QTemporaryDir dir;
        MainWindow w;
        QSignalSpy finished(w.trainingTab()->controller(), &TrainingController::finished);
        QSignalSpy steps(w.trainingTab()->controller(), &TrainingController::step);
        QVERIFY(w.trainingTab()->startTraining(writeRun(dir, 100000), dir.filePath("out")));
        QTRY_VERIFY_WITH_TIMEOUT(steps.size() >= 3, 60000);
        w.trainingTab()->controller()->stop();
        QVERIFY(finished.wait(60000));
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("cancelled"));
        const qint64 n = finished.first().at(1).toLongLong();
        QVERIFY(QFile::exists(dir.filePath(QStringLiteral("out/checkpoints/step-%1/state.json").arg(n))));
        QSignalSpy failed(w.trainingTab()->controller(), &TrainingController::failed);
        dttest::writeBytes(dir.filePath("bad.json"), R"({"model": "tiny-bert", "task": {"train": "task.jsonl"}, "delta": "loraa"})");
        QVERIFY(w.trainingTab()->startTraining(dir.filePath("bad.json"), dir.filePath("out2")));
        QVERIFY(failed.wait(60000));
        QVERIFY2(failed.first().at(0).toString().contains("unknown method 'loraa'"), qPrintable(failed.first().at(0).toString()));
        QVERIFY(!w.trainingTab()->controller()->isRunning());
    }
};

DT_REGISTER_TEST(TestTrainingGui);
#include "test_training_gui.moc"
