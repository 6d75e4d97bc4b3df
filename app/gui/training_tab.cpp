// TrainingTab: the Training tab (see training_tab.h).
#include "training_tab.h"

#include "class_metrics_view.h"
#include "fit_probe.h"
#include "resource_view.h"
#include "run_history.h"
#include "task_panel.h"
#include "training_controller.h"
#include "training_plot.h"
#include "workbench.h"

#include "core/devices.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "train/run_folder.h"
#include "train/run.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QTabWidget>
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
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QStandardItemModel>
#include <QThread>
#include <QVBoxLayout>

#include <algorithm>

// The device choice from the engine's probe (the one `deltatune doctor` prints): the CPU, each
// visible GPU with its name and memory, or a disabled CUDA entry whose tooltip says why none is offered.
void fillDeviceChoice(QComboBox* combo, const dt::DeviceProbe& probe) {
    combo->clear();
    combo->addItem(QStringLiteral("CPU"), QStringLiteral("cpu"));
    combo->setItemData(0, QObject::tr("%1 threads, BLAS: %2").arg(probe.threads).arg(QString::fromStdString(probe.blas)), Qt::ToolTipRole);
    for (const auto& g : probe.gpus) {
        QString label = QStringLiteral("CUDA:%1").arg(g.index);
        if (probe.cuda_headers) label += QStringLiteral(" ") + QString::fromStdString(g.name);
        combo->addItem(label, QStringLiteral("cuda:%1").arg(g.index));
        combo->setItemData(combo->count() - 1,
                           probe.cuda_headers ? QObject::tr("%1, %2 GiB, compute capability %3.%4, bf16 %5")
                                                    .arg(QString::fromStdString(g.name))
                                                    .arg(static_cast<double>(g.total_bytes) / (1 << 30), 0, 'f', 1)
                                                    .arg(g.major)
                                                    .arg(g.minor)
                                                    .arg(g.bf16 ? QObject::tr("yes") : QObject::tr("no"))
                                              : QObject::tr("CUDA device %1").arg(g.index),
                           Qt::ToolTipRole);
    }
    QString tip = QObject::tr("Where training runs: the CPU, or a CUDA GPU this LibTorch build sees.");
    if (probe.gpus.empty()) {
        const QString why = QString::fromStdString(probe.cuda_reason);
        combo->addItem(QObject::tr("CUDA (not offered)"), QString());
        if (auto* model = qobject_cast<QStandardItemModel*>(combo->model())) model->item(combo->count() - 1)->setEnabled(false);
        combo->setItemData(combo->count() - 1, why, Qt::ToolTipRole);
        tip += QStringLiteral(" ") + QObject::tr("CUDA is not offered: %1.").arg(why);
    }
    combo->setToolTip(tip + QStringLiteral(" ") + QObject::tr("`deltatune doctor --device cuda` tests a GPU install."));
    combo->setCurrentIndex(0);
}

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
    m_history = new RunHistory(this);  // the window shows it as the Runs tab (which reparents it)
    m_history->hide();
    connect(m_history, &RunHistory::overlay, m_plot, &TrainingPlot::setOverlay);
    connect(m_history, &RunHistory::overlayRemoved, m_plot, &TrainingPlot::removeOverlay);
    connect(m_history, &RunHistory::resumeRequested, this, &TrainingTab::resumeRun);
    connect(m_history, &RunHistory::message, m_session, [this](const QString& m) {
        m_session->showStatus(m);
        m_session->log(m);
    });
    connect(m_history, &RunHistory::failed, m_session, &Workbench::fail);
    m_history->scan(QFileInfo(Workbench::workFolder(QStringLiteral("runs"), QStringLiteral("x"))).absolutePath());
    // Beside the live curves: this run's per-class metrics and the process's resources.
    m_classes = new ClassMetricsView(this);
    m_resources = new ResourceView(this);
    auto* side = new QTabWidget(this);
    side->addTab(m_classes, tr("Classes"));
    side->addTab(m_resources, tr("Resources"));
    auto* plotSplit = new QSplitter(this);
    plotSplit->addWidget(m_plot);
    plotSplit->addWidget(side);
    plotSplit->setStretchFactor(0, 2);
    plotSplit->setStretchFactor(1, 1);
    side->setMinimumWidth(200);
    m_hint = new QLabel(tr("<b>First time here?</b> A demo model is open: pick a task above and press <b>Start</b> to train a LoRA "
                           "delta (about 20 s on a laptop). Tick modules in the Model panel and change the method on the right to "
                           "see the trainable count change. Help &gt; Getting Started has the rest. <a href=\"close\">Close</a>"),
                        this);
    m_hint->setWordWrap(true);
    m_hint->setAutoFillBackground(true);
    m_hint->setBackgroundRole(QPalette::ToolTipBase);
    m_hint->setForegroundRole(QPalette::ToolTipText);
    m_hint->setMargin(6);
    m_hint->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Maximum);
    m_hint->setMaximumHeight(m_hint->fontMetrics().lineSpacing() * 4 + 12);  // never more than a few lines
    m_hint->setVisible(QSettings().value(QStringLiteral("hints/firstRun"), true).toBool());
    connect(m_hint, &QLabel::linkActivated, this, &TrainingTab::dismissHint);
    auto* lay = new QVBoxLayout(this);
    lay->addWidget(m_hint);
    lay->addWidget(buildSettingsRow());
    lay->addWidget(buildMoreSettings());
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
    m_device->setObjectName(QStringLiteral("deviceCombo"));
    fillDeviceChoice(m_device, dt::probe_devices());
    m_precision = new QComboBox(box);
    m_precision->addItems({QStringLiteral("fp32"), QStringLiteral("bf16")});
    if (m_device->findData(QStringLiteral("cuda:0")) >= 0) m_precision->addItem(QStringLiteral("fp16"));
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

