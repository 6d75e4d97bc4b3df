// TransferTab: the Transfer & Ablation tab (see transfer_tab.h).
#include "transfer_tab.h"

#include "experiment_controller.h"
#include "heatmap_view.h"
#include "run_history.h"
#include "training_tab.h"
#include "workbench.h"

#include "core/error.h"
#include "train/defaults.h"
#include "train/run_folder.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include <QCheckBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>

#include <cmath>
#include <tuple>

TransferTab::TransferTab(Workbench* session, const TrainingTab* training, QWidget* parent)
    : QWidget(parent), m_session(session), m_training(training), m_experiments(new ExperimentController(this)) {
    m_heatmap = new HeatmapView(this);
    m_heatmap->setTitle(tr("Transfer"), tr("accuracy"));
    auto* split = new QSplitter(this);
    split->addWidget(buildSidePanel());
    split->addWidget(m_heatmap);
    split->setStretchFactor(1, 1);
    split->setSizes({220, 700});
    auto* lay = new QVBoxLayout(this);
    lay->addWidget(split);
    connectExperiments();
}

QWidget* TransferTab::buildSidePanel() {
    auto* side = new QWidget(this);
    m_tasks = new QListWidget(side);
    m_tasks->setToolTip(tr("Tasks of the transfer matrix: one delta is trained per task, then every delta is evaluated on every task"));
    for (const QString& t : Workbench::demoTasks()) {
        auto* item = new QListWidgetItem(QFileInfo(t).dir().dirName(), m_tasks);
        item->setData(Qt::UserRole, t);
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        item->setCheckState(Qt::Checked);
    }
    // The generative tasks (text-to-text, for the demo T5s): offered unticked.
    for (const QString& t : Workbench::demoGenerativeTasks()) {
        auto* item = new QListWidgetItem(tr("%1 (T5)").arg(QFileInfo(t).dir().dirName()), m_tasks);
        item->setData(Qt::UserRole, t);
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        item->setCheckState(Qt::Unchecked);
        item->setToolTip(tr("A text-to-text task: needs an encoder-decoder such as the demo T5s; scored by generation (exact match)"));
    }
    m_steps = new QSpinBox(side);
    m_steps->setRange(1, 100000);
    m_steps->setValue(static_cast<int>(dt::TrainingDefaults::transfer_steps));
    m_steps->setToolTip(tr("Training steps per task delta (the method panel's delta, batch %1, the Training tab's learning rate)")
                            .arg(dt::TrainingDefaults::batch_size));
    m_relative = new QCheckBox(tr("Relative to the target's own delta"), side);
    m_relative->setToolTip(tr("Divide each cell by the column task's own delta on it (the study's presentation)"));
    m_run = new QPushButton(tr("Run Transfer"), side);
    m_run->setToolTip(tr("Train the missing deltas and fill the matrix in the background"));
    m_stop = new QPushButton(tr("Stop"), side);
    m_stop->setEnabled(false);
    m_stop->setToolTip(tr("Stop between cells; Run Transfer again continues with the cells already computed"));
    m_ablate = new QPushButton(tr("Layer Ablation of Last Run"), side);
    m_ablate->setToolTip(tr("Evaluate the Training tab's last finished run with its delta removed from layers i..j"));
    m_deltaRows = new QListWidget(side);
    m_deltaRows->setToolTip(tr("More rows: exported or merged delta folders, each evaluated on every ticked task"));
    m_deltaRows->setMaximumHeight(64);
    auto* addRow = new QPushButton(tr("Add Delta Row…"), side);
    addRow->setToolTip(tr("A folder exported by DeltaTune or saved by PEFT, or made by File > Merge Deltas"));
    auto* removeRow = new QPushButton(tr("Remove"), side);
    connect(addRow, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Delta folder for a transfer row"), Workbench::dialogStart(QStringLiteral("deltas")));
        Workbench::remember(QStringLiteral("deltas"), dir, true);
        if (!dir.isEmpty()) addDeltaRow(QFileInfo(dir).fileName(), dir);
    });
    connect(removeRow, &QPushButton::clicked, this, [this] { delete m_deltaRows->currentItem(); });
    auto* form = new QVBoxLayout(side);
    form->addWidget(new QLabel(tr("Tasks:"), side));
    form->addWidget(m_tasks, 1);
    form->addWidget(new QLabel(tr("Extra delta rows:"), side));
    form->addWidget(m_deltaRows);
    auto* rowButtons = new QHBoxLayout;
    rowButtons->addWidget(addRow);
    rowButtons->addWidget(removeRow);
    form->addLayout(rowButtons);
    auto* stepsRow = new QHBoxLayout;
    stepsRow->addWidget(new QLabel(tr("Steps per delta:"), side));
    stepsRow->addWidget(m_steps);
    form->addLayout(stepsRow);
    form->addWidget(m_relative);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_run);
    buttons->addWidget(m_stop);
    form->addLayout(buttons);
    form->addWidget(m_ablate);
    auto* exports = new QHBoxLayout;
    for (const auto& [label, filter, ext] : {std::make_tuple(tr("PNG…"), tr("PNG images (*.png)"), QStringLiteral("png")),
                                             std::make_tuple(tr("PDF…"), tr("PDF files (*.pdf)"), QStringLiteral("pdf")),
                                             std::make_tuple(tr("CSV…"), tr("CSV files (*.csv)"), QStringLiteral("csv"))}) {
        auto* b = new QPushButton(label, side);
        connect(b, &QPushButton::clicked, this, [this, filter = filter, ext = ext] { saveHeatmap(filter, ext); });
        exports->addWidget(b);
    }
    form->addLayout(exports);
    connect(m_relative, &QCheckBox::toggled, this, [this] {
        rescale();
        redraw();
    });
    connect(m_run, &QPushButton::clicked, this, [this] { startTransfer(checkedTasks(), m_steps->value(), m_resumable ? m_outDir : QString()); });
    connect(m_stop, &QPushButton::clicked, m_experiments, &ExperimentController::stop);
    connect(m_ablate, &QPushButton::clicked, this, [this] {
        // The newest run that finished (a cancelled last run is passed over, and said so).
        const QStringList runs = m_training->history()->runDirs();
        for (const QString& run : runs) {
            const auto s = dt::run_folder::summarize_run(run.toStdString());
            if (!s.finished() || !dt::run_folder::has_checkpoint(dt::run_folder::checkpoint_path(run.toStdString(), dt::run_folder::kFinal))) continue;
            if (run != runs.front()) m_session->log(tr("The newest run did not finish: ablating %1 instead").arg(QFileInfo(run).fileName()));
            startAblation(run);
            return;
        }
        m_session->fail(tr("No finished run to ablate: train a delta to the end in the Training tab first"));
    });
    return side;
}

