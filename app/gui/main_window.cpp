#include "main_window.h"

#include "method_panel.h"
#include "model_panel.h"
#include "module_tree_model.h"
#include "training_controller.h"
#include "training_plot.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "tree/selection.h"
#include "models/loader.h"
#include "tree/module_tree.h"

#include <QAction>
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

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent), m_training(new TrainingController(this)) {
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
            m_budgetQueued = false;
            updateBudget();
        });
    };
    connect(m_method, &MethodPanel::specChanged, this, queueBudget);
    connect(m_panel->model(), &ModuleTreeModel::checkedChanged, this, queueBudget);

    m_inspect = new QPlainTextEdit(this);
    m_inspect->setReadOnly(true);
    m_inspect->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_inspect->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    auto* tabs = new QTabWidget(this);
    tabs->addTab(buildTrainingTab(), tr("Training"));
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
    auto* spec = fileMenu->addAction(tr("Open &Run Spec…"), this, &MainWindow::chooseRunSpec);
    spec->setToolTip(tr("A JSON run spec: model, task data, delta and training arguments"));
    fileMenu->addSeparator();
    auto* quit = fileMenu->addAction(tr("&Quit"), qApp, &QApplication::quit);
    quit->setShortcut(QKeySequence::Quit);
    auto* viewMenu = menuBar()->addMenu(tr("&View"));
    viewMenu->addAction(modelDock->toggleViewAction());
    viewMenu->addAction(methodDock->toggleViewAction());
    viewMenu->addAction(logDock->toggleViewAction());
    resize(1280, 800);
    resizeDocks({modelDock, methodDock}, {520, 300}, Qt::Horizontal);
    resizeDocks({logDock}, {140}, Qt::Vertical);
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
        m_lastError.clear();
        updateBudget();
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
    auto* lay = new QVBoxLayout(page);
    lay->addLayout(row);
    lay->addWidget(m_plot, 1);
    connect(m_startButton, &QPushButton::clicked, this, [this] { startTraining(m_specPath); });
    connect(m_pauseButton, &QPushButton::toggled, this, [this](bool on) {
        m_training->setPaused(on);
        m_pauseButton->setText(on ? tr("Resume") : tr("Pause"));
    });
    connect(m_stopButton, &QPushButton::clicked, m_training, &TrainingController::stop);
    connect(m_training, &TrainingController::runningChanged, this, [this](bool running) {
        m_startButton->setEnabled(!running && !m_specPath.isEmpty());
        m_pauseButton->setEnabled(running);
        m_pauseButton->setChecked(false);
        m_stopButton->setEnabled(running);
        m_progress->setVisible(running);
    });
    connect(m_training, &TrainingController::step, this, [this](qint64 step, qint64 max, double loss, double, double tps, double elapsed) {
        m_plot->addStep(step, loss);
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
    log(tr("Training %1 into %2").arg(specPath, dir));
    return m_training->start(specPath, dir);
}

void MainWindow::updateBudget() {
    if (!m_model) return;
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
            // The shortest PEFT pattern that selects exactly the ticked modules: their names, if unambiguous.
            std::set<std::string> names;
            for (const auto& p : ticked) names.insert(p.substr(p.find_last_of('.') + 1));
            dt::SelectionSpec sel;
            sel.targets.assign(names.begin(), names.end());
            sel.linear_only = spec["method"] != "selective";
            const bool exact = dt::select_modules(tree, sel) == ticked;
            targetsNote = exact ? QString::fromStdString(nlohmann::json(sel.targets).dump())
                                : tr("%n explicit module path(s)", nullptr, static_cast<int>(ticked.size()));
        } else {
            targetsNote = tr("none ticked: the method's defaults");
        }
    }
    QString html;
    try {
        dt::DeltaSet set = dt::DeltaSet::apply(*m_model, dt::DeltaSpec::from_json(spec, "method panel"));
        const dt::Accounting acc = set.accounting(*m_model);
        set.remove(*m_model);
        const QLocale loc;
        html = tr("<b>%1</b> trainable of %2 (%3%)<br>").arg(loc.toString(static_cast<qlonglong>(acc.trainable_params)),
                                                            loc.toString(static_cast<qlonglong>(acc.total_params)))
                   .arg(acc.trainable_percent(), 0, 'f', 4);
        for (const auto& m : acc.per_method)
            html += tr("%1: %2 added, %3 unfrozen<br>").arg(QString::fromStdString(m.method), loc.toString(static_cast<qlonglong>(m.added)),
                                                         loc.toString(static_cast<qlonglong>(m.unfrozen)));
        html += tr("Memory: weights %1, gradients %2, AdamW %3<br>Delta file: about %4")
                    .arg(QString::fromStdString(dt::format_bytes(acc.weight_bytes)), QString::fromStdString(dt::format_bytes(acc.gradient_bytes)),
                         QString::fromStdString(dt::format_bytes(acc.adamw_bytes)),
                         QString::fromStdString(dt::format_bytes(acc.gradient_bytes)));
        if (!targetsNote.isEmpty()) html += tr("<br>target_modules: <tt>%1</tt>").arg(targetsNote.toHtmlEscaped());
        m_budgetText = QStringLiteral("%1 trainable").arg(acc.trainable_params);
    } catch (const dt::Error& e) {
        html = QStringLiteral("<span style='color:#c0392b'>%1</span>").arg(QString::fromStdString(e.what()).toHtmlEscaped());
        m_budgetText = QString::fromStdString(e.what());
    }
    m_method->setBudgetText(html);
}