QGroupBox* TrainingTab::buildMoreSettings() {
    m_more = new QGroupBox(tr("Training settings"), this);
    m_more->setCheckable(true);  // unticked: folded away, and the defaults apply
    m_more->setChecked(false);
    m_more->setFlat(true);  // folded: a title line, not an empty frame
    m_more->setToolTip(tr("Tick to set the batch, schedule, evaluation and early stopping; each field is the run spec's field of the same name"));
    auto spin = [this](int lo, int hi, int value, const QString& name, const QString& tip) {
        auto* s = new QSpinBox(m_more);
        s->setRange(lo, hi);
        s->setValue(value);
        s->setObjectName(name);
        s->setToolTip(tip + tr(" (run spec: %1)").arg(name));
        return s;
    };
    m_batch = spin(1, 4096, static_cast<int>(dt::TrainingDefaults::batch_size), QStringLiteral("batch_size"), tr("Examples per micro-batch"));
    m_accum = spin(1, 1024, 1, QStringLiteral("grad_accum"), tr("Micro-batches summed into one optimizer step (effective batch = batch x this)"));
    m_seed = spin(0, 1 << 30, 0, QStringLiteral("seed"), tr("Seeds data order, dropout and the delta's initialisation: the same seed repeats a run"));
    m_evalEvery = spin(0, 1000000, 0, QStringLiteral("eval_every"), tr("Evaluate on the validation set every N steps; 0: about 10 times per run"));
    m_patience = spin(0, 1000, 0, QStringLiteral("patience"), tr("Stop after this many evaluations without improvement; 0: never stop early"));
    m_maxLength = spin(0, 65536, 0, QStringLiteral("max_length"), tr("Tokens kept per example (longest-first truncation); 0: the task's own"));
    m_warmup = new QDoubleSpinBox(m_more);
    m_warmup->setRange(0, 0.5);
    m_warmup->setDecimals(3);
    m_warmup->setSingleStep(0.01);
    m_warmup->setValue(dt::TrainingDefaults::warmup_ratio);
    m_warmup->setObjectName(QStringLiteral("warmup_ratio"));
    m_warmup->setToolTip(tr("Share of the steps over which the learning rate rises linearly from 0 (run spec: warmup_ratio)"));
    m_schedule = new QComboBox(m_more);
    m_schedule->addItems({QStringLiteral("linear"), QStringLiteral("cosine"), QStringLiteral("constant")});
    m_schedule->setObjectName(QStringLiteral("schedule"));
    m_schedule->setToolTip(tr("How the learning rate decays after warmup: to 0 linearly, along a cosine, or not at all (run spec: schedule)"));
    m_processes = new QSpinBox(m_more);
    m_processes->setRange(1, std::max(2, QThread::idealThreadCount()));
    m_processes->setValue(1);
    m_processes->setObjectName(QStringLiteral("processes"));
    m_processes->setToolTip(tr("Data-parallel worker processes (deltatune train --nproc N): each trains on its share of every batch, "
                               "and the trainable gradients are averaged (docs/distributed.md). Not a run-spec field"));
    m_baseStorage = new QComboBox(m_more);
    m_baseStorage->setObjectName(QStringLiteral("base_storage"));
    m_baseStorage->addItem(tr("fp32"), QStringLiteral("fp32"));
    m_baseStorage->addItem(tr("bf16 (half the memory)"), QStringLiteral("bf16"));
    m_baseStorage->addItem(tr("int8 (a quarter)"), QStringLiteral("int8"));
    m_baseStorage->addItem(tr("nf4, QLoRA (an eighth)"), QStringLiteral("nf4"));
    m_baseStorage->setToolTip(tr("How the frozen base's weights are kept while training: fp32, bf16 (run spec: base_dtype), or quantized "
                                 "int8 / NF4 with double-quantised scales as in QLoRA (run spec: quantize). Deltas, gradients and AdamW "
                                 "stay fp32; exports are ordinary adapters, and merged exports start again from the full-precision base"));
    m_packing = new QCheckBox(tr("causal LM"), m_more);
    m_packing->setObjectName(QStringLiteral("packing"));
    m_packing->setToolTip(tr("Causal LM tasks: each batch's examples packed one after another into fewer rows, attention and positions "
                             "kept per example, so the loss is the unpacked one with less padding (run spec: packing)"));
    auto* grid = new QGridLayout;
    const QList<QPair<QString, QWidget*>> fields = {{tr("Batch"), m_batch},         {tr("Accumulate"), m_accum},   {tr("Seed"), m_seed},
                                                    {tr("Warmup"), m_warmup},       {tr("Schedule"), m_schedule}, {tr("Eval every"), m_evalEvery},
                                                    {tr("Patience"), m_patience}, {tr("Max length"), m_maxLength},
                                                    {tr("Processes"), m_processes}, {tr("Frozen base"), m_baseStorage},
                                                    {tr("Pack"), m_packing}};
    for (int i = 0; i < fields.size(); ++i) {
        auto* label = new QLabel(fields[i].first, m_more);
        label->setToolTip(fields[i].second->toolTip());
        grid->addWidget(label, i / 4, (i % 4) * 2);
        grid->addWidget(fields[i].second, i / 4, (i % 4) * 2 + 1);
    }
    // Will it fit: the budget's estimate beside a measured step.
    auto* measure = new QPushButton(tr("Measure Memory"), m_more);
    measure->setToolTip(tr("Run one real training step at this batch in a separate process and report its peak memory"));
    auto* largest = new QPushButton(tr("Largest Batch"), m_more);
    largest->setToolTip(tr("Double the batch from 1 while one step's peak memory stays under 90% of the memory available"));
    m_fitLabel = new QLabel(m_more);
    m_fitLabel->setWordWrap(true);
    m_fitLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_fitLabel->setText(tr("Will it fit? Measure one step, or find the largest batch."));
    auto* fitRow = new QHBoxLayout;
    fitRow->addWidget(measure);
    fitRow->addWidget(largest);
    fitRow->addWidget(m_fitLabel, 1);
    m_parallelLabel = new QLabel(m_more);
    m_parallelLabel->setWordWrap(true);
    m_parallelLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    grid->addWidget(m_parallelLabel, 3, 0, 1, 8);  // under the fields, the whole width
    auto updateParallel = [this] {
        const int n = m_more->isChecked() ? m_processes->value() : 1, b = m_batch->value();  // unticked: the defaults
        const qint64 bytes = m_session->allReduceBytes();
        QString text = n == 1 ? tr("One process (more: data-parallel workers)")
                              : tr("%1 processes x batch %2 = %3 examples a step").arg(n).arg(b).arg(n * b);
        if (n > 1 && bytes >= 0) text += tr("; all-reduce %1 KiB a step").arg(static_cast<double>(bytes) / 1024.0, 0, 'f', 1);
        m_parallelLabel->setText(text);
        m_training->setProcesses(n);
        m_pauseButton->setToolTip(n > 1 ? tr("Several processes cannot pause: Stop, then Resume from the Runs tab")
                                        : tr("Pause between micro-batches; press again to resume"));
    };
    connect(m_processes, &QSpinBox::valueChanged, this, updateParallel);
    connect(m_batch, &QSpinBox::valueChanged, this, updateParallel);
    connect(m_more, &QGroupBox::toggled, this, updateParallel);
    updateParallel();
    grid->addLayout(fitRow, 4, 0, 1, 8);
    m_fit = new FitProbe(this);
    connect(measure, &QPushButton::clicked, this, &TrainingTab::measureMemory);
    connect(largest, &QPushButton::clicked, this, [this] { findLargestBatch(); });
    connect(m_fit, &FitProbe::progress, m_fitLabel, &QLabel::setText);
    connect(m_fit, &FitProbe::failed, this, [this](const QString& m) {
        m_fitLabel->setText(m);
        m_session->fail(m);
    });
    connect(m_fit, &FitProbe::measured, this, [this](int batch, qint64 peak, qint64 loaded) {
        const int tokens = m_maxLength->value() > 0 ? m_maxLength->value() : 128;
        const qint64 estimate = m_session->memoryEstimate(batch, tokens);
        const qint64 avail = FitProbe::availableBytes();
        QString text = tr("Batch %1: measured peak %2 MiB (%3 MiB after loading)").arg(batch).arg(peak >> 20).arg(loaded >> 20);
        if (estimate >= 0) text += tr("; the budget estimated %1 MiB for the weights, optimizer and activations").arg(estimate >> 20);
        if (avail > 0) text += peak < avail ? tr("; fits in the %1 MiB available").arg(avail >> 20) : tr("; does NOT fit in the %1 MiB available").arg(avail >> 20);
        m_fitLabel->setText(text);
        m_session->log(text);
    });
    connect(m_fit, &FitProbe::largest, this, [this](int batch, qint64 peak, const QString& why) {
        const QString text = batch > 0 ? tr("Largest batch that fits: %1 (peak %2 MiB); stopped: %3").arg(batch).arg(peak >> 20).arg(why)
                                       : tr("Not even batch 1 fits: %1").arg(why);
        m_fitLabel->setText(text);
        m_session->log(text);
    });
    auto* inner = new QWidget(m_more);
    inner->setLayout(grid);
    auto* lay = new QVBoxLayout(m_more);
    lay->setContentsMargins(6, 2, 6, 2);
    lay->addWidget(inner);
    inner->setVisible(false);
    connect(m_more, &QGroupBox::toggled, inner, &QWidget::setVisible);
    connect(m_batch, &QSpinBox::valueChanged, this, [this](int b) { m_stepsSpin->setToolTip(tr("Optimizer steps (batch %1)").arg(b)); });
    return m_more;
}