void TransferTab::connectExperiments() {
    connect(m_experiments, &ExperimentController::runningChanged, this, [this](bool running) {
        m_run->setEnabled(!running);
        m_ablate->setEnabled(!running);
        m_stop->setEnabled(running);
    });
    connect(m_experiments, &ExperimentController::matrix, this, &TransferTab::showMatrix);
    connect(m_experiments, &ExperimentController::cell, this, &TransferTab::showCell);
    connect(m_experiments, &ExperimentController::trainStep, this, [this](const QString& task, qint64 step, double elapsed) {
        // "Transfer: delta 2/3 (news), step 120/400, about 25 s left"
        const int index = static_cast<int>(std::find(m_result.cols.begin(), m_result.cols.end(), task.toStdString()) - m_result.cols.begin());
        const qint64 total = m_transferSteps;
        QString text = tr("Transfer: training delta %1/%2 (%3), step %4/%5").arg(index + 1).arg(m_result.cols.size()).arg(task).arg(step).arg(total);
        if (step > 0 && total > step) text += tr(", about %1 s left for it").arg(qRound(elapsed / static_cast<double>(step) * static_cast<double>(total - step)));
        m_progress = text;
        m_session->showStatus(text, 5000);
    });
    connect(m_experiments, &ExperimentController::status, this, [this](const QString& s) { m_session->showStatus(s, 3000); });
    connect(m_experiments, &ExperimentController::finished, this, [this](bool stopped) {
        if (!m_ablationShown) m_resumable = stopped;
        m_session->showStatus(stopped ? tr("Transfer stopped") : tr("Transfer finished"));
        if (m_ablationShown) m_session->log(tr("Layer ablation %1").arg(stopped ? tr("stopped") : tr("finished")));
        else m_session->log(stopped ? tr("Transfer stopped; Run Transfer continues it (%1)").arg(m_outDir)
                                    : tr("Transfer finished: %1/matrix.json and matrix.csv").arg(m_outDir));
    });
    connect(m_experiments, &ExperimentController::failed, m_session, &Workbench::fail);
}

QStringList TransferTab::checkedTasks() const {
    QStringList tasks;
    for (int i = 0; i < m_tasks->count(); ++i)
        if (m_tasks->item(i)->checkState() == Qt::Checked) tasks << m_tasks->item(i)->data(Qt::UserRole).toString();
    return tasks;
}

bool TransferTab::relativeView() const { return m_relative->isChecked() && !m_ablationShown; }

void TransferTab::showMatrix(const QStringList& rows, const QStringList& cols, const QStringList& rc, const QStringList& cc, const QString& metric) {
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
    rescale();
}

