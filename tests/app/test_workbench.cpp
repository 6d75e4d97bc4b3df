// The workbench window: opens the built-in model and a HF folder, survives bad input, and renders
// (a PNG is written next to the tests for a person to look at).
#include "test_registry.h"

#include "budget_chart.h"
#include "main_window.h"
#include "test_util.h"
#include "method_panel.h"
#include "model_panel.h"
#include "module_tree_model.h"
#include "model_controller.h"
#include "training_tab.h"
#include "workbench.h"
#include <QDockWidget>
#include <QMenu>
#include <QMenuBar>
#include <QScrollBar>
#include <QPlainTextEdit>
#include <QScreen>
#include <QTabWidget>

#include "io/json_util.h"
#include "train/run_spec.h"

#include <nlohmann/json.hpp>

#include <QDropEvent>
#include <QFile>
#include <QFormLayout>
#include <QMimeData>
#include <QTemporaryDir>
#include <QUrl>
#include <QSpinBox>
#include <QApplication>
#include <QImage>
#include <QProcess>
#include <QSet>
#include <QFileInfo>
#include <QLocale>
#include <QPushButton>
#include <QTest>
#include <QTreeView>

namespace {

// LoRA ticked on tiny-bert's four query projections.
void loraOnFourQueries(MainWindow& w) {
    w.methodPanel()->setMethod(QStringLiteral("lora"));
    QStringList queries;
    for (int l = 0; l < 4; ++l) queries << QStringLiteral("bert.encoder.layer.%1.attention.self.query").arg(l);
    w.modelPanel()->model()->setCheckedPaths(queries);
}

}  // namespace