QString TrainingTab::fitText() const { return m_fitLabel->text(); }

QString TrainingTab::probeSpec() {
    const QString task = currentTask();
    if (task.isEmpty()) {
        if (m_specPath.isEmpty()) m_session->fail(tr("Choose a task or open a run spec to measure"));
        return m_specPath;
    }
    if (!m_session->deltaReady()) return {};
    const QString dir = Workbench::workFolder(QStringLiteral("probes"), QStringLiteral("memory"));
    const QString path = dir + QStringLiteral("/spec.json");
    try {
        dt::make_dirs(dir.toStdString());
        dt::write_file_atomic(path.toStdString(), taskRunSpec(task, m_stepsSpin->value(), m_lrSpin->value()).dump(2) + "\n");
    } catch (const dt::Error& e) {
        m_session->fail(QString::fromStdString(e.what()));
        return {};
    }
    return path;
}

bool TrainingTab::measureMemory() {
    if (m_fit->isRunning()) return false;
    const QString spec = probeSpec();
    return !spec.isEmpty() && m_fit->measure(spec, m_more->isChecked() ? m_batch->value() : static_cast<int>(dt::TrainingDefaults::batch_size));
}

bool TrainingTab::findLargestBatch(int maxBatch, qint64 limitBytes) {
    if (m_fit->isRunning()) return false;
    const QString spec = probeSpec();
    return !spec.isEmpty() && m_fit->findLargest(spec, maxBatch, limitBytes);
}

