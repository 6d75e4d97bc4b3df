#include "main_window.h"

#include <QClipboard>
#include <QGuiApplication>

#include "budget_chart.h"
#include "compare_tab.h"
#include "delta_tab.h"
#include "run_history.h"
#include "task_panel.h"
#include "experiments/inspection.h"
#include "delta/method.h"
#include "models/model.h"

#include "method_panel.h"
#include "model_panel.h"
#include "module_tree_model.h"
#include "experiment_controller.h"
#include "heatmap_view.h"
#include "training_controller.h"
#include "training_plot.h"

#include "io/atomic_file.h"
#include "io/json_util.h"
#include "train/run_spec.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "tree/selection.h"
#include "models/loader.h"
#include "tree/module_tree.h"

#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QListWidget>
#include <QSpinBox>
#include <QSplitter>
#include <QStandardPaths>
#include <QDateTime>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QVBoxLayout>
#include <QApplication>
#include <QDockWidget>
#include <QFileDialog>
#include <QFontDatabase>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>

#include <set>

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent), m_training(new TrainingController(this)), m_experiments(new ExperimentController(this)) {
    setWindowTitle(tr("DeltaTune"));
    m_panel = new ModelPanel(this);
    auto* modelDock = new QDockWidget(tr("Model"), this);
    modelDock->setObjectName(QStringLiteral("modelDock"));
    modelDock->setWidget(m_panel);
    addDockWidget(Qt::LeftDockWidgetArea, modelDock);

    m_method = new MethodPanel(this);
    auto* methodDock = new QDockWidget(tr("Method"), this);
    methodDock->setObjectName(QStringLiteral("methodDock"));
    methodDock->setWidget(m_method);
    addDockWidget(Qt::RightDockWidgetArea, methodDock);
    auto queueBudget = [this] {
        if (m_budgetQueued) return;  // coalesce bursts of tick changes into one update
        m_budgetQueued = true;
        QTimer::singleShot(0, this, [this] {
            if (!m_budgetQueued) return;  // deltaReady() already brought it up to date
            m_budgetQueued = false;
            updateBudget();
        });
    };
    connect(m_method, &MethodPanel::specChanged, this, queueBudget);
    connect(m_panel, &ModelPanel::quickSelectionRequested, this, [this](const QString& pattern) {
        if (pattern == QLatin1String("biases")) m_method->setMethod(QStringLiteral("bitfit"));
    });
    connect(m_method, &MethodPanel::combineRequested, this, [this] {
        updateBudget();
        if (m_formSpec.empty()) return;
        m_method->addToCombination(nlohmann::json::parse(m_formSpec));
        m_panel->model()->setCheckedPaths({});  // the next method's targets start from nothing
    });
    connect(m_panel->model(), &ModuleTreeModel::checkedChanged, this, queueBudget);

    m_inspect = new QPlainTextEdit(this);
    m_inspect->setReadOnly(true);
    m_inspect->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_inspect->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    auto* tabs = new QTabWidget(this);
    m_tabs = tabs;
    tabs->addTab(buildTrainingTab(), tr("Training"));
    m_deltaTab = new DeltaTab(this);
    connect(m_training, &TrainingController::inspected, m_deltaTab, &DeltaTab::showGrid);
    tabs->addTab(m_deltaTab, tr("Delta"));
    tabs->addTab(buildExperimentsTab(), tr("Transfer && Ablation"));
    m_compare = new CompareTab([this] { return modelForSpec(); }, [this](const QString& name) { return workFolder(QStringLiteral("experiments"), name); },
                               this);
    m_compare->setTasks(demoTasks());
    connect(m_compare, &CompareTab::logLine, this, &MainWindow::log);
    tabs->addTab(m_compare, tr("Compare Methods"));
    m_taskPanel = new TaskPanel(this);
    connect(m_taskPanel, &TaskPanel::useRequested, this, [this] { useTaskPanel(); });
    tabs->addTab(m_taskPanel, tr("Task Data"));
    tabs->addTab(m_inspect, tr("Inspect"));
    setCentralWidget(tabs);

    m_log = new QPlainTextEdit(this);
    m_log->setReadOnly(true);
    m_log->setMaximumBlockCount(5000);
    auto* logDock = new QDockWidget(tr("Log"), this);
    logDock->setObjectName(QStringLiteral("logDock"));
    logDock->setWidget(m_log);
    addDockWidget(Qt::BottomDockWidgetArea, logDock);

    auto* fileMenu = menuBar()->addMenu(tr("&File"));
    auto* open = fileMenu->addAction(tr("&Open Model Folder…"), this, &MainWindow::chooseModelFolder);
    open->setShortcut(QKeySequence::Open);
    auto* builtin = fileMenu->addAction(tr("Open Built-in &Tiny BERT"), this, [this] { openModel(QStringLiteral("tiny-bert")); });
    builtin->setToolTip(tr("A small BERT with random weights, for trying things out"));
    auto* demo = fileMenu->addAction(tr("Open &Demo Model"), this, [this] { openModel(demoModel()); });
    demo->setToolTip(tr("The built-in pretrained demo BERT (synthetic language), with its demo tasks"));
    demo->setEnabled(!demoModel().isEmpty());
    const QString larger = demoDir().isEmpty() ? QString() : demoDir() + QStringLiteral("/models/synth-bert-base");
    auto* demoBase = fileMenu->addAction(tr("Open &Larger Demo Model"), this, [this, larger] { openModel(larger); });
    demoBase->setToolTip(tr("The same language and curriculum at hidden 128 and 4 layers (3.4 MB): the study's power of scale"));
    demoBase->setEnabled(!larger.isEmpty() && QFileInfo::exists(larger + QStringLiteral("/model.safetensors")));
    auto* spec = fileMenu->addAction(tr("Open &Run Spec…"), this, &MainWindow::chooseRunSpec);
    spec->setToolTip(tr("A JSON run spec: model, task data, delta and training arguments"));
    auto* curves = fileMenu->addAction(tr("Export Training &Curves…"), this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Export Training Curves"), QStringLiteral("curves.png"),
                                                       tr("PNG images (*.png);;PDF files (*.pdf);;CSV files (*.csv)"));
        if (f.isEmpty()) return;
        const bool ok = f.endsWith(QLatin1String(".csv"), Qt::CaseInsensitive)   ? m_plot->saveCsv(f)
                        : f.endsWith(QLatin1String(".pdf"), Qt::CaseInsensitive) ? m_plot->savePdf(f)
                                                                                  : m_plot->savePng(f);
        log(ok ? tr("Saved %1").arg(f) : tr("Could not save %1").arg(f));
    });
    curves->setToolTip(tr("The Training tab's loss and validation curves as PNG, PDF or CSV"));
    buildFileActions(fileMenu);
    fileMenu->addSeparator();
    auto* quit = fileMenu->addAction(tr("&Quit"), qApp, &QApplication::quit);
    quit->setShortcut(QKeySequence::Quit);
    auto* editMenu = menuBar()->addMenu(tr("&Edit"));
    auto* copyTargets = editMenu->addAction(tr("Copy &target_modules"), this, [this] {
        if (!m_targetModules.isEmpty()) QGuiApplication::clipboard()->setText(m_targetModules);
        statusBar()->showMessage(m_targetModules.isEmpty() ? tr("Tick modules first") : tr("Copied %1").arg(m_targetModules), 5000);
    });
    copyTargets->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C));
    copyTargets->setToolTip(tr("The ticked modules as PEFT's target_modules (JSON), for a LoraConfig"));
    auto* viewMenu = menuBar()->addMenu(tr("&View"));
    viewMenu->addAction(modelDock->toggleViewAction());
    viewMenu->addAction(methodDock->toggleViewAction());
    viewMenu->addAction(logDock->toggleViewAction());
    resize(1280, 800);
    resizeDocks({modelDock, methodDock}, {520, 300}, Qt::Horizontal);
    resizeDocks({logDock}, {140}, Qt::Vertical);
    restoreLayout();
}

