// TrainingTab: the Training tab (see training_tab.h).
#include "training_tab.h"

#include "run_history.h"
#include "task_panel.h"
#include "training_controller.h"
#include "training_plot.h"
#include "workbench.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "train/run_folder.h"
#include "train/run.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>

#include <QComboBox>
#include <QDateTime>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>

TrainingTab::TrainingTab(Workbench* session, QWidget* parent)
    : QWidget(parent), m_session(session), m_training(new TrainingController(this)) {
    m_plot = new TrainingPlot(this);
    m_specLabel = new QLabel(this);
    m_specLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);  // a long description must not widen the window
    m_startButton = new QPushButton(tr("Start"), this);
    m_startButton->setToolTip(tr("Train the run spec's delta in the background"));
    m_pauseButton = new QPushButton(tr("Pause"), this);
    m_pauseButton->setCheckable(true);
    m_pauseButton->setToolTip(tr("Pause between micro-batches; press again to resume"));
    m_pauseButton->setEnabled(false);
    m_stopButton = new QPushButton(tr("Stop"), this);
    m_stopButton->setToolTip(tr("Stop after the current micro-batch and write a checkpoint to resume from"));
    m_stopButton->setEnabled(false);
    m_progress = new QProgressBar(this);  // the window shows it in its status bar
    m_progress->setMaximumWidth(240);
    m_progress->setVisible(false);
    auto* row = new QHBoxLayout;
    row->addWidget(m_specLabel, 1);
    row->addWidget(m_startButton);
    row->addWidget(m_pauseButton);
    row->addWidget(m_stopButton);
    m_history = new RunHistory(this);
    connect(m_history, &RunHistory::overlay, m_plot, &TrainingPlot::setOverlay);
    connect(m_history, &RunHistory::overlayRemoved, m_plot, &TrainingPlot::removeOverlay);
    m_history->scan(QFileInfo(Workbench::workFolder(QStringLiteral("runs"), QStringLiteral("x"))).absolutePath());
    auto* historyBox = new QWidget(this);
    auto* historyLay = new QVBoxLayout(historyBox);
    historyLay->setContentsMargins(0, 0, 0, 0);
    historyLay->addWidget(new QLabel(tr("Runs (tick to overlay):"), historyBox));
    historyLay->addWidget(m_history, 1);
    auto* plotSplit = new QSplitter(this);
    plotSplit->addWidget(m_plot);
    plotSplit->addWidget(historyBox);
    plotSplit->setStretchFactor(0, 1);
    plotSplit->setSizes({600, 170});
    auto* lay = new QVBoxLayout(this);
    lay->addWidget(buildSettingsRow());
    lay->addLayout(row);
    lay->addWidget(plotSplit, 1);
    syncButtons();
    connect(m_startButton, &QPushButton::clicked, this, [this] {
        const QString task = currentTask();
        if (task.isEmpty()) startTraining(m_specPath);
        else startTaskTraining(task, m_stepsSpin->value(), m_lrSpin->value());
    });
    connect(m_pauseButton, &QPushButton::toggled, this, [this](bool on) {
        m_training->setPaused(on);
        m_pauseButton->setText(on ? tr("Resume") : tr("Pause"));
        // Paused: said in the progress bar instead of an ETA that would go stale.
        if (on) m_progress->setFormat(tr("%v/%m  Paused"));
        m_session->showStatus(on ? tr("Training paused") : tr("Training resumed"));
    });
    connect(m_stopButton, &QPushButton::clicked, m_training, &TrainingController::stop);
    connectController();
}