QWidget* TrainingTab::settingField(const QString& specName) const {
    for (QWidget* w : {static_cast<QWidget*>(m_batch), static_cast<QWidget*>(m_accum), static_cast<QWidget*>(m_seed), static_cast<QWidget*>(m_warmup),
                       static_cast<QWidget*>(m_schedule), static_cast<QWidget*>(m_evalEvery), static_cast<QWidget*>(m_patience),
                       static_cast<QWidget*>(m_maxLength), static_cast<QWidget*>(m_processes), static_cast<QWidget*>(m_baseStorage),
                       static_cast<QWidget*>(m_packing)})
        if (w->objectName() == specName) return w;
    return m_more;  // "" or unknown: the group (tick it to use the fields)
}

void TrainingTab::connectController() {
    connect(m_training, &TrainingController::confusion, m_classes,
            [this](qint64 step, const dt::ConfusionMatrix& cm) { m_classes->setConfusion(step, cm, tr("this run")); });
    connect(m_training, &TrainingController::runningChanged, this, [this](bool running) {
        m_resources->setSampling(running);
        m_history->setActiveRun(running ? m_lastRunDir : QString());
        syncButtons();
        m_pauseButton->setEnabled(running && m_training->processes() == 1);  // several processes stop, not pause
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
        // On a label-word task exact_match is stricter than accuracy: the model's own top word over
        // the whole vocabulary must be the gold label word (as a text-to-text answer is judged).
        if (m.contains(QStringLiteral("exact_match")) && m.contains(QStringLiteral("accuracy")))
            parts << tr("(exact_match: the top word over the whole vocabulary is the gold label word; accuracy compares the label words only)");
        m_session->log(tr("Evaluation at step %1: %2").arg(step).arg(parts.join(QStringLiteral(", "))));
    });
    connect(m_training, &TrainingController::status, m_session, &Workbench::log);
    connect(m_training, &TrainingController::finished, this, [this](const QString& s, qint64 n) {
        m_history->setActiveRun(QString());
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
    const QString f = QFileDialog::getOpenFileName(this, tr("Open Run Spec"), Workbench::dialogStart(QStringLiteral("specs")), tr("Run specs (*.json)"));
    Workbench::remember(QStringLiteral("specs"), f, false);
    if (f.isEmpty()) return;
    m_specPath = f;
    m_taskCombo->setCurrentIndex(m_taskCombo->count() - 1);
    syncButtons();
}

void TrainingTab::chooseSaveRunSpec() {
    const QString f = QFileDialog::getSaveFileName(this, tr("Save Run Spec"), Workbench::dialogStart(QStringLiteral("specs"), QStringLiteral("run.json")), tr("Run specs (*.json)"));
    Workbench::remember(QStringLiteral("specs"), f, false);
    if (!f.isEmpty() && !saveRunSpec(f)) QMessageBox::warning(this, tr("Cannot save the run spec"), m_session->lastError());
}

void TrainingTab::chooseCurvesFile() {
    const QString f = QFileDialog::getSaveFileName(this, tr("Export Training Curves"), Workbench::dialogStart(QStringLiteral("exports"), QStringLiteral("curves.png")),
                                                   tr("PNG images (*.png);;PDF files (*.pdf);;CSV files (*.csv)"));
    Workbench::remember(QStringLiteral("exports"), f, false);
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
    m_classes->clear();
    if (m_hint->isVisible()) dismissHint();  // the user found Start
    m_lastRunDir = dir;
    Q_EMIT runStarted(dir);
    m_session->log(tr("Training %1 into %2").arg(specPath, dir));
    return m_training->start(specPath, dir);
}

void TrainingTab::dismissHint() {
    m_hint->hide();
    QSettings().setValue(QStringLiteral("hints/firstRun"), false);
}

bool TrainingTab::resumeRun(const QString& runDir) {
    if (m_training->isRunning()) {
        m_session->fail(tr("A run is already training: stop it first"));
        return false;
    }
    m_plot->clear();
    m_classes->clear();
    m_lastRunDir = QFileInfo(runDir).absoluteFilePath();
    // The curve up to the checkpoint it resumes from, then the resumed steps live.
    qint64 from = 0;
    try {
        const QString latest = QString::fromStdString(dt::run_folder::latest_name(m_lastRunDir.toStdString()));
        if (latest.startsWith(QLatin1String("step-"))) from = latest.mid(5).toLongLong();
    } catch (const dt::Error&) {
        // the controller reports a broken checkpoints/latest
    }
    QVector<double> steps, losses;
    if (RunHistory::readSeries(m_lastRunDir, QStringLiteral("training loss"), QStringLiteral("step"), 0.0, steps, losses))
        for (int i = 0; i < steps.size() && steps[i] <= static_cast<double>(from); ++i) m_plot->addStep(static_cast<qint64>(steps[i]), losses[i]);
    Q_EMIT runStarted(m_lastRunDir);
    m_session->log(tr("Resuming %1").arg(m_lastRunDir));
    return m_training->resume(m_lastRunDir);
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
    if (m_more->isChecked()) {  // the Training settings, each onto the spec field of its name
        c.batch_size = m_batch->value();
        c.grad_accum = m_accum->value();
        c.seed = static_cast<std::uint64_t>(m_seed->value());
        c.warmup_ratio = m_warmup->value();
        c.schedule = m_schedule->currentText().toStdString();
        c.eval_every = m_evalEvery->value();
        c.patience = m_patience->value();
        c.max_length = m_maxLength->value();
        c.packing = m_packing->isChecked();
        const QString base = m_baseStorage->currentData().toString();
        if (base == QLatin1String("int8") || base == QLatin1String("nf4")) {
            c.quantize = base.toStdString();
            c.double_quant = base == QLatin1String("nf4");
        } else {
            c.base_dtype = base.toStdString();
        }
    }
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
