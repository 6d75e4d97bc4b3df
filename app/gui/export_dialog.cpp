#include "export_dialog.h"

#include "workbench.h"

#include "train/run_folder.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QStandardPaths>
#include <QVBoxLayout>

ExportDialog::ExportDialog(const QStringList& runDirs, QWidget* parent) : QDialog(parent), m_runDirs(runDirs) {
    setWindowTitle(tr("Export Delta"));
    m_runs = new QComboBox(this);
    int preferred = -1;
    for (int i = 0; i < runDirs.size(); ++i) {
        const auto s = dt::run_folder::summarize_run(runDirs[i].toStdString());
        const QString state = s.status.empty() ? tr("unfinished") : QString::fromStdString(s.status);
        m_runs->addItem(tr("%1 (%2, %3 steps)").arg(QFileInfo(runDirs[i]).fileName(), state).arg(s.steps), runDirs[i]);
        if (preferred < 0 && s.finished() && !s.checkpoints.empty()) preferred = i;
    }
    m_runs->setToolTip(tr("The run whose delta is exported (newest first)"));
    m_checkpoints = new QComboBox(this);
    m_checkpoints->setToolTip(tr("best: the best evaluation; final: the end of a finished run; step-N: a periodic or stopped checkpoint"));
    m_format = new QComboBox(this);
    m_format->addItem(tr("PEFT adapter (LoRA, AdaLoRA, LoHa, LoKr, OFT, VeRA, IA3, prefix, prompt, P-tuning)"), QStringLiteral("peft"));
    m_format->addItem(tr("DeltaTune delta (every method)"), QStringLiteral("deltatune"));
    m_format->addItem(tr("Merged model (the weight-update methods, BitFit, LayerNorm, selective, full)"), QStringLiteral("merged"));
    m_out = new QLineEdit(this);
    m_out->setPlaceholderText(tr("a new folder"));
    auto* browse = new QPushButton(tr("Browse…"), this);
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getSaveFileName(this, tr("Export Into a New Folder"), Workbench::dialogStart(QStringLiteral("deltas"), QStringLiteral("delta")));
        Workbench::remember(QStringLiteral("deltas"), dir, false);
        if (!dir.isEmpty()) m_out->setText(dir);
    });
    auto* outRow = new QHBoxLayout;
    outRow->addWidget(m_out, 1);
    outRow->addWidget(browse);
    m_warning = new QLabel(this);
    m_warning->setWordWrap(true);
    m_warning->setStyleSheet(QStringLiteral("color: #c0392b"));
    auto* form = new QFormLayout;
    form->addRow(tr("Run:"), m_runs);
    form->addRow(tr("Checkpoint:"), m_checkpoints);
    form->addRow(tr("Format:"), m_format);
    form->addRow(tr("Into:"), outRow);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    m_ok = buttons->button(QDialogButtonBox::Ok);
    m_ok->setText(tr("Export"));
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(m_warning);
    layout->addStretch(1);
    layout->addWidget(buttons);
    connect(m_runs, &QComboBox::currentIndexChanged, this, &ExportDialog::runChanged);
    auto okState = [this] { m_ok->setEnabled(m_checkpoints->count() > 0 && !m_out->text().trimmed().isEmpty()); };
    connect(m_out, &QLineEdit::textChanged, this, okState);
    connect(m_checkpoints, &QComboBox::currentIndexChanged, this, okState);
    if (preferred >= 0) m_runs->setCurrentIndex(preferred);
    runChanged();
    okState();
    resize(620, 260);
}

void ExportDialog::runChanged() {
    m_checkpoints->clear();
    if (m_runs->currentIndex() < 0) return;
    const auto s = dt::run_folder::summarize_run(runDir().toStdString());
    for (const auto& c : s.checkpoints) m_checkpoints->addItem(QString::fromStdString(c));
    if (s.checkpoints.empty())
        m_warning->setText(tr("This run has no checkpoint to export."));
    else if (!s.finished())
        m_warning->setText(s.status.empty() ? tr("This run did not finish (still running, or killed at step %1): its weights are from an unfinished training.").arg(s.steps)
                                            : tr("This run was %1 at step %2: its weights are from an unfinished training.")
                                                  .arg(QString::fromStdString(s.status))
                                                  .arg(s.steps));
    else
        m_warning->clear();
    if (m_ok) m_ok->setEnabled(m_checkpoints->count() > 0 && !m_out->text().trimmed().isEmpty());
}

QString ExportDialog::runDir() const { return m_runs->currentData().toString(); }
QString ExportDialog::checkpoint() const { return m_checkpoints->currentText(); }
QString ExportDialog::format() const { return m_format->currentData().toString(); }
QString ExportDialog::outDir() const { return m_out->text().trimmed(); }
void ExportDialog::setOutDir(const QString& dir) { m_out->setText(dir); }
QString ExportDialog::warning() const { return m_warning->text(); }

void ExportDialog::selectRun(const QString& runDir) {
    const int i = m_runs->findData(QFileInfo(runDir).absoluteFilePath());
    if (i >= 0) m_runs->setCurrentIndex(i);
}
