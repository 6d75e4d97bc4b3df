// The window's parts on their own, without a MainWindow: the Training tab (one run at a time, the run
// folder it names), the Transfer tab's refusals, the model controller's PEFT target_modules, and the
// one worker helper that export and import run on (off the GUI thread; failures reach the status bar
// and change nothing).
#include "test_registry.h"
#include "test_util.h"

#include "delta_files.h"
#include "experiment_controller.h"
#include "export_dialog.h"
#include "fit_probe.h"
#include "merge_dialog.h"
#include "method_panel.h"
#include "model_controller.h"
#include "model_panel.h"
#include "module_tree_model.h"
#include "training_controller.h"
#include "training_tab.h"
#include "transfer_tab.h"
#include "workbench.h"
#include "worker_thread.h"

#include "core/error.h"
#include "io/json_util.h"
#include "train/run_spec.h"

#include <QCoreApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QGroupBox>
#include <QSpinBox>
#include <QDialogButtonBox>
#include <QPushButton>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QSettings>
#include <QStandardPaths>
#include <QFileInfo>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include <stdexcept>

namespace {

// DELTATUNE_WORK_DIR pointed at `dir` for one test; restored however the test ends.
class TabsWorkDir {
public:
    explicit TabsWorkDir(const QString& dir) : m_old(qgetenv("DELTATUNE_WORK_DIR")) { qputenv("DELTATUNE_WORK_DIR", dir.toUtf8()); }
    ~TabsWorkDir() {
        if (m_old.isNull()) qunsetenv("DELTATUNE_WORK_DIR");
        else qputenv("DELTATUNE_WORK_DIR", m_old);
    }
    TabsWorkDir(const TabsWorkDir&) = delete;
    TabsWorkDir& operator=(const TabsWorkDir&) = delete;

private:
    QByteArray m_old;
};

}  // namespace

