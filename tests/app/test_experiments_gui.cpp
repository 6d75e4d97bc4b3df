// The workbench on the built-in demo: it opens the pretrained demo model and lists the demo tasks;
// Start trains the method panel's delta on a demo task in the worker thread; the Experiments tab
// fills a transfer heatmap from the worker, and its cells, matrix.json and matrix.csv agree. PNGs
// are written for a person to look at.
#include "test_registry.h"
#include "test_util.h"

#include "compare_tab.h"
#include "delta_files.h"
#include "delta_tab.h"
#include "experiment_controller.h"
#include "method_comparison_view.h"
#include "task_panel.h"
#include "heatmap_view.h"
#include "qcustomplot_compat.h"
#include "data_inspector.h"
#include "main_window.h"

#include <QTableWidget>
#include "training_controller.h"
#include "training_tab.h"
#include "transfer_tab.h"
#include "workbench.h"

#include "experiments/comparison.h"
#include "experiments/experiments.h"
#include "io/json_util.h"

#include <QDir>
#include <QFile>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <fstream>

class TestExperimentsGui : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void demoIsFoundAndTrains() {
        QVERIFY2(!Workbench::demoModel().isEmpty(), "resources/demo/models/synth-bert-small is missing");
        QCOMPARE(Workbench::demoTasks().size(), 9);
        QTemporaryDir dir;
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        QVERIFY(w.openModel(Workbench::demoModel()));
        QVERIFY(!w.workbench()->deltaSpecJson().isEmpty());  // LoRA with the defaults is valid
        QSignalSpy finished(w.trainingTab()->controller(), &TrainingController::finished);
        QSignalSpy evals(w.trainingTab()->controller(), &TrainingController::evaluated);
        const QString news = Workbench::demoTasks()[3];
        QVERIFY(news.endsWith(QStringLiteral("news/task.json")));
        QVERIFY(w.trainingTab()->startTaskTraining(news, 60, 0.005, dir.filePath("run")));
        QVERIFY(finished.wait(120000));
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("finished"));
        QVERIFY(!evals.isEmpty());
        QVERIFY(QFile::exists(dir.filePath("run/spec.json")));
        QVERIFY(QFile::exists(dir.filePath("run/checkpoints/final/trainable.safetensors")));
        // The topic task is one the pretrained demo model knows: the delta ends well above chance (0.25).
        const double acc = evals.last().at(1).toMap().value(QStringLiteral("accuracy")).toDouble();
        QVERIFY2(acc > 0.6, qPrintable(QString::number(acc)));
        // The Delta tab was refreshed during the run: LoRA's default targets (query, value) in both
        // layers, every cell a positive number.
        QTest::qWait(50);
        DeltaTab* d = w.deltaTab();
        QCOMPARE(d->updates(), 2 * (60 / 5));
        for (HeatmapView* h : {d->magnitudes(), d->gradients()}) {
            QCOMPARE(h->rowCount(), 2);
            QCOMPARE(h->colCount(), 2);
            for (int r = 0; r < 2; ++r)
                for (int c = 0; c < 2; ++c) QVERIFY(h->hasCell(r, c) && h->cell(r, c) > 0);
        }
        w.tabs()->setCurrentWidget(d);
        QTest::qWait(100);
        w.grab().save(QDir(DT_BUILD_DIR).filePath("workbench-delta.png"));
        // File > Export Delta in the background, then File > Import Delta of the export: the next
        // run starts from it (its spec names the folder), and a folder that is no delta is refused.
        QSignalSpy exported(w.deltaFiles(), &DeltaFiles::exported);
        QVERIFY(w.deltaFiles()->exportLastRun(QStringLiteral("peft"), dir.filePath("peft")));
        QVERIFY(exported.wait(60000));
        QVERIFY(QFile::exists(dir.filePath("peft/adapter_model.safetensors")));
        QVERIFY(QFile::exists(dir.filePath("peft/adapter_config.json")));
        QVERIFY(!w.deltaFiles()->importDelta(dir.filePath("run")));
        QVERIFY(w.lastError().contains(QStringLiteral("not an exported delta")));
        QSignalSpy imported(w.deltaFiles(), &DeltaFiles::imported);  // the model is loaded to check it in a worker thread
        QVERIFY(w.deltaFiles()->importDelta(dir.filePath("peft")));
        QVERIFY(imported.wait(60000));
        QVERIFY(w.trainingTab()->startTaskTraining(news, 5, 0.005, dir.filePath("run2")));
        QVERIFY(finished.wait(120000));
        const auto saved = dt::json::load_file(dir.filePath("run2/spec.json").toStdString());
        QCOMPARE(QString::fromStdString(saved["delta"].get<std::string>()), dir.filePath("peft"));
        // Layer ablation of that run, in the worker thread, into the heatmap: a 2x2 upper triangle.
        QSignalSpy done(w.transferTab()->experiments(), &ExperimentController::finished);
        QVERIFY(!w.transferTab()->startAblation(dir.filePath("nothing-here")));
        QVERIFY(w.transferTab()->startAblation(dir.filePath("run"), dir.filePath("ablation")));
        QVERIFY(done.wait(120000));
        HeatmapView* h = w.transferTab()->heatmap();
        QCOMPARE(h->rowCount(), 2);
        QVERIFY(h->hasCell(0, 0) && h->hasCell(0, 1) && h->hasCell(1, 1));
        QVERIFY(!h->hasCell(1, 0));
        const auto j = dt::json::load_file(dir.filePath("ablation/matrix.json").toStdString());
        QCOMPARE(h->cell(0, 1), j["value"][0][1].get<double>());
        QCOMPARE(h->cell(0, 1), j["without_delta"].get<double>());  // removed everywhere = the base model
        QCOMPARE(h->plot()->yAxis->label(), QStringLiteral("delta removed from layer"));
        QCOMPARE(h->plot()->xAxis->label(), QStringLiteral("through layer"));
        QVERIFY(h->savePng(QDir(DT_BUILD_DIR).filePath("ablation-heatmap.png"), 600, 450));
    }

    void transferHeatmapFillsLiveAndMatchesTheFiles() {
        QTemporaryDir dir;
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        QVERIFY(w.openModel(Workbench::demoModel()));
        const QStringList all = Workbench::demoTasks();
        const QStringList tasks = {all[0], all[1], all[3]};  // reviews, opinions, news
        QSignalSpy cells(w.transferTab()->experiments(), &ExperimentController::cell);
        QSignalSpy finished(w.transferTab()->experiments(), &ExperimentController::finished);
        QVERIFY(w.transferTab()->startTransfer(tasks, 20, dir.filePath("exp")));
        QVERIFY(!w.transferTab()->startTransfer(tasks, 20, dir.filePath("other")));  // one experiment at a time
        QVERIFY(finished.wait(180000));
        QCOMPARE(cells.size(), 12);
        HeatmapView* h = w.transferTab()->heatmap();
        QCOMPARE(h->plot()->xAxis->label(), QStringLiteral("evaluated on"));
        QCOMPARE(h->rowCount(), 4);
        QCOMPARE(h->colCount(), 3);
        const auto m = dt::ResultMatrix::from_json(dt::json::load_file(dir.filePath("exp/matrix.json").toStdString()), "matrix.json");
        for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 3; ++c) {
                QVERIFY(h->hasCell(r, c));
                QCOMPARE(h->cell(r, c), m.at(static_cast<std::size_t>(r), static_cast<std::size_t>(c)));
                QCOMPARE(h->cellText(r, c), HeatmapView::cellLabel(m.at(static_cast<std::size_t>(r), static_cast<std::size_t>(c)), static_cast<int>(m.cols.size())));
                QVERIFY(h->toolTipAt(r, c).contains(QStringLiteral("accuracy")));
            }
        // The widget's CSV export and the engine's CSV carry the same values.
        const QStringList widgetCsv = h->toCsv().split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        QCOMPARE(widgetCsv.size(), 5);
        for (int r = 0; r < 4; ++r) {
            const QStringList f = widgetCsv[r + 1].split(QLatin1Char(','));
            for (int c = 0; c < 3; ++c) QVERIFY(std::abs(f[c + 1].toDouble() - m.at(static_cast<std::size_t>(r), static_cast<std::size_t>(c))) < 1e-5);
        }
        QVERIFY(h->savePng(QDir(DT_BUILD_DIR).filePath("transfer-heatmap.png"), 900, 600));
        QVERIFY(h->savePdf(dir.filePath("heatmap.pdf")));
        QVERIFY(QFile(dir.filePath("heatmap.pdf")).size() > 1000);
        auto* tabs = qobject_cast<QTabWidget*>(w.centralWidget());
        QVERIFY(tabs);
        tabs->setCurrentIndex(2);
        QTest::qWait(100);
        w.grab().save(QDir(DT_BUILD_DIR).filePath("workbench-experiments.png"));
    }

    void transferShowsProgressAndKeepsRowsAfterStop() {
        // The old matrix goes at once; training reports "delta i/N, step s/S"; rows fill as their
        // deltas finish, and a stop keeps them.
        QTemporaryDir dir;
        MainWindow w;
        QVERIFY(w.openModel(Workbench::demoModel()));
        const QStringList all = Workbench::demoTasks();
        QSignalSpy cells(w.transferTab()->experiments(), &ExperimentController::cell);
        QSignalSpy finished(w.transferTab()->experiments(), &ExperimentController::finished);
        HeatmapView* h = w.transferTab()->heatmap();
        h->setMatrix({"old"}, {"old"});
        QVERIFY(w.transferTab()->startTransfer({all[0], all[1], all[3]}, 60, dir.filePath("exp")));
        QCOMPARE(h->rowCount(), 0);  // not the previous matrix
        QTRY_VERIFY_WITH_TIMEOUT(cells.size() >= 6, 180000);  // the base's row and the first delta's
        w.transferTab()->experiments()->stop();
        QVERIFY(finished.wait(180000));
        QCOMPARE(finished.last().at(0).toBool(), true);
        QVERIFY2(w.transferTab()->progress().startsWith(QStringLiteral("Transfer: training delta ")), qPrintable(w.transferTab()->progress()));
        QVERIFY2(w.transferTab()->progress().contains(QStringLiteral("/60")), qPrintable(w.transferTab()->progress()));
        QCOMPARE(h->rowCount(), 4);
        for (int r = 0; r < 2; ++r)
            for (int c = 0; c < 3; ++c) QVERIFY2(h->hasCell(r, c), qPrintable(QStringLiteral("cell %1,%2 lost after stop").arg(r).arg(c)));
        QVERIFY(!h->hasCell(3, 0));  // the news delta was never trained
    }

    void compareTabRunsStopsAndContinues() {
        // Three methods on a demo task in the worker thread: stopped after the first finished
        // method, then continued; the view's points, Pareto marks and CSV agree with comparison.json.
        QTemporaryDir dir;
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        QVERIFY(w.openModel(Workbench::demoModel()));
        CompareTab* tab = w.compareTab();
        QString task;
        for (const QString& t : Workbench::demoTasks())
            if (t.contains(QStringLiteral("/negation/"))) task = t;
        QVERIFY(!task.isEmpty());
        const QStringList methods = {QStringLiteral("lora"), QStringLiteral("bitfit"), QStringLiteral("prefix")};
        QSignalSpy finished(tab, &CompareTab::finished);
        QSignalSpy lines(tab, &CompareTab::logLine);
        QVERIFY(tab->start(task, methods, 3000, 20, dir.filePath("cmp")));
        QVERIFY(!tab->start(task, methods, 3000, 20, dir.filePath("cmp")));  // one at a time
        // Stop as soon as the first method has finished.
        QTRY_VERIFY_WITH_TIMEOUT(tab->view()->hasResult(QStringLiteral("lora")), 120000);
        tab->stop();
        QVERIFY(finished.wait(120000));
        QCOMPARE(finished.last().at(0).toBool(), true);
        QVERIFY(!tab->view()->hasResult(QStringLiteral("prefix")));
        QVERIFY(tab->start(task, methods, 3000, 20, dir.filePath("cmp")));
        QVERIFY(finished.wait(120000));
        QCOMPARE(finished.last().at(0).toBool(), false);
        const auto j = dt::json::load_file(dir.filePath("cmp/comparison.json").toStdString());
        QCOMPARE(j["methods"].size(), std::size_t(3));
        MethodComparisonView* v = tab->view();
        QCOMPARE(v->methods(), methods);
        for (const auto& m : j["methods"]) {
            const QString name = QString::fromStdString(m["name"].get<std::string>());
            QVERIFY(v->hasResult(name));
            QCOMPARE(v->isPareto(name), m["pareto"].get<bool>());
            QCOMPARE(v->curvePoints(name), static_cast<int>(m["curve"].size()));
            QCOMPARE(v->curvePoints(name), 10);
            QVERIFY(v->toCsv().contains(QStringLiteral("%1,%2,").arg(name).arg(m["trainable_params"].get<qint64>())));
        }
        // The budget was matched: LoRA and prefix near 3000 trainable parameters.
        QVERIFY(std::llabs(j["methods"][0]["trainable_params"].get<qint64>() - 3000) < 600);
        QVERIFY(std::llabs(j["methods"][2]["trainable_params"].get<qint64>() - 3000) < 600);
        QVERIFY(v->savePng(QDir(DT_BUILD_DIR).filePath("method-comparison.png")));
        QVERIFY(v->saveCsv(dir.filePath("c.csv")) && v->savePdf(dir.filePath("c.pdf")));
        QVERIFY(QFile(dir.filePath("c.pdf")).size() > 1000);
        v->setTimeAxis(true);
        w.tabs()->setCurrentWidget(tab);
        QTest::qWait(100);
        w.grab().save(QDir(DT_BUILD_DIR).filePath("workbench-compare.png"));
    }

    void taskPanelTrainsOnACsvFile() {
        // The user's own CSV (the demo reviews with other column names and labels): preview, field
        // mapping, label words, then a real run from the Training tab; then the same data with a
        // classification head. A malformed file is refused naming file and line.
        QTemporaryDir dir;
        QString csv = QStringLiteral("id,sentence,sentiment\n");
        std::ifstream in((Workbench::demoDir() + QStringLiteral("/tasks/reviews/train.jsonl")).toStdString());
        std::string line;
        int n = 0;
        while (std::getline(in, line) && n < 300) {
            const auto j = nlohmann::json::parse(line);
            csv += QStringLiteral("%1,\"%2\",%3\n").arg(n++).arg(QString::fromStdString(j["text"].get<std::string>()),
                                                          j["label"] == "positive" ? QStringLiteral("pos") : QStringLiteral("neg"));
        }
        dttest::writeBytes(dir.filePath("mine.csv"), csv.toUtf8());
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        QVERIFY(w.openModel(Workbench::demoModel()));
        TaskPanel* t = w.taskPanel();
        QVERIFY(t->loadFile(dir.filePath("mine.csv")));
        QCOMPARE(t->columns(), (QStringList{QStringLiteral("id"), QStringLiteral("sentence"), QStringLiteral("sentiment")}));
        QCOMPARE(t->previewRows(), 10);
        t->setFields(QStringLiteral("sentence"), QString(), QStringLiteral("sentiment"));
        QCOMPARE(t->labels(), (QStringList{QStringLiteral("neg"), QStringLiteral("pos")}));
        t->setTemplate(QStringLiteral("{text} overall it was [MASK] ."));
        t->setLabelWord(QStringLiteral("neg"), QStringLiteral("bad"));
        t->setLabelWord(QStringLiteral("pos"), QStringLiteral("good"));
        const auto j = t->taskJson();
        QCOMPARE(j["label_words"], nlohmann::json({{"neg", "bad"}, {"pos", "good"}}));
        // The dataset inspector: 300 examples, both labels counted, the mask highlighted as the scored token.
        QVERIFY2(w.inspectTaskData(), qPrintable(w.lastError()));
        QVERIFY(w.dataInspector()->isVisible());
        QVERIFY2(w.dataInspector()->summary().contains(QLatin1String("300 examples")), qPrintable(w.dataInspector()->summary()));
        QCOMPARE(w.dataInspector()->labelTable()->rowCount(), 2);
        QCOMPARE(w.dataInspector()->labelTable()->item(0, 1)->text().toInt() + w.dataInspector()->labelTable()->item(1, 1)->text().toInt(), 300);
        QVERIFY(w.dataInspector()->exampleHtml().contains(QLatin1String("[MASK]</span>")));
        QVERIFY(w.dataInspector()->exampleHtml().contains(QLatin1String("overall it was")));
        QVERIFY(w.dataInspector()->window()->grab().save(QDir(DT_BUILD_DIR).filePath("data-inspector.png")));
        QCOMPARE(j["fields"], nlohmann::json({{"text", "sentence"}, {"label", "sentiment"}}));
        const QString task = w.trainingTab()->useTaskData(w.taskPanel());
        QVERIFY2(!task.isEmpty(), qPrintable(w.lastError()));
        QSignalSpy finished(w.trainingTab()->controller(), &TrainingController::finished);
        QSignalSpy evals(w.trainingTab()->controller(), &TrainingController::evaluated);
        QVERIFY(w.trainingTab()->startTaskTraining(task, 30, 0.01, dir.filePath("run")));
        QVERIFY(finished.wait(120000));
        QCOMPARE(finished.last().at(0).toString(), QStringLiteral("finished"));
        QVERIFY(!evals.isEmpty() && evals.last().at(1).toMap().contains(QStringLiteral("accuracy")));
        // A classification head instead: the run spec loads the sequence-classification sibling and
        // trains and saves the head with the delta.
        t->setLabelWords(false);
        QVERIFY(!t->taskJson().contains("label_words"));
        const QString headTask = w.trainingTab()->useTaskData(w.taskPanel());
        QVERIFY(!headTask.isEmpty());
        QVERIFY(w.trainingTab()->startTaskTraining(headTask, 10, 0.01, dir.filePath("head")));
        QVERIFY(finished.wait(120000));
        QCOMPARE(finished.last().at(0).toString(), QStringLiteral("finished"));
        const auto spec = dt::json::load_file(dir.filePath("head/spec.json").toStdString());
        QCOMPARE(spec["architecture"].get<std::string>(), std::string("BertForSequenceClassification"));
        QCOMPARE(spec["delta"]["modules_to_save"], nlohmann::json({"classifier"}));
        t->setLabelWords(true);
        w.tabs()->setCurrentWidget(t);
        QTest::qWait(100);
        w.grab().save(QDir(DT_BUILD_DIR).filePath("workbench-task-data.png"));
        // Same column for text and label, and a broken file.
        t->setFields(QStringLiteral("sentence"), QString(), QStringLiteral("sentence"));
        QVERIFY(!t->validate());
        dttest::writeBytes(dir.filePath("bad.jsonl"), "{\"text\": \"ok\", \"label\": \"a\"}\n{broken\n");
        QVERIFY(!t->loadFile(dir.filePath("bad.jsonl")));
        QVERIFY2(t->error().contains(QStringLiteral("bad.jsonl:2")), qPrintable(t->error()));
        QCOMPARE(t->columns().size(), 3);  // the panel kept the good file
    }

    void emptyCellsStayEmpty() {
        HeatmapView h;
        h.setMatrix({QStringLiteral("a"), QStringLiteral("b")}, {QStringLiteral("x"), QStringLiteral("y")});
        h.setCell(0, 1, 0.5);
        h.setCell(1, 0, std::nan(""), QStringLiteral("label sets differ"));
        QVERIFY(h.hasCell(0, 1));
        QVERIFY(!h.hasCell(0, 0));
        QVERIFY(!h.hasCell(1, 0));
        QCOMPARE(h.cellText(1, 0), QString());
        QVERIFY(h.toolTipAt(1, 0).contains(QStringLiteral("label sets differ")));
        QVERIFY(h.toolTipAt(0, 0).contains(QStringLiteral("not computed")));
        QCOMPARE(h.toCsv(), QStringLiteral("row,x,y\na,,0.5\nb,,\n"));
        QCOMPARE(h.cellText(0, 1), QStringLiteral("0.50"));  // two columns: room for the zero
        // Nine columns: no leading zero, but a value that rounds to 1 keeps its digit.
        QCOMPARE(HeatmapView::cellLabel(0.834, 9), QStringLiteral(".83"));
        QCOMPARE(HeatmapView::cellLabel(-0.25, 9), QStringLiteral("-.25"));
        QCOMPARE(HeatmapView::cellLabel(0.996, 9), QStringLiteral("1.00"));
        QCOMPARE(HeatmapView::cellLabel(0.834, 6), QStringLiteral("0.83"));
    }
};

DT_REGISTER_TEST(TestExperimentsGui);
#include "test_experiments_gui.moc"