MainWindow::~MainWindow() = default;

void MainWindow::log(const QString& line) { m_log->appendPlainText(line); }

bool MainWindow::openModel(const QString& source) {
    try {
        dt::LoadedModel loaded = dt::load_model(source.toStdString());
        dt::ModuleTree tree = dt::ModuleTree::build(*loaded.model);
        m_inspect->setPlainText(QString::fromStdString(tree.to_text()));
        m_panel->model()->setTree(std::move(tree));
        m_model = loaded.model;
        m_modelSource = source;
        m_lastError.clear();
        m_importedDelta.clear();
        updateBudget();
        rememberModel(source);
        setWindowTitle(tr("DeltaTune — %1").arg(source));
        log(tr("Opened %1 (%2)").arg(source, QString::fromStdString(loaded.report.weights_source)));
        if (!loaded.report.missing.empty())
            log(tr("%n parameter(s) not in the checkpoint were randomly initialised", nullptr,
                   static_cast<int>(loaded.report.missing.size())));
        if (!loaded.report.unexpected.empty())
            log(tr("%n checkpoint tensor(s) were not used", nullptr, static_cast<int>(loaded.report.unexpected.size())));
        statusBar()->showMessage(tr("Loaded %1").arg(source), 5000);
        return true;
    } catch (const dt::Error& e) {
        m_lastError = QString::fromStdString(e.what());
    } catch (const std::exception& e) {
        m_lastError = tr("Internal error: %1").arg(QString::fromUtf8(e.what()));
    }
    log(m_lastError);
    statusBar()->showMessage(m_lastError);
    return false;
}

void MainWindow::chooseModelFolder() {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Model Folder"));
    if (dir.isEmpty()) return;
    if (!openModel(dir)) QMessageBox::warning(this, tr("Cannot open model"), m_lastError);
}