void TransferTab::showCell(int r, int c, double v, const QString& note) {
    if (r < 0 || c < 0 || static_cast<std::size_t>(r) >= m_result.rows.size() || static_cast<std::size_t>(c) >= m_result.cols.size()) return;
    m_result.value[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = v;
    m_result.note[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = note.toStdString();
    if (relativeView()) redraw();  // a new own-task cell changes its whole column
    else m_heatmap->setCell(r, c, v, note);
}

// The cells as they arrive; the relative view is the engine's ResultMatrix::relative().
void TransferTab::redraw() {
    const bool rel = relativeView();
    const auto relative = m_result.relative();
    for (std::size_t r = 0; r < m_result.rows.size(); ++r)
        for (std::size_t c = 0; c < m_result.cols.size(); ++c)
            m_heatmap->setCell(static_cast<int>(r), static_cast<int>(c), rel ? relative[r][c] : m_result.value[r][c],
                               QString::fromStdString(m_result.note[r][c]));
}

// Raw accuracy on a fixed 0..1 scale (0.50 and 0.54 should look alike); ratios on their own range.
void TransferTab::rescale() {
    if (!relativeView() && m_result.metric == "accuracy") m_heatmap->setRange(0, 1);
    else m_heatmap->setAutoRange();
}

void TransferTab::saveHeatmap(const QString& filter, const QString& ext) {
    const QString f = QFileDialog::getSaveFileName(this, tr("Export Heatmap"), Workbench::dialogStart(QStringLiteral("exports"), QStringLiteral("transfer.") + ext), filter);
    Workbench::remember(QStringLiteral("exports"), f, false);
    if (f.isEmpty()) return;
    const bool ok = ext == QLatin1String("png") ? m_heatmap->savePng(f) : ext == QLatin1String("pdf") ? m_heatmap->savePdf(f) : m_heatmap->saveCsv(f);
    m_session->log(ok ? tr("Saved %1").arg(f) : tr("Could not save %1").arg(f));
}

void TransferTab::addDeltaRow(const QString& name, const QString& folder) {
    for (int i = 0; i < m_deltaRows->count(); ++i)
        if (m_deltaRows->item(i)->data(Qt::UserRole).toString() == folder) return;
    QString unique = name;
    for (int n = 2; !m_deltaRows->findItems(unique, Qt::MatchExactly).isEmpty(); ++n) unique = QStringLiteral("%1 (%2)").arg(name).arg(n);
    auto* item = new QListWidgetItem(unique, m_deltaRows);
    item->setData(Qt::UserRole, folder);
    item->setToolTip(folder);
}

QList<QPair<QString, QString>> TransferTab::deltaRows() const {
    QList<QPair<QString, QString>> rows;
    for (int i = 0; i < m_deltaRows->count(); ++i) rows.append({m_deltaRows->item(i)->text(), m_deltaRows->item(i)->data(Qt::UserRole).toString()});
    return rows;
}

bool TransferTab::startTransfer(const QStringList& taskFiles, int steps, const QString& outDir) {
    if (m_experiments->isRunning()) {
        m_session->fail(tr("An experiment is already running: stop it first"));
        return false;
    }
    if (taskFiles.size() < 2) {
        m_session->fail(tr("Tick at least two tasks"));
        return false;
    }
    if (!m_session->deltaReady()) return false;
    m_outDir = outDir.isEmpty() ? Workbench::workFolder(QStringLiteral("experiments"), QStringLiteral("transfer")) : outDir;
    m_resumable = false;
    try {
        if (m_session->deltaSpec().empty()) throw dt::Error("the method panel's delta is not valid", "transfer", "fix the method panel's form");
        nlohmann::json j = {{"model", m_session->modelForSpec()},
                            {"tasks", nlohmann::json::array()},
                            {"delta", nlohmann::json::parse(m_session->deltaSpec())},
                            {"training", {{"max_steps", steps}, {"batch_size", dt::TrainingDefaults::batch_size}, {"lr", m_training->learningRate()}}},
                            {"output_dir", m_outDir.toStdString()}};
        for (const QString& t : taskFiles) j["tasks"].push_back(QFileInfo(t).absoluteFilePath().toStdString());
        for (const auto& [name, folder] : deltaRows()) j["extra_deltas"][name.toStdString()] = folder.toStdString();
        const auto spec = dt::TransferSpec::from_json(j, "workbench", "");
        m_session->log(tr("Transfer over %1 tasks into %2").arg(taskFiles.size()).arg(m_outDir));
        m_ablationShown = false;
        m_transferSteps = steps;
        m_progress.clear();
        m_heatmap->setEmptyText(tr("Starting the transfer…"));
        m_heatmap->setMatrix({}, {});  // the previous matrix is not shown as if it were current
        return m_experiments->startTransfer(spec);
    } catch (const dt::Error& e) {
        m_session->fail(QString::fromStdString(e.what()));
        return false;
    }
}

bool TransferTab::startAblation(const QString& runDir, const QString& outDir) {
    if (m_experiments->isRunning()) {
        m_session->fail(tr("An experiment is already running: stop it first"));
        return false;
    }
    const std::string run = runDir.toStdString(), final_ckpt = dt::run_folder::checkpoint_path(run, dt::run_folder::kFinal);
    const QString spec = QString::fromStdString(dt::run_folder::spec_path(run)), ckpt = QString::fromStdString(final_ckpt);
    if (!QFileInfo::exists(spec) || !dt::run_folder::has_checkpoint(final_ckpt)) {
        m_session->fail(tr("%1 has no finished run (spec.json and checkpoints/final)").arg(runDir));
        return false;
    }
    const QString out = outDir.isEmpty() ? Workbench::workFolder(QStringLiteral("experiments"), QStringLiteral("ablation")) : outDir;
    m_ablationShown = true;
    m_session->log(tr("Layer ablation of %1 into %2").arg(runDir, out));
    return m_experiments->startAblation(spec, ckpt, out);
}