QWidget* TrainingTab::buildSettingsRow() {
    auto* box = new QWidget(this);
    m_taskCombo = new QComboBox(box);
    // Long task names must not set the window's minimum width: the combo elides to what fits.
    m_taskCombo->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_taskCombo->setMinimumContentsLength(18);
    m_taskCombo->setToolTip(tr("The task to train on: a demo task, or the run spec opened with File > Open Run Spec"));
    const QStringList generative = Workbench::demoGenerativeTasks();
    for (const QString& t : Workbench::demoTasks() + generative) {
        m_taskCombo->addItem(generative.contains(t) ? tr("Demo task: %1 (T5, text-to-text)").arg(QFileInfo(t).dir().dirName())
                                                    : tr("Demo task: %1").arg(QFileInfo(t).dir().dirName()),
                             t);
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
    m_stepsSpin = new QSpinBox(box);
    m_stepsSpin->setRange(1, 1000000);
    m_stepsSpin->setValue(static_cast<int>(dt::TrainingDefaults::max_steps));
    m_stepsSpin->setToolTip(tr("Optimizer steps (batch %1)").arg(dt::TrainingDefaults::batch_size));
    m_lrSpin = new QDoubleSpinBox(box);
    m_lrSpin->setDecimals(5);
    m_lrSpin->setRange(1e-6, 1.0);
    m_lrSpin->setSingleStep(0.001);
    m_lrSpin->setValue(dt::TrainingDefaults::lr);
    m_lrSpin->setToolTip(tr("Peak learning rate (linear schedule, 6% warmup)"));
    m_device = new QComboBox(box);
    for (const auto& d : dt::available_devices())
        m_device->addItem(d == "cpu" ? QStringLiteral("CPU") : QString::fromStdString(d).replace(QStringLiteral("cuda"), QStringLiteral("CUDA")),
                          QString::fromStdString(d));
    m_device->setToolTip(tr("Where training runs: the CPU, or a CUDA GPU when this LibTorch build sees one"));
    m_precision = new QComboBox(box);
    m_precision->addItems({QStringLiteral("fp32"), QStringLiteral("bf16")});
    if (m_device->count() > 1) m_precision->addItem(QStringLiteral("fp16"));
    m_precision->setToolTip(tr("Autocast precision of the forward pass; delta weights, gradients and AdamW state stay fp32. "
                               "fp16 (CUDA only) uses dynamic loss scaling"));
    auto* taskRow = new QHBoxLayout(box);
    taskRow->setContentsMargins(0, 0, 0, 0);
    taskRow->addWidget(new QLabel(tr("Task:"), box));
    taskRow->addWidget(m_taskCombo, 1);
    taskRow->addWidget(new QLabel(tr("Steps:"), box));
    taskRow->addWidget(m_stepsSpin);
    taskRow->addWidget(new QLabel(tr("LR:"), box));
    taskRow->addWidget(m_lrSpin);
    taskRow->addWidget(m_device);
    taskRow->addWidget(m_precision);
    connect(m_taskCombo, &QComboBox::currentIndexChanged, this, &TrainingTab::syncButtons);
    return box;
}

void TrainingTab::connectController() {
    connect(m_training, &TrainingController::runningChanged, this, [this](bool running) {
        syncButtons();
        m_pauseButton->setEnabled(running);
        m_pauseButton->setChecked(false);
        if (running) m_smoothedTps = 0;
        m_stopButton->setEnabled(running);
        m_progress->setVisible(running);
    });
    connect(m_training, &TrainingController::step, this, [this](qint64 step, qint64 max, double loss, double lr, double tps, double elapsed) {
        m_plot->addStep(step, loss, lr, tps);
        m_progress->setMaximum(static_cast<int>(max));
        m_progress->setValue(static_cast<int>(step));
        // Throughput as an exponential moving average: single steps jump between 300 and 35,000 tok/s.
        m_smoothedTps = m_smoothedTps > 0 ? 0.9 * m_smoothedTps + 0.1 * tps : tps;
        const double eta = step > 0 ? elapsed / static_cast<double>(step) * static_cast<double>(max - step) : 0;
        if (!m_pauseButton->isChecked())
            m_progress->setFormat(tr("%v/%m  ETA %1 s  %2 tok/s").arg(eta, 0, 'f', 0).arg(m_smoothedTps, 0, 'f', 0));
    });
    connect(m_training, &TrainingController::evaluated, this, [this](qint64 step, const QVariantMap& m) {
        // The score the run is ranked by: accuracy, else exact match (text-to-text), else Pearson.
        for (const char* key : {"accuracy", "exact_match", "pearson"})
            if (m.contains(QLatin1String(key))) {
                m_plot->addEvaluation(step, m.value(QLatin1String(key)).toDouble());
                break;
            }
        QStringList parts;
        for (auto it = m.begin(); it != m.end(); ++it) parts << QStringLiteral("%1 %2").arg(it.key()).arg(it.value().toDouble(), 0, 'f', 4);
        m_session->log(tr("Evaluation at step %1: %2").arg(step).arg(parts.join(QStringLiteral(", "))));
    });
    connect(m_training, &TrainingController::status, m_session, &Workbench::log);
    connect(m_training, &TrainingController::finished, this, [this](const QString& s, qint64 n) {
        m_history->addRun(m_lastRunDir);
        m_session->log(tr("Training %1 after %2 steps").arg(s).arg(n));
        m_session->showStatus(tr("Training %1").arg(s));
    });
    connect(m_training, &TrainingController::failed, m_session, &Workbench::fail);
}

QString TrainingTab::currentTask() const { return m_taskCombo->currentData().toString(); }
double TrainingTab::learningRate() const { return m_lrSpin->value(); }
bool TrainingTab::isRunning() const { return m_training->isRunning(); }

void TrainingTab::syncButtons() {
    const bool task = !currentTask().isEmpty();
    if (task) m_specLabel->setText(m_taskCombo->currentData(Qt::ToolTipRole).toString());
    else m_specLabel->setText(m_specPath.isEmpty() ? tr("No run spec: File > Open Run Spec") : m_specPath);
    m_specLabel->setToolTip(m_specLabel->text());
    m_startButton->setEnabled(!m_training->isRunning() && (task || !m_specPath.isEmpty()));
    m_stepsSpin->setEnabled(task);
    m_lrSpin->setEnabled(task);
}

void TrainingTab::chooseRunSpec() {
    const QString f = QFileDialog::getOpenFileName(this, tr("Open Run Spec"), QString(), tr("Run specs (*.json)"));
    if (f.isEmpty()) return;
    m_specPath = f;
    m_taskCombo->setCurrentIndex(m_taskCombo->count() - 1);
    syncButtons();
}

void TrainingTab::chooseSaveRunSpec() {
    const QString f = QFileDialog::getSaveFileName(this, tr("Save Run Spec"), QStringLiteral("run.json"), tr("Run specs (*.json)"));
    if (!f.isEmpty() && !saveRunSpec(f)) QMessageBox::warning(this, tr("Cannot save the run spec"), m_session->lastError());
}

void TrainingTab::chooseCurvesFile() {
    const QString f = QFileDialog::getSaveFileName(this, tr("Export Training Curves"), QStringLiteral("curves.png"),
                                                   tr("PNG images (*.png);;PDF files (*.pdf);;CSV files (*.csv)"));
    if (f.isEmpty()) return;
    const bool ok = f.endsWith(QLatin1String(".csv"), Qt::CaseInsensitive)   ? m_plot->saveCsv(f)
                    : f.endsWith(QLatin1String(".pdf"), Qt::CaseInsensitive) ? m_plot->savePdf(f)
                                                                              : m_plot->savePng(f);
    m_session->log(ok ? tr("Saved %1").arg(f) : tr("Could not save %1").arg(f));
}

bool TrainingTab::startTraining(const QString& specPath, const QString& runDir) {
    if (specPath.isEmpty()) return false;
    if (m_training->isRunning()) {
        m_session->fail(tr("A run is already training: stop it first"));
        return false;
    }
    m_specPath = specPath;
    m_specLabel->setText(specPath);
    const QString dir = runDir.isEmpty() ? QFileInfo(specPath).absolutePath() + QStringLiteral("/runs/") +
                                               QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss"))
                                         : runDir;
    m_plot->clear();
    m_lastRunDir = dir;
    Q_EMIT runStarted(dir);
    m_session->log(tr("Training %1 into %2").arg(specPath, dir));
    return m_training->start(specPath, dir);
}

nlohmann::json TrainingTab::taskRunSpec(const QString& taskFile, int steps, double lr) const {
    dt::RunChoices c;  // the same builder as `deltatune spec`: a GUI run is a CLI run
    c.model = m_session->modelForSpec();
    c.task_file = QFileInfo(taskFile).absoluteFilePath().toStdString();
    c.delta = m_session->runDelta();
    c.steps = steps;
    c.lr = lr;
    c.device = m_device->currentData().toString().toStdString();
    c.precision = m_precision->currentText().toStdString();
    return dt::build_run_spec(c);
}

bool TrainingTab::startTaskTraining(const QString& taskFile, int steps, double lr, const QString& runDir) {
    if (m_training->isRunning()) {
        m_session->fail(tr("A run is already training: stop it first"));
        return false;
    }
    if (!m_session->deltaReady()) return false;
    const QString dir = runDir.isEmpty() ? Workbench::workFolder(QStringLiteral("runs"), QFileInfo(taskFile).dir().dirName()) : runDir;
    if (!QDir().mkpath(dir)) {
        m_session->fail(tr("Cannot create the run folder %1").arg(dir));
        return false;
    }
    const QString specPath = QString::fromStdString(dt::run_folder::spec_path(dir.toStdString()));
    try {
        nlohmann::json spec = taskRunSpec(taskFile, steps, lr);
        spec["output_dir"] = dir.toStdString();
        dt::write_file_atomic(specPath.toStdString(), spec.dump(2) + "\n");
    } catch (const dt::Error& e) {
        m_session->fail(QString::fromStdString(e.what()));
        return false;
    }
    return startTraining(specPath, dir);
}

bool TrainingTab::saveRunSpec(const QString& path) {
    const QString task = currentTask();
    if (task.isEmpty()) {
        m_session->fail(tr("Choose a demo task first (a spec opened from a file is already saved)"));
        return false;
    }
    if (!m_session->deltaReady()) return false;
    try {
        dt::write_file_atomic(path.toStdString(), taskRunSpec(task, m_stepsSpin->value(), m_lrSpin->value()).dump(2) + "\n");
    } catch (const dt::Error& e) {
        m_session->fail(QString::fromStdString(e.what()));
        return false;
    }
    m_session->log(tr("Saved the run spec %1 (deltatune train --spec %1 --out RUN_DIR)").arg(path));
    return true;
}

QString TrainingTab::useTaskData(TaskPanel* panel) {
    const QString name = QString::fromStdString(panel->taskJson().value("name", std::string("task")));
    const QString path = panel->writeTask(Workbench::workFolder(QStringLiteral("tasks"), name));
    if (path.isEmpty()) {
        m_session->fail(panel->error());
        return {};
    }
    const int at = m_taskCombo->count() - 1;  // before "Run spec file"
    m_taskCombo->insertItem(at, tr("Data: %1").arg(name), path);
    m_taskCombo->setItemData(at, path, Qt::ToolTipRole);
    m_taskCombo->setCurrentIndex(at);
    m_session->log(tr("Task %1 written to %2; it is selected in the Training tab").arg(name, path));
    return path;
}