QWidget* MainWindow::buildTrainingTab() {
    auto* page = new QWidget(this);
    m_plot = new TrainingPlot(page);
    m_specLabel = new QLabel(tr("No run spec: File > Open Run Spec"), page);
    m_startButton = new QPushButton(tr("Start"), page);
    m_startButton->setToolTip(tr("Train the run spec's delta in the background"));
    m_pauseButton = new QPushButton(tr("Pause"), page);
    m_pauseButton->setCheckable(true);
    m_pauseButton->setToolTip(tr("Pause between micro-batches; press again to resume"));
    m_stopButton = new QPushButton(tr("Stop"), page);
    m_stopButton->setToolTip(tr("Stop after the current micro-batch and write a checkpoint to resume from"));
    m_pauseButton->setEnabled(false);
    m_stopButton->setEnabled(false);
    m_startButton->setEnabled(false);
    m_progress = new QProgressBar(this);
    m_progress->setMaximumWidth(240);
    m_progress->setVisible(false);
    statusBar()->addPermanentWidget(m_progress);
    auto* row = new QHBoxLayout;
    row->addWidget(m_specLabel, 1);
    row->addWidget(m_startButton);
    row->addWidget(m_pauseButton);
    row->addWidget(m_stopButton);
    m_taskCombo = new QComboBox(page);
    m_taskCombo->setToolTip(tr("The task to train on: a demo task, or the run spec opened with File > Open Run Spec"));
    for (const QString& t : demoTasks()) {
        m_taskCombo->addItem(tr("Demo task: %1").arg(QFileInfo(t).dir().dirName()), t);
        try {
            const auto j = dt::json::load_file(t.toStdString());
            m_taskCombo->setItemData(m_taskCombo->count() - 1,
                                     QStringLiteral("%1 (%2)").arg(QString::fromStdString(j.value("description", "")),
                                                                   QString::fromStdString(j.value("category", ""))),
                                     Qt::ToolTipRole);
        } catch (const dt::Error&) {
        }
    }
    m_taskCombo->addItem(tr("Run spec file"), QString());
    m_stepsSpin = new QSpinBox(page);
    m_stepsSpin->setRange(1, 1000000);
    m_stepsSpin->setValue(300);
    m_stepsSpin->setToolTip(tr("Optimizer steps (batch 16)"));
    m_lrSpin = new QDoubleSpinBox(page);
    m_lrSpin->setDecimals(5);
    m_lrSpin->setRange(1e-6, 1.0);
    m_lrSpin->setSingleStep(0.001);
    m_lrSpin->setValue(0.005);
    m_lrSpin->setToolTip(tr("Peak learning rate (linear schedule, 6% warmup)"));
    m_device = new QComboBox(page);
    for (const auto& d : dt::available_devices()) m_device->addItem(d == "cpu" ? QStringLiteral("CPU") : QString::fromStdString(d).replace(QStringLiteral("cuda"), QStringLiteral("CUDA")),
                          QString::fromStdString(d));
    m_device->setToolTip(tr("Where training runs: the CPU, or a CUDA GPU when this LibTorch build sees one"));
    m_precision = new QComboBox(page);
    m_precision->addItems({QStringLiteral("fp32"), QStringLiteral("bf16")});
    if (m_device->count() > 1) m_precision->addItem(QStringLiteral("fp16"));
    m_precision->setToolTip(tr("Autocast precision of the forward pass; delta weights, gradients and AdamW state stay fp32. "
                               "fp16 (CUDA only) uses dynamic loss scaling"));
    auto* taskRow = new QHBoxLayout;
    taskRow->addWidget(new QLabel(tr("Task:"), page));
    taskRow->addWidget(m_taskCombo, 1);
    taskRow->addWidget(new QLabel(tr("Steps:"), page));
    taskRow->addWidget(m_stepsSpin);
    taskRow->addWidget(new QLabel(tr("LR:"), page));
    taskRow->addWidget(m_lrSpin);
    taskRow->addWidget(m_device);
    taskRow->addWidget(m_precision);
    auto syncStart = [this] {
        const bool task = !m_taskCombo->currentData().toString().isEmpty();
        m_specLabel->setText(task ? m_taskCombo->currentData(Qt::ToolTipRole).toString()
                                  : m_specPath.isEmpty() ? tr("No run spec: File > Open Run Spec") : m_specPath);
        m_startButton->setEnabled(!m_training->isRunning() && (task || !m_specPath.isEmpty()));
        m_stepsSpin->setEnabled(task);
        m_lrSpin->setEnabled(task);
    };
    connect(m_taskCombo, &QComboBox::currentIndexChanged, this, syncStart);
    auto* lay = new QVBoxLayout(page);
    lay->addLayout(taskRow);
    lay->addLayout(row);
    m_history = new RunHistory(page);
    connect(m_history, &RunHistory::overlay, m_plot, &TrainingPlot::setOverlay);
    connect(m_history, &RunHistory::overlayRemoved, m_plot, &TrainingPlot::removeOverlay);
    m_history->scan(QFileInfo(workFolder(QStringLiteral("runs"), QStringLiteral("x"))).absolutePath());
    auto* historyBox = new QWidget(page);
    auto* historyLay = new QVBoxLayout(historyBox);
    historyLay->setContentsMargins(0, 0, 0, 0);
    historyLay->addWidget(new QLabel(tr("Runs (tick to overlay):"), historyBox));
    historyLay->addWidget(m_history, 1);
    auto* plotSplit = new QSplitter(page);
    plotSplit->addWidget(m_plot);
    plotSplit->addWidget(historyBox);
    plotSplit->setStretchFactor(0, 1);
    plotSplit->setSizes({600, 170});
    lay->addWidget(plotSplit, 1);
    syncStart();
    connect(m_startButton, &QPushButton::clicked, this, [this] {
        const QString task = m_taskCombo->currentData().toString();
        if (task.isEmpty()) startTraining(m_specPath);
        else startTaskTraining(task, m_stepsSpin->value(), m_lrSpin->value());
    });
    connect(m_pauseButton, &QPushButton::toggled, this, [this](bool on) {
        m_training->setPaused(on);
        m_pauseButton->setText(on ? tr("Resume") : tr("Pause"));
    });
    connect(m_stopButton, &QPushButton::clicked, m_training, &TrainingController::stop);
    connect(m_training, &TrainingController::runningChanged, this, [this](bool running) {
        m_startButton->setEnabled(!running && (!m_specPath.isEmpty() || !m_taskCombo->currentData().toString().isEmpty()));
        m_pauseButton->setEnabled(running);
        m_pauseButton->setChecked(false);
        m_stopButton->setEnabled(running);
        m_progress->setVisible(running);
    });
    connect(m_training, &TrainingController::step, this, [this](qint64 step, qint64 max, double loss, double lr, double tps, double elapsed) {
        m_plot->addStep(step, loss, lr, tps);
        m_progress->setMaximum(static_cast<int>(max));
        m_progress->setValue(static_cast<int>(step));
        const double eta = step > 0 ? elapsed / static_cast<double>(step) * static_cast<double>(max - step) : 0;
        m_progress->setFormat(tr("%v/%m  ETA %1 s  %2 tok/s").arg(eta, 0, 'f', 0).arg(tps, 0, 'f', 0));
    });
    connect(m_training, &TrainingController::evaluated, this, [this](qint64 step, const QVariantMap& m) {
        const double score = m.contains(QStringLiteral("accuracy")) ? m.value(QStringLiteral("accuracy")).toDouble()
                                                                   : m.value(QStringLiteral("pearson")).toDouble();
        m_plot->addEvaluation(step, score);
        QStringList parts;
        for (auto it = m.begin(); it != m.end(); ++it) parts << QStringLiteral("%1 %2").arg(it.key()).arg(it.value().toDouble(), 0, 'f', 4);
        log(tr("Evaluation at step %1: %2").arg(step).arg(parts.join(QStringLiteral(", "))));
    });
    connect(m_training, &TrainingController::status, this, [this](const QString& s) { log(s); });
    connect(m_training, &TrainingController::finished, this, [this](const QString& s, qint64 n) {
        m_history->addRun(m_lastRunDir);
        log(tr("Training %1 after %2 steps").arg(s).arg(n));
        statusBar()->showMessage(tr("Training %1").arg(s), 5000);
    });
    connect(m_training, &TrainingController::failed, this, [this](const QString& m) {
        m_lastError = m;
        log(m);
        statusBar()->showMessage(m);
    });
    return page;
}

