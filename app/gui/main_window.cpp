// MainWindow: docks, tabs, menus and the connections between them (see main_window.h).
#include "playground_tab.h"
#include "run_history.h"
#include "scale_tab.h"
#include "main_window.h"

#include "compare_tab.h"
#include "delta_files.h"
#include "delta_tab.h"
#include "method_panel.h"
#include "model_controller.h"
#include "model_panel.h"
#include "task_panel.h"
#include "training_controller.h"
#include "training_tab.h"
#include "transfer_tab.h"
#include "workbench.h"

#include "data_inspector.h"

#include "core/error.h"
#include "data/inspect_data.h"
#include "models/loader.h"

#include <nlohmann/json.hpp>

#include <QDialog>
#include <QVBoxLayout>
#include <QGuiApplication>
#include <QScreen>

#include <QApplication>
#include <QClipboard>
#include <QDockWidget>
#include <QUrl>
#include <QScrollBar>
#include <QDesktopServices>
#include <QScrollArea>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QStatusBar>
#include <QTabWidget>

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent), m_session(new Workbench(this)), m_panel(new ModelPanel(this)), m_method(new MethodPanel(this)),
      m_models(new ModelController(m_session, m_panel, m_method, this)) {
    setWindowTitle(tr("DeltaTune"));
    buildTabs();
    buildDocks();
    buildMenus();
    connect(m_session, &Workbench::logLine, m_log, [this](const QString& line) {
        m_log->appendPlainText(line);
        m_log->verticalScrollBar()->setValue(m_log->verticalScrollBar()->maximum());  // the log follows its newest line
    });
    connect(m_session, &Workbench::statusMessage, statusBar(), &QStatusBar::showMessage);
    statusBar()->addPermanentWidget(m_training->progressBar());
    connect(m_models, &ModelController::modelOpened, this, [this](const QString& source, const QString& treeText) {
        m_inspect->setPlainText(treeText);
        rememberModel(source);
        setWindowTitle(tr("DeltaTune — %1").arg(source));
    });
    restoreLayout();
}

bool MainWindow::openModel(const QString& source) { return m_models->openModel(source); }

QString MainWindow::lastError() const { return m_session->lastError(); }

void MainWindow::buildTabs() {
    m_tabs = new QTabWidget(this);
    m_training = new TrainingTab(m_session, m_tabs);
    m_tabs->addTab(m_training, tr("Training"));
    m_deltaTab = new DeltaTab(m_tabs);
    connect(m_training->controller(), &TrainingController::inspected, m_deltaTab, &DeltaTab::showGrid);
    connect(m_training->controller(), &TrainingController::ranks, m_models, [this](qint64, const QVariantMap& r) { m_models->showRanks(r); });
    connect(m_training, &TrainingTab::runStarted, m_deltaTab, &DeltaTab::clear);
    m_tabs->addTab(m_deltaTab, tr("Delta"));
    m_tabs->insertTab(1, m_training->history(), tr("Runs"));
    m_playground = new PlaygroundTab(m_session, [this] { return m_training->history()->runDirs(); }, m_tabs);
    m_tabs->addTab(m_playground, tr("Playground"));
    m_transfer = new TransferTab(m_session, m_training, m_tabs);
    m_tabs->addTab(m_transfer, tr("Transfer && Ablation"));
    m_compare = new CompareTab([this] { return m_session->modelForSpec(); },
                               [](const QString& name) { return Workbench::workFolder(QStringLiteral("experiments"), name); }, m_tabs);
    m_compare->setTasks(Workbench::demoTasks());
    connect(m_compare, &CompareTab::logLine, m_session, &Workbench::log);
    connect(m_compare, &CompareTab::failed, m_session, &Workbench::fail);
    m_tabs->addTab(m_compare, tr("Compare Methods"));
    m_scale = new ScaleTab(Workbench::demoTasks() + Workbench::demoGenerativeTasks(),
                           [](const QString& name) { return Workbench::workFolder(QStringLiteral("experiments"), name); }, m_tabs);
    connect(m_scale, &ScaleTab::logLine, m_session, &Workbench::log);
    connect(m_scale, &ScaleTab::failed, m_session, &Workbench::fail);
    m_tabs->addTab(m_scale, tr("Scale"));
    m_taskPanel = new TaskPanel(m_tabs);
    connect(m_taskPanel, &TaskPanel::useRequested, this, [this] { m_training->useTaskData(m_taskPanel); });
    connect(m_taskPanel, &TaskPanel::inspectRequested, this, &MainWindow::inspectTaskData);
    auto* taskScroll = new QScrollArea(m_tabs);  // the form scrolls on short screens
    taskScroll->setWidget(m_taskPanel);
    taskScroll->setWidgetResizable(true);
    taskScroll->setFrameShape(QFrame::NoFrame);
    m_tabs->addTab(taskScroll, tr("Task Data"));
    m_inspect = new QPlainTextEdit(m_tabs);
    m_inspect->setReadOnly(true);
    m_inspect->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_inspect->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_tabs->addTab(m_inspect, tr("Inspect"));
    setCentralWidget(m_tabs);
    m_files = new DeltaFiles(m_session, m_training, this);
    connect(m_files, &DeltaFiles::merged, m_transfer, &TransferTab::addDeltaRow);
    connect(m_training->history(), &RunHistory::exportRequested, this, [this](const QString& run) { m_files->chooseExport(this, run); });  // a merged delta joins the heatmap's rows
}