class TestTabs : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void fileDialogsStartWhereTheUserWasLast() {
        QTemporaryDir dir;
        QSettings().remove(QStringLiteral("dialogs/specs"));
        const QString first = Workbench::dialogStart(QStringLiteral("specs"));
        QVERIFY(QFileInfo(first).isDir());
        QVERIFY(first != QDir::currentPath() || first == QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation));
        QVERIFY(QDir().mkpath(dir.filePath("specs")));
        Workbench::remember(QStringLiteral("specs"), dir.filePath("specs/run.json"), false);
        QCOMPARE(Workbench::dialogStart(QStringLiteral("specs"), QStringLiteral("run.json")), QFileInfo(dir.filePath("specs")).absoluteFilePath() + "/run.json");
        Workbench::remember(QStringLiteral("models"), dir.filePath("specs"), true);
        QCOMPARE(Workbench::dialogStart(QStringLiteral("models")), QFileInfo(dir.path()).absoluteFilePath());  // a folder's siblings come next
    }

    void firstRunHintUntilDismissed() {
        QSettings().setValue(QStringLiteral("hints/firstRun"), true);
        Workbench session;
        {
            TrainingTab tab(&session);
            QVERIFY(!tab.firstRunHint()->isHidden());
            QVERIFY(tab.firstRunHint()->text().contains(QLatin1String("Start")));
            Q_EMIT tab.firstRunHint()->linkActivated(QStringLiteral("close"));
            QVERIFY(tab.firstRunHint()->isHidden());
        }
        TrainingTab again(&session);  // remembered
        QVERIFY(again.firstRunHint()->isHidden());
    }

    void trainingSettingsMapOntoTheRunSpec() {
        if (Workbench::demoModel().isEmpty()) QSKIP("no demo model");
        Workbench session;
        TrainingTab tab(&session);
        session.setModel(nullptr, Workbench::demoModel());
        session.setDeltaSpec(R"({"method": "lora"})", QString());
        const QString task = Workbench::demoTasks().first();
        // Folded away, the defaults apply and the spec names only what the builder always writes.
        const nlohmann::json plain = tab.taskRunSpec(task, 50, 0.01);
        QVERIFY(!plain["training"].contains("grad_accum") && !plain.contains("max_length"));
        auto* group = qobject_cast<QGroupBox*>(tab.settingField(QString()));
        QVERIFY(group && !group->isChecked());
        group->setChecked(true);
        auto spin = [&](const char* name, int v) {
            auto* s = qobject_cast<QSpinBox*>(tab.settingField(QLatin1String(name)));
            QVERIFY2(s, name);
            QVERIFY2(s->toolTip().contains(QLatin1String(name)), name);  // the tooltip names the spec field
            s->setValue(v);
        };
        spin("batch_size", 4);
        spin("grad_accum", 3);
        spin("seed", 17);
        spin("eval_every", 7);
        spin("patience", 2);
        spin("max_length", 48);
        qobject_cast<QDoubleSpinBox*>(tab.settingField(QStringLiteral("warmup_ratio")))->setValue(0.1);
        qobject_cast<QComboBox*>(tab.settingField(QStringLiteral("schedule")))->setCurrentText(QStringLiteral("cosine"));
        const nlohmann::json spec = tab.taskRunSpec(task, 50, 0.01);
        const auto& t = spec["training"];
        QCOMPARE(t["batch_size"].get<int>(), 4);
        QCOMPARE(t["grad_accum"].get<int>(), 3);
        QCOMPARE(t["seed"].get<int>(), 17);
        QCOMPARE(t["eval_every"].get<int>(), 7);
        QCOMPARE(t["patience"].get<int>(), 2);
        QCOMPARE(t["warmup_ratio"].get<double>(), 0.1);
        QCOMPARE(t["schedule"].get<std::string>(), std::string("cosine"));
        QCOMPARE(spec["max_length"].get<int>(), 48);
        // The engine reads every field back as the run's settings (the CLI runs the same spec).
        const dt::RunSpec r = dt::RunSpec::from_json(spec, "gui", ".");
        QCOMPARE(r.training.batch_size, std::int64_t(4));
        QCOMPARE(r.training.grad_accum, std::int64_t(3));
        QCOMPARE(r.training.seed, std::uint64_t(17));
        QCOMPARE(r.training.eval_every, std::int64_t(7));
        QCOMPARE(r.training.patience, 2);
        QCOMPARE(r.training.schedule, std::string("cosine"));
        QCOMPARE(r.text.max_length, std::size_t(48));
        QCOMPARE(r.training.quantize, std::string("none"));
        // The frozen base's storage: bf16 as base_dtype; NF4 as quantize with QLoRA's double quantisation.
        auto* base = qobject_cast<QComboBox*>(tab.settingField(QStringLiteral("base_storage")));
        QVERIFY(base && base->count() == 4);
        base->setCurrentIndex(base->findData(QStringLiteral("bf16")));
        QCOMPARE(tab.taskRunSpec(task, 50, 0.01)["training"]["base_dtype"].get<std::string>(), std::string("bf16"));
        base->setCurrentIndex(base->findData(QStringLiteral("nf4")));
        const dt::RunSpec q = dt::RunSpec::from_json(tab.taskRunSpec(task, 50, 0.01), "gui", ".");
        QCOMPARE(q.training.quantize, std::string("nf4"));
        QVERIFY(q.training.double_quant);
        QCOMPARE(q.training.base_dtype, std::string("fp32"));
        base->setCurrentIndex(0);
        // Packing goes into the spec; on this (classification) task the engine refuses it by name.
        auto* pack = qobject_cast<QCheckBox*>(tab.settingField(QStringLiteral("packing")));
        QVERIFY(pack && pack->toolTip().contains(QLatin1String("packing")));
        QVERIFY(!tab.taskRunSpec(task, 50, 0.01)["training"].contains("packing"));
        pack->setChecked(true);
        const nlohmann::json packed = tab.taskRunSpec(task, 50, 0.01);
        QCOMPARE(packed["training"]["packing"].get<bool>(), true);
        try {
            dt::RunSpec::from_json(packed, "gui", ".");
            QFAIL("packing accepted on a classification task");
        } catch (const dt::Error& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains(QLatin1String("'packing'")), e.what());
        }
        pack->setChecked(false);
        // A too-short max_length in a spec is refused naming the field.
        nlohmann::json bad = spec;
        bad["max_length"] = 1;
        try {
            dt::RunSpec::from_json(bad, "gui", ".");
            QFAIL("accepted max_length 1");
        } catch (const dt::Error& e) {
            QVERIFY(QString::fromUtf8(e.what()).contains(QLatin1String("max_length")));
        }
    }

    void willItFitMeasuresAndProbes() {
        if (Workbench::demoModel().isEmpty()) QSKIP("no demo model");
        QTemporaryDir dir;
        const TabsWorkDir work(dir.filePath("work"));
        Workbench session;
        TrainingTab tab(&session);
        session.setModel(nullptr, Workbench::demoModel());
        session.setDeltaSpec(R"({"method": "lora"})", QString());
        QVERIFY2(!FitProbe::cliPath().isEmpty(), "the deltatune CLI is built beside the tests");
        QSignalSpy measured(tab.fitProbe(), &FitProbe::measured);
        QSignalSpy largest(tab.fitProbe(), &FitProbe::largest);
        QSignalSpy failed(tab.fitProbe(), &FitProbe::failed);
        // One real step at the default batch in a child process: its peak and the resident set after loading.
        QVERIFY(tab.measureMemory());
        QVERIFY(!tab.measureMemory());  // one measurement at a time
        QVERIFY(measured.wait(120000));
        QCOMPARE(measured.first().at(0).toInt(), static_cast<int>(dt::TrainingDefaults::batch_size));
        const qint64 peak = measured.first().at(1).toLongLong(), loaded = measured.first().at(2).toLongLong();
        QVERIFY(loaded > (16 << 20) && peak >= loaded);
        QVERIFY2(tab.fitText().contains(QStringLiteral("measured peak %1 MiB").arg(peak >> 20)), qPrintable(tab.fitText()));
        // A limit below any process: not even batch 1 fits, and the probe says so.
        QVERIFY(tab.findLargestBatch(64, 1));
        QVERIFY(largest.wait(120000));
        QCOMPARE(largest.last().at(0).toInt(), 0);
        QVERIFY(tab.fitText().startsWith(QStringLiteral("Not even batch 1")));
        // A generous limit with the batch capped at 4: batches 1, 2 and 4 are measured, 4 is the answer.
        measured.clear();
        QVERIFY(tab.findLargestBatch(4, qint64(1) << 42));
        QVERIFY(largest.wait(180000));
        QCOMPARE(largest.last().at(0).toInt(), 4);
        QCOMPARE(measured.size(), 3);
        QCOMPARE(measured.at(2).at(0).toInt(), 4);
        QVERIFY(failed.isEmpty());
        // A spec the CLI refuses fails with its message instead of a size.
        dttest::writeBytes(dir.filePath("bad.json"), R"({"model": "tiny-bert", "task": {"train": "missing.jsonl"}, "delta": "lora"})");
        QVERIFY(tab.fitProbe()->measure(dir.filePath("bad.json"), 2));
        QVERIFY(failed.wait(60000));
        QVERIFY2(failed.first().at(0).toString().contains(QLatin1String("missing.jsonl")), qPrintable(failed.first().at(0).toString()));
    }

    void trainingTabRefusesASecondStartAndNamesTheRunFolder() {
        if (Workbench::demoModel().isEmpty()) QSKIP("no demo model");
        QTemporaryDir dir;
        const TabsWorkDir work(dir.filePath("work"));
        Workbench session;
        TrainingTab tab(&session);
        const QString task = Workbench::demoTasks().first();
        QVERIFY(task.endsWith(QStringLiteral("reviews/task.json")));
        QVERIFY(!tab.startTaskTraining(task, 5, 0.01));  // no model yet: refused, saying so
        QVERIFY2(session.lastError().contains(QStringLiteral("Open a model")), qPrintable(session.lastError()));
        session.setModel(nullptr, Workbench::demoModel());
        session.setDeltaSpec(R"({"method": "lora"})", QString());
        QSignalSpy started(&tab, &TrainingTab::runStarted);
        QSignalSpy finished(tab.controller(), &TrainingController::finished);
        QSignalSpy failed(tab.controller(), &TrainingController::failed);
        QVERIFY2(tab.startTaskTraining(task, 100000, 0.01), qPrintable(session.lastError()));
        QVERIFY(tab.isRunning());
        // A new work folder named after the task, holding the run spec, announced to the Delta tab.
        const QString run = tab.lastRunDir();
        QVERIFY2(run.startsWith(dir.filePath("work/runs/reviews-")), qPrintable(run));
        QVERIFY(QFile::exists(run + QStringLiteral("/spec.json")));
        QCOMPARE(started.size(), 1);
        QCOMPARE(started.first().at(0).toString(), run);
        // One run at a time: a second start is refused with a message, the first run untouched.
        QVERIFY(!tab.startTaskTraining(task, 5, 0.01));
        QVERIFY(session.lastError().contains(QStringLiteral("already training")));
        QVERIFY(!tab.startTraining(run + QStringLiteral("/spec.json"), dir.filePath("other")));
        QVERIFY(!QFileInfo::exists(dir.filePath("other")));
        QCOMPARE(tab.lastRunDir(), run);
        QCOMPARE(started.size(), 1);
        tab.controller()->stop();
        QTRY_VERIFY_WITH_TIMEOUT(finished.size() + failed.size() == 1, 60000);
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(0).toString()));
        QVERIFY(!tab.isRunning());
    }

    void transferTabRefusesFewerThanTwoTasks() {
        Workbench session;
        TrainingTab training(&session);
        TransferTab tab(&session, &training);
        QSignalSpy status(&session, &Workbench::statusMessage);
        QCOMPARE(tab.checkedTasks(), Workbench::demoTasks());  // every demo task ticked at first
        QVERIFY(!tab.startTransfer({}, 5));
        QVERIFY(!tab.startTransfer({QStringLiteral("/tmp/a/task.json")}, 5));
        QCOMPARE(session.lastError(), QStringLiteral("Tick at least two tasks"));
        QCOMPARE(status.size(), 2);  // each refusal reached the status bar
        QVERIFY(!tab.startTransfer({QStringLiteral("/tmp/a/task.json"), QStringLiteral("/tmp/b/task.json")}, 5));
        QVERIFY(session.lastError().contains(QStringLiteral("Open a model")));  // two tasks, but no model
        QTemporaryDir dir;
        QVERIFY(!tab.startAblation(dir.path()));
        QVERIFY(session.lastError().contains(QStringLiteral("no finished run")));
        QVERIFY(!tab.experiments()->isRunning());
    }

    void modelControllerWritesTheShortestTargetModules() {
        // The engine's target_modules_for(): the short name when it selects exactly the ticks, else
        // the full paths; Linear modules only, except for selective tuning.
        Workbench session;
        ModelPanel panel;
        MethodPanel method;
        ModelController models(&session, &panel, &method);
        QVERIFY(models.openModel(QStringLiteral("tiny-bert")));
        method.setMethod(QStringLiteral("lora"));
        QStringList values;
        for (int l = 0; l < 4; ++l) values << QStringLiteral("bert.encoder.layer.%1.attention.self.value").arg(l);
        panel.model()->setCheckedPaths(values);
        QTRY_COMPARE(models.targetModules(), QStringLiteral("[\"value\"]"));
        const QString first = QStringLiteral("bert.encoder.layer.0.attention.self.value");
        panel.model()->setCheckedPaths({first});
        QTRY_COMPARE(models.targetModules(), QStringLiteral("[\"%1\"]").arg(first));
        QCOMPARE(models.targetsNote(), QStringLiteral("[\"value\"], layers_to_transform [0]"));
        panel.model()->setCheckedPaths({first, QStringLiteral("bert.encoder.layer.2.attention.self.query"),
                                        QStringLiteral("bert.encoder.layer.2.attention.self.value"), QStringLiteral("bert.encoder.layer.0.attention.self.query")});
        QTRY_COMPARE(models.targetsNote(), QStringLiteral("[\"query\",\"value\"], layers_to_transform [0,2]"));
        // Not expressible as names + layers (query in layer 0 only, value in 0 and 2): the paths stay explicit.
        panel.model()->setCheckedPaths({first, QStringLiteral("bert.encoder.layer.2.attention.self.value"),
                                        QStringLiteral("bert.encoder.layer.0.attention.self.query")});
        QTRY_COMPARE(models.targetsNote(), QStringLiteral("3 explicit module path(s)"));
        panel.model()->setCheckedPaths({first});
        QVERIFY(session.deltaReady());  // brings the spec up to date with the ticks at once
        QVERIFY(session.deltaSpecJson().contains(first));
        // A model that fails to open leaves the session's model as it was.
        QVERIFY(!models.openModel(QStringLiteral("/no/such/model")));
        QCOMPARE(session.modelSource(), QStringLiteral("tiny-bert"));
        QVERIFY(session.lastError().contains(QStringLiteral("/no/such/model")));
    }

    void workerHelperRunsJobsOffTheGuiThread() {
        QObject owner;
        QThread* thread = nullptr;
        QThread* ranOn = nullptr;
        QString result = QStringLiteral("not called");
        QThread* calledBackOn = nullptr;
        QVERIFY(gui::runJob(&owner, thread, [&ranOn] { ranOn = QThread::currentThread(); },
                            [&](const QString& error) {
                                result = error;
                                calledBackOn = QThread::currentThread();
                                QVERIFY(thread == nullptr);  // joined before the callback
                            }));
        QVERIFY(thread != nullptr);
        QVERIFY(!gui::runJob(&owner, thread, [] {}, [](const QString&) {}));  // one job per slot
        QTRY_COMPARE(result, QString());
        QVERIFY(ranOn != nullptr && ranOn != QThread::currentThread());
        QCOMPARE(calledBackOn, QThread::currentThread());
        // An exception stops at the thread boundary and comes back as the error.
        QVERIFY(gui::runJob(&owner, thread, [] { throw std::runtime_error("disk full"); }, [&](const QString& error) { result = error; }));
        QTRY_COMPARE(result, QStringLiteral("disk full"));
        QCOMPARE(owner.findChildren<QThread*>().size(), 0);
    }

    void exportDialogDefaultsToTheLastFinishedRun() {
        // A newer cancelled run and an older finished one: the dialog names the finished run and its
        // best checkpoint; choosing the cancelled run lists its step checkpoints and warns.
        QTemporaryDir dir;
        auto makeRun = [&](const QString& name, const QString& status, int steps, const QStringList& ckpts) {
            const QString run = dir.filePath(name);
            QByteArray events;
            for (int s = 1; s <= steps; ++s) events += QByteArray::fromStdString(nlohmann::json({{"event", "step"}, {"step", s}, {"loss", 1.0}}).dump()) + "\n";
            events += QByteArray::fromStdString(nlohmann::json({{"event", "status"}, {"status", status.toStdString()}, {"step", steps}}).dump()) + "\n";
            QDir().mkpath(run);
            dttest::writeBytes(run + "/events.jsonl", events);
            for (const QString& c : ckpts) {
                QDir().mkpath(run + "/checkpoints/" + c);
                dttest::writeBytes(run + "/checkpoints/" + c + "/trainable.safetensors", "x");
            }
            return run;
        };
        const QString finished = makeRun(QStringLiteral("reviews-1"), QStringLiteral("finished"), 300, {"step-300", "final", "best"});
        const QString cancelled = makeRun(QStringLiteral("reviews-2"), QStringLiteral("cancelled"), 45, {"step-40", "step-45"});
        ExportDialog d({cancelled, finished});
        QCOMPARE(d.runDir(), finished);
        QCOMPARE(d.checkpoint(), QStringLiteral("best"));
        QCOMPARE(d.checkpoints()->count(), 3);  // best, final, step-300
        QVERIFY(d.warning().isEmpty());
        QVERIFY(d.runs()->currentText().contains(QStringLiteral("reviews-1")) && d.runs()->currentText().contains(QStringLiteral("finished")));
        QPushButton* ok = d.findChild<QDialogButtonBox*>()->button(QDialogButtonBox::Ok);
        QVERIFY(!ok->isEnabled());  // no destination yet
        d.setOutDir(dir.filePath("out"));
        QVERIFY(ok->isEnabled());
        d.runs()->setCurrentIndex(0);
        QCOMPARE(d.runDir(), cancelled);
        QCOMPARE(d.checkpoint(), QStringLiteral("step-45"));  // newest first
        QVERIFY2(d.warning().contains(QStringLiteral("cancelled at step 45")), qPrintable(d.warning()));
        QCOMPARE(d.format(), QStringLiteral("peft"));
        d.selectRun(finished);  // the Runs tab's Export… preselects its run
        QCOMPARE(d.runDir(), finished);
        d.selectRun(cancelled);
        QCOMPARE(d.runDir(), cancelled);
    }

    void mergeDeltasAddsATransferRow() {
        // File > Merge Deltas: the dialog needs two ticked deltas; the merge runs on a worker and
        // its PEFT folder becomes a row of the Transfer tab's next matrix.
        QTemporaryDir dir;
        const TabsWorkDir work(dir.filePath("work"));
        Workbench session;
        TrainingTab training(&session);
        TransferTab transfer(&session, &training);
        DeltaFiles files(&session, &training);
        QObject::connect(&files, &DeltaFiles::merged, &transfer, &TransferTab::addDeltaRow);
        const QString root = dttest::hf(QStringLiteral("peft/bert-seqcls-merge"));
        MergeDeltasDialog dialog({root + "/a", root + "/b"}, {QStringLiteral("a"), QStringLiteral("b")});
        QPushButton* ok = dialog.findChild<QDialogButtonBox*>()->button(QDialogButtonBox::Ok);
        QVERIFY(!ok->isEnabled());
        dialog.setSource(0, true, 0.7);
        QVERIFY(!ok->isEnabled());
        dialog.setSource(1, true, 0.5);
        QVERIFY(ok->isEnabled());
        dialog.setCombination(QStringLiteral("cat"));
        const dt::MergeOptions o = dialog.options();
        QCOMPARE(o.weights, (std::vector<double>{0.7, 0.5}));
        QCOMPARE(o.combination, std::string("cat"));
        QVERIFY(!files.mergeDeltas(o, QStringLiteral("ab")));  // no model open
        session.setModel(nullptr, dttest::hf(QStringLiteral("bert-seqcls")));
        QSignalSpy merged(&files, &DeltaFiles::merged);
        QSignalSpy failed(&files, &DeltaFiles::mergeFailed);
        QVERIFY(files.mergeDeltas(o, QStringLiteral("ab")));
        QVERIFY(files.isMerging());
        QTRY_VERIFY_WITH_TIMEOUT(merged.size() + failed.size() > 0, 60000);
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(0).toString()));
        const QString folder = merged.first().at(1).toString();
        QVERIFY(folder.startsWith(dir.filePath("work/merged/ab")));
        const auto cfg = dt::json::load_file((folder + "/adapter_config.json").toStdString());
        QCOMPARE(cfg["r"].get<int>(), 8);  // cat: 4 + 4, as PEFT's merged-cat
        QCOMPARE(transfer.deltaRows().size(), 1);
        QCOMPARE(transfer.deltaRows().first(), qMakePair(QStringLiteral("ab"), folder));
    }

    void exportAndImportRunOnTheWorkerAndFailVisibly() {
        QTemporaryDir dir;
        Workbench session;
        TrainingTab training(&session);
        DeltaFiles files(&session, &training);
        QSignalSpy status(&session, &Workbench::statusMessage);
        QVERIFY(!files.exportLastRun(QStringLiteral("peft"), dir.filePath("out")));  // no run yet
        QVERIFY(session.lastError().contains(QStringLiteral("No finished run")));
        // A run that fails at once leaves a run folder without a checkpoint: the export starts in the
        // background and its failure comes back as a signal and a status message.
        QSignalSpy trainFailed(training.controller(), &TrainingController::failed);
        dttest::writeBytes(dir.filePath("bad.json"), R"({"model": "tiny-bert", "task": {"train": "none.jsonl"}, "delta": "loraa"})");
        QVERIFY(training.startTraining(dir.filePath("bad.json"), dir.filePath("run")));
        QVERIFY(trainFailed.wait(60000));
        QSignalSpy exportFailed(&files, &DeltaFiles::exportFailed);
        QSignalSpy exported(&files, &DeltaFiles::exported);
        QVERIFY(files.exportLastRun(QStringLiteral("peft"), dir.filePath("out")));
        QVERIFY(files.isExporting());
        QVERIFY(!files.exportLastRun(QStringLiteral("peft"), dir.filePath("out2")));  // one export at a time
        QVERIFY(exportFailed.wait(60000));
        QVERIFY(exported.isEmpty());
        QVERIFY(!files.isExporting());
        QCOMPARE(session.lastError(), exportFailed.first().at(0).toString());
        // Import: refused at once without a model or for a folder that is no delta; a delta folder
        // that does not fit is checked in the worker, and the session keeps what it had.
        QVERIFY(!files.importDelta(dir.path()));
        session.setModel(nullptr, QStringLiteral("tiny-bert"));
        QVERIFY(!files.importDelta(dir.path()));
        QVERIFY(session.lastError().contains(QStringLiteral("not an exported delta")));
        QDir().mkpath(dir.filePath("broken"));
        dttest::writeBytes(dir.filePath("broken/adapter_config.json"), R"({"peft_type": "LORA", "r": 8, "target_modules": ["query"]})");
        QSignalSpy imported(&files, &DeltaFiles::imported);
        QSignalSpy importFailed(&files, &DeltaFiles::importFailed);
        const int messages = status.size();
        QVERIFY(files.importDelta(dir.filePath("broken")));
        QVERIFY(files.isImporting());
        QVERIFY(importFailed.isEmpty() && imported.isEmpty());  // the window is free while the model loads
        QVERIFY(importFailed.wait(60000));
        QVERIFY(imported.isEmpty());
        QVERIFY(session.importedDelta().isEmpty());
        QCOMPARE(session.modelSource(), QStringLiteral("tiny-bert"));
        QCOMPARE(session.lastError(), importFailed.first().at(0).toString());
        QVERIFY(status.size() > messages);
    }
};

DT_REGISTER_TEST(TestTabs);
#include "test_tabs.moc"