void MainWindow::chooseRunSpec() {
    const QString f = QFileDialog::getOpenFileName(this, tr("Open Run Spec"), QString(), tr("Run specs (*.json)"));
    if (f.isEmpty()) return;
    m_specPath = f;
    m_specLabel->setText(f);
    m_taskCombo->setCurrentIndex(m_taskCombo->count() - 1);
    m_startButton->setEnabled(!m_training->isRunning());
}

bool MainWindow::startTraining(const QString& specPath, const QString& runDir) {
    if (specPath.isEmpty() || m_training->isRunning()) return false;
    m_specPath = specPath;
    m_specLabel->setText(specPath);
    const QString dir = runDir.isEmpty() ? QFileInfo(specPath).absolutePath() + QStringLiteral("/runs/") +
                                               QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss"))
                                         : runDir;
    m_plot->clear();
    m_deltaTab->clear();
    m_lastRunDir = dir;
    log(tr("Training %1 into %2").arg(specPath, dir));
    return m_training->start(specPath, dir);
}

void MainWindow::updateBudget() {
    if (!m_model) return;
    m_deltaSpec.clear();
    nlohmann::json spec = m_method->spec();
    const auto& tree = m_panel->model()->tree();
    QString targetsNote;
    if (m_method->usesTargets()) {
        std::vector<std::string> ticked;
        for (const auto& p : m_panel->model()->checkedPaths()) {
            const int n = tree.find(p.toStdString());
            const bool wanted = spec["method"] == "selective" || (n > 0 && tree.nodes()[static_cast<std::size_t>(n)].is_linear());
            if (wanted) ticked.push_back(p.toStdString());
        }
        if (!ticked.empty()) {
            spec["target_modules"] = ticked;
            m_deltaSpec.clear();
            // The shortest PEFT pattern that selects exactly the ticked modules: their names, if unambiguous.
            std::set<std::string> names;
            for (const auto& p : ticked) names.insert(p.substr(p.find_last_of('.') + 1));
            dt::SelectionSpec sel;
            sel.targets.assign(names.begin(), names.end());
            sel.linear_only = spec["method"] != "selective";
            const bool exact = dt::select_modules(tree, sel) == ticked;
            targetsNote = exact ? QString::fromStdString(nlohmann::json(sel.targets).dump())
                                : tr("%n explicit module path(s)", nullptr, static_cast<int>(ticked.size()));
            // What PEFT's target_modules takes: the short names when they select exactly the ticks,
            // else the full paths (a full path matches itself).
            m_targetModules = QString::fromStdString(exact ? nlohmann::json(sel.targets).dump() : nlohmann::json(ticked).dump());
        } else {
            targetsNote = tr("none ticked: the method's defaults");
            m_targetModules.clear();
        }
    }
    m_formSpec = spec.dump();
    // Methods set aside in the panel's combination train together with the form's.
    if (!m_method->combination().empty()) {
        nlohmann::json all = nlohmann::json::array();
        for (const auto& m : m_method->combination()) all.push_back(m);
        all.push_back(spec);
        spec = {{"methods", all}};
    }
    QString html;
    try {
        dt::DeltaSet set = dt::DeltaSet::apply(*m_model, dt::DeltaSpec::from_json(spec, "method panel"));
        m_deltaSpec = spec.dump();
        const dt::Accounting acc = set.accounting(*m_model);
        showTrainable(set);
        set.remove(*m_model);
        const QLocale loc;
        html = tr("<b>%1</b> trainable of %2 (%3%)<br>").arg(loc.toString(static_cast<qlonglong>(acc.trainable_params)),
                                                            loc.toString(static_cast<qlonglong>(acc.total_params)))
                   .arg(acc.trainable_percent(), 0, 'f', 4);
        for (const auto& m : acc.per_method)
            html += tr("%1: %2 added, %3 unfrozen<br>").arg(QString::fromStdString(m.method), loc.toString(static_cast<qlonglong>(m.added)),
                                                         loc.toString(static_cast<qlonglong>(m.unfrozen)));
        html += tr("Memory: weights %1, gradients %2, AdamW %3, activations about %4 (batch 16 × 128 tokens, fp32)<br>Delta file: about %5")
                    .arg(QString::fromStdString(dt::format_bytes(acc.weight_bytes)), QString::fromStdString(dt::format_bytes(acc.gradient_bytes)),
                         QString::fromStdString(dt::format_bytes(acc.adamw_bytes)),
                         QString::fromStdString(dt::format_bytes(dt::estimate_activation_bytes(*m_model, 16, 128))),
                         QString::fromStdString(dt::format_bytes(acc.gradient_bytes)));
        if (!targetsNote.isEmpty()) html += tr("<br>target_modules: <tt>%1</tt>").arg(targetsNote.toHtmlEscaped());
        m_budgetText = QStringLiteral("%1 trainable").arg(acc.trainable_params);
    } catch (const dt::Error& e) {
        m_panel->model()->setTrainable({});
        m_method->budgetChart()->setBudget({}, {}, {});
        html = QStringLiteral("<span style='color:#c0392b'>%1</span>").arg(QString::fromStdString(e.what()).toHtmlEscaped());
        m_budgetText = QString::fromStdString(e.what());
    }
    m_method->setBudgetText(html);
}