void MainWindow::buildDocks() {
    m_log = new QPlainTextEdit(this);
    m_log->setReadOnly(true);
    m_log->setObjectName(QStringLiteral("log"));
    m_log->setMaximumBlockCount(5000);
    auto dock = [this](const QString& title, const char* name, QWidget* w, Qt::DockWidgetArea area) {
        auto* d = new QDockWidget(title, this);
        d->setObjectName(QLatin1String(name));
        d->setWidget(w);
        addDockWidget(area, d);
        return d;
    };
    auto* model = dock(tr("Model"), "modelDock", m_panel, Qt::LeftDockWidgetArea);
    // The method form scrolls rather than setting the window's minimum height.
    auto* methodScroll = new QScrollArea(this);
    methodScroll->setWidget(m_method);
    methodScroll->setWidgetResizable(true);
    methodScroll->setFrameShape(QFrame::NoFrame);
    m_method->setMinimumWidth(220);  // narrower than this the form's fields would be unreadable
    auto* method = dock(tr("Method"), "methodDock", methodScroll, Qt::RightDockWidgetArea);
    auto* log = dock(tr("Log"), "logDock", m_log, Qt::BottomDockWidgetArea);
    resize(1280, 800);
    resizeDocks({model, method}, {400, 300}, Qt::Horizontal);
    resizeDocks({log}, {90}, Qt::Vertical);
    // A small screen (under 1200 px wide, e.g. 1024x700) starts with the Method dock tabbed behind
    // the Model dock, so the training curves keep their room; a saved layout overrides this.
    const QScreen* s = QGuiApplication::primaryScreen();
    if (s && s->availableGeometry().width() < 1200) {
        tabifyDockWidget(model, method);
        model->raise();
        resizeDocks({model}, {330}, Qt::Horizontal);
    }
}