class TestWorkbench : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void opensModelsAndKeepsRunningOnBadInput() {
        MainWindow w;
        QVERIFY(w.openModel(QStringLiteral("tiny-bert")));
        QCOMPARE(QString::fromStdString(w.modelPanel()->model()->tree().architecture()), QStringLiteral("BertForMaskedLM"));
        QVERIFY(!w.openModel(QStringLiteral("/no/such/model")));
        QVERIFY(w.lastError().contains("/no/such/model"));
        QTemporaryDir notModel;  // a folder without config.json says what a model folder needs
        QVERIFY(!w.openModel(notModel.path()));
        QVERIFY2(w.lastError().contains(QLatin1String("not a model folder")) && w.lastError().contains(QLatin1String("config.json")),
                 qPrintable(w.lastError()));
        // the previous model is still there
        QCOMPARE(QString::fromStdString(w.modelPanel()->model()->tree().architecture()), QStringLiteral("BertForMaskedLM"));
        QVERIFY(w.openModel(dttest::dataDir() + "/hf/roberta-mlm"));
        QCOMPARE(QString::fromStdString(w.modelPanel()->model()->tree().architecture()), QStringLiteral("RobertaForMaskedLM"));
        w.modelPanel()->model()->setCheckedPaths({"roberta.encoder.layer.0.attention.self.query"});
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QVERIFY(w.grab().save(QStringLiteral(DT_BUILD_DIR "/workbench.png")));
    }

    // The window fits a 1280x720 screen with its three docks shown (its minimum was 1574x744): the
    // method form and Task Data scroll, task combos elide, heatmaps take less room. Also with the
    // demo T5, whose task names are the longest.
    void fitsA1280x720Screen() {
        for (const QString& model : {Workbench::demoModel(), Workbench::demoDir() + QStringLiteral("/models/synth-t5-small")}) {
            MainWindow w;
            QVERIFY(w.openModel(model));
            w.show();
            QVERIFY(QTest::qWaitForWindowExposed(&w));
            const QSize min = w.minimumSizeHint().expandedTo(w.minimumSize());
            QVERIFY2(min.width() <= 1280 && min.height() <= 690, qPrintable(QStringLiteral("%1x%2").arg(min.width()).arg(min.height())));
            // And a 1024x700 one, the docks narrowed.
            QVERIFY2(min.width() <= 1024, qPrintable(QStringLiteral("%1").arg(min.width())));
            for (QDockWidget* d : w.findChildren<QDockWidget*>()) QVERIFY2(d->isVisible(), qPrintable(d->windowTitle()));
        }
        // A geometry saved on a bigger screen comes back inside this one.
        MainWindow w;
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        w.setGeometry(-400, -300, 5000, 4000);
        w.clampToScreen();
        const QRect avail = w.screen()->availableGeometry();
        QVERIFY2(w.geometry().left() >= avail.left() && w.geometry().top() >= avail.top(),
                 qPrintable(QStringLiteral("%1,%2").arg(w.geometry().left()).arg(w.geometry().top())));
        QVERIFY(w.geometry().width() <= std::max(avail.width(), w.minimumSizeHint().width()));
        QVERIFY(w.geometry().height() <= std::max(avail.height(), w.minimumSizeHint().height()));
    }

    // The log follows its newest line; the Help menu has its four entries.
    void logFollowsItsEndAndHelpIsThere() {
        MainWindow w;
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        auto* log = w.findChild<QPlainTextEdit*>(QStringLiteral("log"));
        QVERIFY(log);
        for (int i = 0; i < 300; ++i) w.workbench()->log(QStringLiteral("line %1").arg(i));
        QVERIFY(log->verticalScrollBar()->maximum() > 0);
        QCOMPARE(log->verticalScrollBar()->value(), log->verticalScrollBar()->maximum());
        QMenu* help = nullptr;
        for (QAction* a : w.menuBar()->actions())
            if (a->text() == QStringLiteral("&Help")) help = a->menu();
        QVERIFY(help);
        QStringList items;
        for (QAction* a : help->actions()) items << a->text().remove(QLatin1Char('&'));
        QCOMPARE(items, (QStringList{"Getting Started", "Documentation", "Keyboard Shortcuts", "About DeltaTune"}));
    }

    void budgetFollowsTicksAndMethod() {
        MainWindow w;
        QVERIFY(w.openModel(QStringLiteral("tiny-bert")));
        loraOnFourQueries(w);
        QTRY_COMPARE(w.models()->budgetText(), QStringLiteral("4096 trainable"));  // 4 x r (64 + 64), r = 8
        QCOMPARE(w.models()->targetModules(), QStringLiteral("[\"query\"]"));  // the short name selects exactly the ticks
        w.modelPanel()->model()->setCheckedPaths({});
        QTRY_COMPARE(w.models()->budgetText(), QStringLiteral("8192 trainable"));  // defaults: query and value
        w.methodPanel()->setMethod(QStringLiteral("bitfit"));
        QTRY_COMPARE(w.models()->budgetText(), QStringLiteral("4032 trainable"));
        // BitFit places itself: with modules ticked the panel says the ticks are not used.
        loraOnFourQueries(w);
        w.methodPanel()->setMethod(QStringLiteral("bitfit"));
        QTRY_VERIFY2(w.modelPanel()->summaryText().contains(QLatin1String("not used by bitfit")), qPrintable(w.modelPanel()->summaryText()));
        // Prefix tuning's table serves every layer: the chart spreads it over the 4 layers, nothing under "other".
        QTRY_COMPARE(w.models()->budgetText(), QStringLiteral("4032 trainable"));
        w.methodPanel()->setMethod(QStringLiteral("prefix"));
        QTRY_VERIFY(w.models()->budgetText() != QStringLiteral("4032 trainable"));
        QCOMPARE(w.methodPanel()->budgetChart()->groups().size(), 5);
        const BudgetChart* chart = w.methodPanel()->budgetChart();
        QVERIFY(chart->total(0) > 0);
        QCOMPARE(chart->total(4), 0.0);
        QCOMPARE(chart->total(0), chart->total(3));
        w.methodPanel()->setMethod(QStringLiteral("lora"));
        QTRY_VERIFY(!w.modelPanel()->summaryText().contains(QLatin1String("not used")));
        w.methodPanel()->setMethod(QStringLiteral("last_layers"));
        auto* spin = w.methodPanel()->findChild<QSpinBox*>();
        QVERIFY(spin);
        spin->setValue(9);
        QTRY_VERIFY(w.models()->budgetText().contains("num_layers"));  // 4 blocks only: the engine's message, inline
        loraOnFourQueries(w);
        w.resize(1280, 800);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QTest::qWait(50);
        QVERIFY(w.grab().save(QStringLiteral(DT_BUILD_DIR "/workbench_budget.png")));
    }

    void screenshotCommandWritesAnImage() {
        // The README's look-at-it command, as a user runs it: a real process, offscreen, after a
        // few training steps on a demo task, showing the Delta tab.
        if (Workbench::demoModel().isEmpty()) QSKIP("no demo model");
        QTemporaryDir dir;
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
        env.insert(QStringLiteral("DELTATUNE_WORK_DIR"), dir.filePath("work"));
        env.insert(QStringLiteral("XDG_CONFIG_HOME"), dir.filePath("config"));
        p.setProcessEnvironment(env);
        p.start(QStringLiteral(DT_WORKBENCH_PATH), {QStringLiteral("--screenshot"), dir.filePath("shot.png"), QStringLiteral("--train-steps"),
                                                     QStringLiteral("10"), QStringLiteral("--tab"), QStringLiteral("Delta")});
        QVERIFY(p.waitForFinished(120000));
        QCOMPARE(p.exitCode(), 0);
        QImage img(dir.filePath("shot.png"));
        QVERIFY(!img.isNull());
        QVERIFY(img.width() >= 800 && img.height() >= 600);
        // Not a blank image: the window drew many colours.
        QSet<QRgb> colours;
        for (int y = 0; y < img.height(); y += 7)
            for (int x = 0; x < img.width(); x += 7) colours.insert(img.pixel(x, y));
        QVERIFY(colours.size() > 50);
        QVERIFY(QFile::exists(dir.filePath("work")));  // the run went to the work folder
    }

    void methodsCombine() {
        // LoRA on the four query projections set aside, then BitFit in the form: one delta with both,
        // counted together; removing the LoRA leaves BitFit alone. A clash is shown inline.
        MainWindow w;
        QVERIFY(w.openModel(QStringLiteral("tiny-bert")));
        loraOnFourQueries(w);
        QTRY_COMPARE(w.models()->budgetText(), QStringLiteral("4096 trainable"));
        Q_EMIT w.methodPanel()->combineRequested();
        QCOMPARE(w.methodPanel()->combination().size(), std::size_t(1));
        QVERIFY(w.modelPanel()->model()->checkedPaths().isEmpty());
        // The form still shows LoRA with nothing ticked: it adds nothing (no clash with itself).
        QTRY_VERIFY2(w.models()->targetsNote().contains(QStringLiteral("the combination alone")), qPrintable(w.models()->targetsNote()));
        QCOMPARE(w.models()->budgetText(), QStringLiteral("4096 trainable"));
        w.methodPanel()->setMethod(QStringLiteral("bitfit"));
        QTRY_COMPARE(w.models()->budgetText(), QStringLiteral("8128 trainable"));  // 4096 + BitFit's 4032
        w.resize(1280, 800);
        w.show();
        QTest::qWait(100);
        w.grab().save(QStringLiteral(DT_BUILD_DIR "/workbench_combination.png"));
        const auto spec = nlohmann::json::parse(w.workbench()->deltaSpecJson().toStdString());
        QCOMPARE(spec["methods"].size(), std::size_t(2));
        QCOMPARE(spec["methods"][0]["method"].get<std::string>(), std::string("lora"));
        QCOMPARE(spec["methods"][0]["target_modules"].size(), std::size_t(4));
        // LoRA twice on the same modules is refused, naming the module.
        loraOnFourQueries(w);
        QTRY_VERIFY(w.models()->budgetText().contains(QStringLiteral("already has LoRA")));
        // The Remove button (no double-click needed) takes the combined LoRA out.
        QPushButton* remove = nullptr;
        for (auto* b : w.methodPanel()->findChildren<QPushButton*>())
            if (b->text() == QStringLiteral("Remove from Combination")) remove = b;
        QVERIFY(remove && remove->isVisibleTo(w.methodPanel()));
        remove->click();
        QVERIFY(w.methodPanel()->combination().empty());
        QVERIFY(!remove->isVisibleTo(w.methodPanel()));
        QTRY_COMPARE(w.models()->budgetText(), QStringLiteral("4096 trainable"));
    }

    void trainableColumnFollowsTheDelta() {
        MainWindow w;
        QVERIFY(w.openModel(QStringLiteral("tiny-bert")));
        w.methodPanel()->setMethod(QStringLiteral("lora"));
        w.modelPanel()->model()->setCheckedPaths({QStringLiteral("bert.encoder.layer.1.attention.self.query")});
        QTRY_COMPARE(w.models()->budgetText(), QStringLiteral("1024 trainable"));
        auto* m = w.modelPanel()->model();
        QCOMPARE(m->trainable(QStringLiteral("bert.encoder.layer.1.attention.self.query")), qint64(1024));
        QCOMPARE(m->trainable(QStringLiteral("bert.encoder.layer.1")), qint64(1024));
        QCOMPARE(m->trainable(QStringLiteral("bert.encoder.layer.0")), qint64(0));
        QCOMPARE(m->trainable(QStringLiteral("bert")), qint64(1024));
        const QModelIndex i = m->indexForPath(QStringLiteral("bert.encoder.layer.1.attention.self.query"));
        QCOMPARE(m->data(i.siblingAtColumn(ModuleTreeModel::TrainableColumn)).toString(), QLocale().toString(1024));
        QCOMPARE(m->headerData(ModuleTreeModel::TrainableColumn, Qt::Horizontal).toString(), QStringLiteral("Trainable"));
        w.modelPanel()->quickSelect(QStringLiteral("biases"));  // biases are parameters: BitFit
        QCOMPARE(w.methodPanel()->method(), QStringLiteral("bitfit"));
        QTRY_COMPARE(w.models()->budgetText(), QStringLiteral("4032 trainable"));
        QCOMPARE(m->trainable(QStringLiteral("bert.encoder.layer.1.attention.self.query")), qint64(64));  // its bias
    }

    void recentModelsDropAndSavedSpecs() {
        MainWindow w;
        QVERIFY(w.openModel(QStringLiteral("tiny-bert")));
        QVERIFY(w.openModel(dttest::dataDir() + "/hf/bert-mlm"));
        QVERIFY(w.openModel(QStringLiteral("tiny-bert")));
        const QStringList recent = w.recentModels();
        QVERIFY(recent.size() >= 2);
        QCOMPARE(recent[0], QStringLiteral("tiny-bert"));  // most recent first, no duplicates
        QCOMPARE(recent[1], QFileInfo(dttest::dataDir() + "/hf/bert-mlm").absoluteFilePath());
        QCOMPARE(recent.count(QStringLiteral("tiny-bert")), 1);
        // A folder dropped on the window opens as the model.
        QMimeData mime;
        mime.setUrls({QUrl::fromLocalFile(dttest::dataDir() + "/hf/roberta-mlm")});
        QVERIFY(w.acceptDrops());
        QVERIFY(w.openDropped(&mime));
        QCOMPARE(QString::fromStdString(w.modelPanel()->model()->tree().architecture()), QStringLiteral("RobertaForMaskedLM"));
        QMimeData text;
        text.setText(QStringLiteral("not a folder"));
        QVERIFY(!w.openDropped(&text));
        // Save Run Spec writes the JSON the CLI reads back, with the method panel's delta.
        if (Workbench::demoModel().isEmpty()) QSKIP("no demo tasks");
        QVERIFY(w.openModel(Workbench::demoModel()));
        w.methodPanel()->setMethod(QStringLiteral("ia3"));
        QTRY_VERIFY(w.workbench()->deltaSpecJson().contains(QStringLiteral("ia3")));
        QTemporaryDir dir;
        QVERIFY(w.trainingTab()->saveRunSpec(dir.filePath("run.json")));
        const dt::RunSpec spec = dt::RunSpec::load(dir.filePath("run.json").toStdString());
        QCOMPARE(QString::fromStdString(spec.delta.methods.at(0)["method"].get<std::string>()), QStringLiteral("ia3"));
        QCOMPARE(QString::fromStdString(spec.model), QFileInfo(Workbench::demoModel()).absoluteFilePath());
        QVERIFY(!spec.task_file.empty());
        QCOMPARE(spec.training.batch_size, std::int64_t(16));
    }

    void guiAndCliSpecsAreIdentical() {
        // The workbench and `deltatune spec` go through one run builder: for the same choices the
        // file Save Run Spec writes and the CLI's output are the same bytes, with a label-word task
        // and with a plain classification task (a head on the masked-LM model).
        if (Workbench::demoModel().isEmpty()) QSKIP("no demo model");
        MainWindow w;
        QVERIFY(w.openModel(Workbench::demoModel()));
        w.methodPanel()->setMethod(QStringLiteral("lora"));
        w.modelPanel()->model()->setCheckedPaths({QStringLiteral("bert.encoder.layer.0.attention.self.query"),
                                                  QStringLiteral("bert.encoder.layer.1.attention.self.value")});
        QTRY_VERIFY(w.workbench()->deltaSpecJson().contains(QStringLiteral("layer.1.attention.self.value")));
        QTemporaryDir dir;
        dttest::writeBytes(dir.filePath("delta.json"), w.workbench()->deltaSpecJson().toUtf8());
        QVERIFY(w.trainingTab()->saveRunSpec(dir.filePath("gui.json")));
        QFile gui(dir.filePath("gui.json"));
        QVERIFY(gui.open(QIODevice::ReadOnly));
        const QByteArray guiBytes = gui.readAll();
        const std::string task = dt::RunSpec::load(dir.filePath("gui.json").toStdString()).task_file;
        const QString lr = QString::number(dt::TrainingDefaults::lr, 'g', 17);
        const QStringList common = {"spec", "--model", Workbench::demoModel(), "--delta", dir.filePath("delta.json"),
                                    "--steps", QString::number(dt::TrainingDefaults::max_steps), "--lr", lr};
        auto r = dttest::runCli(common + QStringList{"--task", QString::fromStdString(task)});
        QCOMPARE(r.code, 0);
        QCOMPARE(r.out.toUtf8(), guiBytes);

        nlohmann::json plain = dt::json::load_file(task);
        plain.erase("label_words");
        plain.erase("template");
        const std::string taskDir = task.substr(0, task.find_last_of('/'));
        plain["train"] = taskDir + "/" + plain["train"].get<std::string>();
        plain["validation"] = taskDir + "/" + plain["validation"].get<std::string>();
        dttest::writeBytes(dir.filePath("plain.json"), QByteArray::fromStdString(plain.dump(2)));
        const nlohmann::json guiSpec = w.trainingTab()->taskRunSpec(dir.filePath("plain.json"), static_cast<int>(dt::TrainingDefaults::max_steps), dt::TrainingDefaults::lr);
        QCOMPARE(guiSpec["architecture"].get<std::string>(), std::string("BertForSequenceClassification"));
        r = dttest::runCli(common + QStringList{"--task", dir.filePath("plain.json")});
        QCOMPARE(r.code, 0);
        QCOMPARE(r.out.toStdString(), guiSpec.dump(2) + "\n");
    }
};

DT_REGISTER_TEST(TestWorkbench);
#include "test_workbench.moc"