void MainWindow::showTrainable(const dt::DeltaSet& set) {
    // Per tree node (its subtree) for the Trainable column, and per layer and method for the chart.
    const auto& tree = m_panel->model()->tree();
    std::vector<std::int64_t> perNode(tree.nodes().size(), 0);
    std::map<std::string, std::int64_t> numel;
    std::set<const void*> seen;
    for (const auto& p : m_model->named_parameters(true)) {
        if (!p.value().requires_grad() || !seen.insert(p.value().unsafeGetTensorImpl()).second) continue;
        numel[p.key()] = p.value().numel();
        std::string path = p.key();
        int node = -1;
        while (node < 0 && !path.empty()) {
            const auto dot = path.find_last_of('.');
            path = dot == std::string::npos ? std::string() : path.substr(0, dot);
            node = tree.find(path);
        }
        for (int n = node < 0 ? 0 : node; n >= 0; n = tree.nodes()[static_cast<std::size_t>(n)].parent)
            perNode[static_cast<std::size_t>(n)] += p.value().numel();
    }
    m_panel->model()->setTrainable(std::move(perNode));
    const std::int64_t layers = m_model->num_layers();
    QStringList groups;
    for (std::int64_t l = 0; l < layers; ++l) groups << QString::number(l);
    groups << tr("other");
    QStringList methods;
    QVector<QVector<double>> counts;
    std::set<std::string> claimed;
    auto add = [&](const QString& name, const std::vector<std::string>& names) {
        QVector<double> row(groups.size(), 0.0);
        for (const auto& n : names) {
            const auto it = numel.find(n);
            if (it == numel.end() || !claimed.insert(n).second) continue;
            const int layer = dt::layer_and_module(n).first;
            row[layer >= 0 && layer < layers ? layer : static_cast<int>(layers)] += static_cast<double>(it->second);
        }
        methods << name;
        counts << row;
    };
    for (const auto& m : set.methods()) {
        std::vector<std::string> names = m->added();
        names.insert(names.end(), m->unfrozen().begin(), m->unfrozen().end());
        add(QString::fromStdString(m->name()), names);
    }
    std::vector<std::string> rest;
    for (const auto& [n, c] : numel)
        if (!claimed.count(n)) rest.push_back(n);
    if (!rest.empty()) add(tr("modules_to_save"), rest);
    m_method->budgetChart()->setBudget(groups, methods, counts);
}

QString MainWindow::useTaskPanel() {
    const QString name = QString::fromStdString(m_taskPanel->taskJson().value("name", std::string("task")));
    const QString path = m_taskPanel->writeTask(workFolder(QStringLiteral("tasks"), name));
    if (path.isEmpty()) {
        m_lastError = m_taskPanel->error();
        log(m_lastError);
        return {};
    }
    const int at = m_taskCombo->count() - 1;  // before "Run spec file"
    m_taskCombo->insertItem(at, tr("Data: %1").arg(name), path);
    m_taskCombo->setItemData(at, path, Qt::ToolTipRole);
    m_taskCombo->setCurrentIndex(at);
    log(tr("Task %1 written to %2; it is selected in the Training tab").arg(name, path));
    return path;
}