void MainWindow::buildMenus() {
    auto* fileMenu = menuBar()->addMenu(tr("&File"));
    auto* open = fileMenu->addAction(tr("&Open Model Folder…"), this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Model Folder"), Workbench::dialogStart(QStringLiteral("models")));
        Workbench::remember(QStringLiteral("models"), dir, true);
        if (!dir.isEmpty() && !openModel(dir)) QMessageBox::warning(this, tr("Cannot open model"), lastError());
    });
    open->setShortcut(QKeySequence::Open);
    // The engine's built-ins (random weights), one per family, for trying things out.
    auto* builtins = fileMenu->addMenu(tr("Open &Built-in Model"));
    builtins->setToolTipsVisible(true);
    for (const auto& name : dt::builtin_model_names()) {
        const QString n = QString::fromStdString(name);
        auto* a = builtins->addAction(n, this, [this, n] { openModel(n); });
        a->setToolTip(QString::fromStdString(dt::builtin_config(name).architecture) + tr(" with random weights"));
    }
    auto* demo = fileMenu->addAction(tr("Open &Demo Model"), this, [this] { openModel(Workbench::demoModel()); });
    demo->setToolTip(tr("The built-in pretrained demo BERT (synthetic language), with its demo tasks"));
    demo->setEnabled(!Workbench::demoModel().isEmpty());
    const QString larger = Workbench::demoDir().isEmpty() ? QString() : Workbench::demoDir() + QStringLiteral("/models/synth-bert-base");
    auto* demoBase = fileMenu->addAction(tr("Open &Larger Demo Model"), this, [this, larger] { openModel(larger); });
    demoBase->setToolTip(tr("The same language and curriculum at hidden 128 and 4 layers (3.4 MB): the study's power of scale"));
    demoBase->setEnabled(!larger.isEmpty() && QFileInfo::exists(larger + QStringLiteral("/model.safetensors")));
    auto* spec = fileMenu->addAction(tr("Open &Run Spec…"), m_training, &TrainingTab::chooseRunSpec);
    spec->setToolTip(tr("A JSON run spec: model, task data, delta and training arguments"));
    auto* curves = fileMenu->addAction(tr("Export Training &Curves…"), m_training, &TrainingTab::chooseCurvesFile);
    curves->setToolTip(tr("The Training tab's loss and validation curves as PNG, PDF or CSV"));
    buildFileActions(fileMenu);
    fileMenu->addSeparator();
    fileMenu->addAction(tr("&Quit"), qApp, &QApplication::quit)->setShortcut(QKeySequence::Quit);
    auto* editMenu = menuBar()->addMenu(tr("&Edit"));
    editMenu->addAction(tr("&Undo Tick Change"), this, [this] { m_panel->undo(); })->setToolTip(tr("Ctrl+Z in the Model panel"));
    editMenu->addAction(tr("&Redo Tick Change"), this, [this] { m_panel->redo(); })->setToolTip(tr("Ctrl+Shift+Z in the Model panel"));
    editMenu->addSeparator();
    auto* copyTargets = editMenu->addAction(tr("Copy &target_modules"), this, [this] {
        const QString targets = m_models->targetModules();
        if (!targets.isEmpty()) QGuiApplication::clipboard()->setText(targets);
        m_session->showStatus(targets.isEmpty() ? tr("Tick modules first") : tr("Copied %1").arg(targets));
    });
    copyTargets->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C));
    copyTargets->setToolTip(tr("The ticked modules as PEFT's target_modules (JSON), for a LoraConfig"));
    auto* viewMenu = menuBar()->addMenu(tr("&View"));
    for (QDockWidget* d : findChildren<QDockWidget*>()) viewMenu->addAction(d->toggleViewAction());
    auto* helpMenu = menuBar()->addMenu(tr("&Help"));
    helpMenu->addAction(tr("&Getting Started"), this, [this] {
        QMessageBox::information(this, tr("Getting Started"),
                                 tr("1. The built-in demo model is open (File > Open Built-in Model for others).\n"
                                    "2. Tick modules in the Model dock, pick a method in the Method dock: the budget updates.\n"
                                    "3. In the Training tab pick a demo task and press Start.\n"
                                    "4. Try the result in the Playground; compare tasks, methods and sizes in the other tabs.\n"
                                    "5. File > Export Delta writes a PEFT adapter."));
    });
    helpMenu->addAction(tr("&Documentation"), this, [] {
        const QString docs = QStringLiteral(DT_SOURCE_DIR "/docs");
        QDesktopServices::openUrl(QUrl::fromLocalFile(QFileInfo::exists(docs) ? docs : QStringLiteral(DT_SOURCE_DIR)));
    });
    helpMenu->addAction(tr("&Keyboard Shortcuts"), this, [this] {
        QString text;
        for (QAction* a : findChildren<QAction*>())
            if (!a->shortcut().isEmpty() && !a->text().isEmpty())
                text += QStringLiteral("%1\t%2\n").arg(a->shortcut().toString(QKeySequence::NativeText), a->text().remove(QLatin1Char('&')));
        QMessageBox::information(this, tr("Keyboard Shortcuts"), text.isEmpty() ? tr("None") : text);
    });
    helpMenu->addAction(tr("&About DeltaTune"), this, [this] {
        QMessageBox::about(this, tr("About DeltaTune"),
                           tr("DeltaTune %1: a workbench for delta tuning (parameter-efficient fine-tuning) of pretrained "
                              "transformers, after the Delta Tuning study (Ding et al., Nature Machine Intelligence 2023).")
                               .arg(QCoreApplication::applicationVersion()));
    });
}

bool MainWindow::inspectTaskData() {
    if (!m_session->model()) {
        m_session->fail(tr("Open a model first: its tokenizer reads the data (File > Open Model, or the demo)"));
        return false;
    }
    dt::DataReport report;
    try {
        const nlohmann::json spec = {{"model", m_session->modelForSpec()}, {"task", m_taskPanel->taskJson()}, {"delta", "lora"}};
        QApplication::setOverrideCursor(Qt::WaitCursor);
        report = dt::inspect_task_data(dt::RunSpec::from_json(spec, "Task Data", "."));
        QApplication::restoreOverrideCursor();
    } catch (const dt::Error& e) {
        QApplication::restoreOverrideCursor();
        m_session->fail(QString::fromUtf8(e.what()));
        return false;
    }
    if (!m_dataWindow) {
        m_dataWindow = new QDialog(this);
        m_dataWindow->setWindowTitle(tr("Dataset Inspector"));
        m_dataInspector = new DataInspector(m_dataWindow);
        auto* lay = new QVBoxLayout(m_dataWindow);
        lay->setContentsMargins(4, 4, 4, 4);
        lay->addWidget(m_dataInspector);
        m_dataWindow->resize(960, 600);
    }
    m_dataInspector->setReport(report);
    m_dataWindow->show();
    m_dataWindow->raise();
    m_session->log(tr("Inspected %1: %2 examples, %3 cut at max_length, %4 skipped")
                       .arg(QString::fromStdString(report.file))
                       .arg(report.examples)
                       .arg(report.truncated)
                       .arg(report.skipped));
    return true;
}