QString MainWindow::demoDir() {
    const QStringList candidates = {qEnvironmentVariable("DELTATUNE_DEMO_DIR"),
                                    QCoreApplication::applicationDirPath() + QStringLiteral("/../share/deltatune/demo"),
                                    QStringLiteral(DT_SOURCE_DIR "/resources/demo")};
    for (const QString& c : candidates)
        if (!c.isEmpty() && QFileInfo::exists(c + QStringLiteral("/tasks"))) return QDir(c).absolutePath();
    return {};
}

QString MainWindow::demoModel() {
    const QString d = demoDir();
    const QString m = d + QStringLiteral("/models/synth-bert-small");
    return !d.isEmpty() && QFileInfo::exists(m + QStringLiteral("/config.json")) ? m : QString();
}

QStringList MainWindow::demoTasks() {
    QStringList out;
    const QString d = demoDir();
    if (d.isEmpty()) return out;
    // The order of docs/demo.md: categories together.
    const QStringList order = {QStringLiteral("reviews"),
                               QStringLiteral("opinions"),
                               QStringLiteral("negation"),
                               QStringLiteral("news"),
                               QStringLiteral("questions"),
                               QStringLiteral("adjective-entailment"),
                               QStringLiteral("opinion-entailment"),
                               QStringLiteral("review-pairs"),
                               QStringLiteral("agreement")};
    for (const QString& t : order) {
        const QString f = d + QStringLiteral("/tasks/") + t + QStringLiteral("/task.json");
        if (QFileInfo::exists(f)) out << f;
    }
    return out;
}

QString MainWindow::currentDeltaSpecJson() const { return QString::fromStdString(m_deltaSpec); }

bool MainWindow::deltaReady() {
    if (m_modelSource.isEmpty()) return false;
    if (m_budgetQueued) {  // ticks changed since the last update: the spec must follow them first
        m_budgetQueued = false;
        updateBudget();
    }
    if (!m_deltaSpec.empty() || !m_importedDelta.isEmpty()) return true;
    m_lastError = tr("The method panel's delta is not valid: %1").arg(m_budgetText);
    log(m_lastError);
    return false;
}

std::string MainWindow::modelForSpec() const {
    const QFileInfo f(m_modelSource);
    return f.exists() ? f.absoluteFilePath().toStdString() : m_modelSource.toStdString();  // a folder, or a built-in name
}

QString MainWindow::workFolder(const QString& kind, const QString& name) const {
    QString base = qEnvironmentVariable("DELTATUNE_WORK_DIR");
    if (base.isEmpty()) base = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    return base + QLatin1Char('/') + kind + QLatin1Char('/') + name + QLatin1Char('-') +
           QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss-zzz"));
}

nlohmann::json MainWindow::taskRunSpec(const QString& taskFile, int steps, double lr) const {
    nlohmann::json training = {{"max_steps", steps}, {"batch_size", 16}, {"lr", lr}, {"eval_every", std::max(1, steps / 6)}};
    if (m_device && m_device->currentData().toString() != QLatin1String("cpu")) training["device"] = m_device->currentData().toString().toStdString();
    if (m_precision && m_precision->currentText() != QLatin1String("fp32")) training["precision"] = m_precision->currentText().toStdString();
    // An imported delta folder is the starting point; otherwise the method panel's spec.
    nlohmann::json delta = m_importedDelta.isEmpty() ? nlohmann::json::parse(m_deltaSpec) : nlohmann::json(m_importedDelta.toStdString());
    nlohmann::json spec = {{"model", modelForSpec()}, {"task", QFileInfo(taskFile).absoluteFilePath().toStdString()}, {"delta", delta}, {"training", training}};
    // A task without label words is trained with a classification head: the masked-LM model is
    // loaded as its sequence-classification sibling and the head is trained and saved with the delta.
    try {
        const nlohmann::json task = dt::json::load_file(taskFile.toStdString());
        const std::string arch = m_model ? m_model->name() : std::string();
        const auto mlm = arch.find("ForMaskedLM");
        if (!task.contains("label_words") && task.value("type", std::string()) != "causal_lm" && mlm != std::string::npos) {
            spec["architecture"] = arch.substr(0, mlm) + "ForSequenceClassification";
            if (delta.is_object() && delta.contains("method")) delta = {{"methods", {delta}}};
            if (delta.is_object()) delta["modules_to_save"] = {"classifier"};
            spec["delta"] = delta;
        }
    } catch (const dt::Error&) {
        // an unreadable task file is reported by the run itself, naming the file
    }
    return spec;
}

bool MainWindow::startTaskTraining(const QString& taskFile, int steps, double lr, const QString& runDir) {
    if (m_training->isRunning() || !deltaReady()) return false;
    const QString dir = runDir.isEmpty() ? workFolder(QStringLiteral("runs"), QFileInfo(taskFile).dir().dirName()) : runDir;
    if (!QDir().mkpath(dir)) {
        m_lastError = tr("Cannot create the run folder %1").arg(dir);
        log(m_lastError);
        return false;
    }
    nlohmann::json spec = taskRunSpec(taskFile, steps, lr);
    spec["output_dir"] = dir.toStdString();
    const QString specPath = dir + QStringLiteral("/spec.json");
    try {
        dt::write_file_atomic(specPath.toStdString(), spec.dump(2) + "\n");
    } catch (const dt::Error& e) {
        m_lastError = QString::fromStdString(e.what());
        log(m_lastError);
        return false;
    }
    return startTraining(specPath, dir);
}

QWidget* MainWindow::buildExperimentsTab() {
    auto* page = new QWidget(this);
    m_heatmap = new HeatmapView(page);
    m_heatmap->setTitle(tr("Transfer"), tr("accuracy"));
    m_transferTasks = new QListWidget(page);
    m_transferTasks->setToolTip(tr("Tasks of the transfer matrix: one delta is trained per task, then every delta is evaluated on every task"));
    for (const QString& t : demoTasks()) {
        auto* item = new QListWidgetItem(QFileInfo(t).dir().dirName(), m_transferTasks);
        item->setData(Qt::UserRole, t);
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        item->setCheckState(Qt::Checked);
    }
    m_transferSteps = new QSpinBox(page);
    m_transferSteps->setRange(1, 100000);
    m_transferSteps->setValue(400);
    m_transferSteps->setToolTip(tr("Training steps per task delta (the method panel's delta, batch 16)"));
    m_relative = new QCheckBox(tr("Relative to the target's own delta"), page);
    m_relative->setToolTip(tr("Divide each cell by the column task's own delta on it (the study's presentation)"));
    m_transferButton = new QPushButton(tr("Run Transfer"), page);
    m_transferButton->setToolTip(tr("Train the missing deltas and fill the matrix in the background"));
    m_transferStop = new QPushButton(tr("Stop"), page);
    m_transferStop->setEnabled(false);
    m_transferStop->setToolTip(tr("Stop between cells; Run Transfer again continues with the cells already computed"));
    auto* ablate = new QPushButton(tr("Layer Ablation of Last Run"), page);
    ablate->setToolTip(tr("Evaluate the Training tab's last finished run with its delta removed from layers i..j"));
    auto* png = new QPushButton(tr("PNG…"), page);
    auto* pdf = new QPushButton(tr("PDF…"), page);
    auto* csv = new QPushButton(tr("CSV…"), page);
    auto* side = new QWidget(page);
    auto* form = new QVBoxLayout(side);
    form->addWidget(new QLabel(tr("Tasks:"), side));
    form->addWidget(m_transferTasks, 1);
    auto* stepsRow = new QHBoxLayout;
    stepsRow->addWidget(new QLabel(tr("Steps per delta:"), side));
    stepsRow->addWidget(m_transferSteps);
    form->addLayout(stepsRow);
    form->addWidget(m_relative);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_transferButton);
    buttons->addWidget(m_transferStop);
    form->addLayout(buttons);
    form->addWidget(ablate);
    auto* exports = new QHBoxLayout;
    exports->addWidget(png);
    exports->addWidget(pdf);
    exports->addWidget(csv);
    form->addLayout(exports);
    auto* split = new QSplitter(page);
    split->addWidget(side);
    split->addWidget(m_heatmap);
    split->setStretchFactor(1, 1);
    split->setSizes({220, 700});
    auto* lay = new QVBoxLayout(page);
    lay->addWidget(split);

    // The cells as they arrive; the relative view is the engine's ResultMatrix::relative().
    auto redraw = [this] {
        const bool rel = m_relative->isChecked() && !m_ablationShown;
        const auto relative = m_result.relative();
        for (std::size_t r = 0; r < m_result.rows.size(); ++r)
            for (std::size_t c = 0; c < m_result.cols.size(); ++c)
                m_heatmap->setCell(static_cast<int>(r), static_cast<int>(c), rel ? relative[r][c] : m_result.value[r][c],
                                   QString::fromStdString(m_result.note[r][c]));
    };
    // Raw accuracy on a fixed 0..1 scale (0.50 and 0.54 should look alike); ratios on their own range.
    auto scale = [this] {
        if ((!m_relative->isChecked() || m_ablationShown) && m_result.metric == "accuracy") m_heatmap->setRange(0, 1);
        else m_heatmap->setAutoRange();
    };
    connect(m_relative, &QCheckBox::toggled, this, [redraw, scale] {
        scale();
        redraw();
    });
    connect(m_transferButton, &QPushButton::clicked, this, [this] {
        QStringList tasks;
        for (int i = 0; i < m_transferTasks->count(); ++i)
            if (m_transferTasks->item(i)->checkState() == Qt::Checked) tasks << m_transferTasks->item(i)->data(Qt::UserRole).toString();
        startTransfer(tasks, m_transferSteps->value(), m_transferResumable ? m_transferDir : QString());
    });
    connect(m_transferStop, &QPushButton::clicked, m_experiments, &ExperimentController::stop);
    connect(ablate, &QPushButton::clicked, this, [this] {
        if (m_lastRunDir.isEmpty()) {
            log(tr("Train a delta in the Training tab first"));
            return;
        }
        startAblation(m_lastRunDir);
    });
    connect(m_experiments, &ExperimentController::runningChanged, this, [this, ablate](bool running) {
        m_transferButton->setEnabled(!running);
        ablate->setEnabled(!running);
        m_transferStop->setEnabled(running);
    });
    connect(m_experiments, &ExperimentController::matrix, this,
            [this, scale](const QStringList& rows, const QStringList& cols, const QStringList& rc, const QStringList& cc, const QString& metric) {
                m_result = dt::ResultMatrix{};
                m_result.metric = metric.toStdString();
                for (const QString& r : rows) m_result.rows.push_back(r.toStdString());
                for (const QString& c : cols) m_result.cols.push_back(c.toStdString());
                m_result.value.assign(m_result.rows.size(), std::vector<double>(m_result.cols.size(), std::nan("")));
                m_result.note.assign(m_result.rows.size(), std::vector<std::string>(m_result.cols.size()));
                m_heatmap->setMatrix(rows, cols, rc, cc);
                m_heatmap->setTitle(m_ablationShown ? tr("Layer ablation") : tr("Transfer"), metric);
                if (m_ablationShown) m_heatmap->setAxisTitles(tr("delta removed from layer"), tr("through layer"));
                else m_heatmap->setAxisTitles(tr("delta trained on"), tr("evaluated on"));
                scale();
            });
    connect(m_experiments, &ExperimentController::cell, this, [this, redraw](int r, int c, double v, const QString& note) {
        if (r < 0 || c < 0 || static_cast<std::size_t>(r) >= m_result.rows.size() || static_cast<std::size_t>(c) >= m_result.cols.size()) return;
        m_result.value[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = v;
        m_result.note[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = note.toStdString();
        if (m_relative->isChecked() && !m_ablationShown) redraw();  // a new own-task cell changes its whole column
        else m_heatmap->setCell(r, c, v, note);
    });
    connect(m_experiments, &ExperimentController::status, this, [this](const QString& s) { statusBar()->showMessage(s, 3000); });
    connect(m_experiments, &ExperimentController::finished, this, [this](bool stopped) {
        if (!m_ablationShown) m_transferResumable = stopped;
        statusBar()->showMessage(stopped ? tr("Transfer stopped") : tr("Transfer finished"), 5000);
        if (m_ablationShown) log(tr("Layer ablation %1").arg(stopped ? tr("stopped") : tr("finished")));
        else log(stopped ? tr("Transfer stopped; Run Transfer continues it (%1)").arg(m_transferDir)
                         : tr("Transfer finished: %1/matrix.json and matrix.csv").arg(m_transferDir));
    });
    connect(m_experiments, &ExperimentController::failed, this, [this](const QString& m) {
        m_lastError = m;
        log(m);
        statusBar()->showMessage(m);
    });
    auto save = [this](const QString& filter, const QString& ext) {
        const QString f = QFileDialog::getSaveFileName(this, tr("Export Heatmap"), QStringLiteral("transfer.") + ext, filter);
        if (f.isEmpty()) return;
        const bool ok = ext == QLatin1String("png") ? m_heatmap->savePng(f) : ext == QLatin1String("pdf") ? m_heatmap->savePdf(f) : m_heatmap->saveCsv(f);
        log(ok ? tr("Saved %1").arg(f) : tr("Could not save %1").arg(f));
    };
    connect(png, &QPushButton::clicked, this, [save] { save(tr("PNG images (*.png)"), QStringLiteral("png")); });
    connect(pdf, &QPushButton::clicked, this, [save] { save(tr("PDF files (*.pdf)"), QStringLiteral("pdf")); });
    connect(csv, &QPushButton::clicked, this, [save] { save(tr("CSV files (*.csv)"), QStringLiteral("csv")); });
    return page;
}

bool MainWindow::startTransfer(const QStringList& taskFiles, int steps, const QString& outDir) {
    if (m_experiments->isRunning() || !deltaReady()) return false;
    if (taskFiles.size() < 2) {
        m_lastError = tr("Tick at least two tasks");
        log(m_lastError);
        return false;
    }
    m_transferDir = outDir.isEmpty() ? workFolder(QStringLiteral("experiments"), QStringLiteral("transfer")) : outDir;
    m_transferResumable = false;
    nlohmann::json j = {{"model", modelForSpec()},
                        {"tasks", nlohmann::json::array()},
                        {"delta", nlohmann::json::parse(m_deltaSpec)},
                        {"training", {{"max_steps", steps}, {"batch_size", 16}, {"lr", 0.005}}},
                        {"output_dir", m_transferDir.toStdString()}};
    for (const QString& t : taskFiles) j["tasks"].push_back(QFileInfo(t).absoluteFilePath().toStdString());
    try {
        const auto spec = dt::TransferSpec::from_json(j, "workbench", "");
        log(tr("Transfer over %1 tasks into %2").arg(taskFiles.size()).arg(m_transferDir));
        m_ablationShown = false;
        return m_experiments->startTransfer(spec);
    } catch (const dt::Error& e) {
        m_lastError = QString::fromStdString(e.what());
        log(m_lastError);
        return false;
    }
}

bool MainWindow::startAblation(const QString& runDir, const QString& outDir) {
    if (m_experiments->isRunning()) return false;
    const QString spec = runDir + QStringLiteral("/spec.json"), ckpt = runDir + QStringLiteral("/checkpoints/final");
    if (!QFileInfo::exists(spec) || !QFileInfo::exists(ckpt + QStringLiteral("/trainable.safetensors"))) {
        m_lastError = tr("%1 has no finished run (spec.json and checkpoints/final)").arg(runDir);
        log(m_lastError);
        return false;
    }
    const QString out = outDir.isEmpty() ? workFolder(QStringLiteral("experiments"), QStringLiteral("ablation")) : outDir;
    m_ablationShown = true;
    log(tr("Layer ablation of %1 into %2").arg(runDir, out));
    return m_experiments->startAblation(spec, ckpt, out);
}
