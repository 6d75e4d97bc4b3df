// MainWindow's file handling: recent models, drag and drop of a model folder, run specs saved as the
// JSON the CLI takes, delta export (PEFT, DeltaTune, merged) in a background thread, delta import,
// and the window layout kept between sessions.
#include "main_window.h"

#include "method_panel.h"
#include "training_controller.h"

#include "core/error.h"
#include "export/delta_format.h"
#include "export/export_run.h"
#include "io/atomic_file.h"
#include "models/loader.h"

#include <QAction>
#include <QCloseEvent>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QMenu>
#include <QMessageBox>
#include <QMimeData>
#include <QSettings>
#include <QStatusBar>
#include <QThread>
#include <QUrl>

namespace {
constexpr int kRecentMax = 8;
const char* kRecentKey = "recentModels";

QString droppedFolder(const QMimeData* mime) {
    if (!mime || !mime->hasUrls()) return {};
    for (const QUrl& u : mime->urls())
        if (u.isLocalFile() && QFileInfo(u.toLocalFile()).isDir()) return u.toLocalFile();
    return {};
}
}  // namespace

void MainWindow::buildFileActions(QMenu* fileMenu) {
    m_recentMenu = fileMenu->addMenu(tr("Recent &Models"));
    refreshRecentMenu();
    fileMenu->addSeparator();
    auto* save = fileMenu->addAction(tr("&Save Run Spec…"), this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Save Run Spec"), QStringLiteral("run.json"), tr("Run specs (*.json)"));
        if (!f.isEmpty() && !saveRunSpec(f)) QMessageBox::warning(this, tr("Cannot save the run spec"), m_lastError);
    });
    save->setShortcut(QKeySequence::Save);
    save->setToolTip(tr("The Training tab's task, delta and training arguments as the JSON `deltatune train --spec` takes"));
    auto* exp = fileMenu->addAction(tr("&Export Delta…"), this, [this] {
        if (m_lastRunDir.isEmpty()) {
            QMessageBox::information(this, tr("Export Delta"), tr("Train a delta first: the export takes the Training tab's last run."));
            return;
        }
        const QStringList formats = {tr("PEFT adapter (LoRA, IA3, prefix, prompt)"), tr("DeltaTune delta (every method)"),
                                     tr("Merged model (LoRA, IA3, BitFit, LayerNorm, selective, full)")};
        bool ok = false;
        const QString choice = QInputDialog::getItem(this, tr("Export Delta"), tr("Format:"), formats, 0, false, &ok);
        if (!ok) return;
        const QString dir = QFileDialog::getSaveFileName(this, tr("Export Into a New Folder"), QStringLiteral("delta"));
        if (dir.isEmpty()) return;
        const QString format = choice == formats[0] ? QStringLiteral("peft") : choice == formats[1] ? QStringLiteral("deltatune") : QStringLiteral("merged");
        if (!exportLastRun(format, dir)) QMessageBox::warning(this, tr("Cannot export"), m_lastError);
    });
    exp->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_E));
    exp->setToolTip(tr("The last run's delta as a PEFT adapter, a DeltaTune delta or a merged model folder"));
    auto* imp = fileMenu->addAction(tr("&Import Delta…"), this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Import Delta Folder"));
        if (!dir.isEmpty() && !importDelta(dir)) QMessageBox::warning(this, tr("Cannot import the delta"), m_lastError);
    });
    imp->setToolTip(tr("A folder saved by PEFT or exported by DeltaTune: training continues from its values"));
    connect(m_method, &MethodPanel::specChanged, this, [this] {
        if (m_importedDelta.isEmpty()) return;
        log(tr("The method panel changed: training uses its delta again instead of %1").arg(m_importedDelta));
        m_importedDelta.clear();
    });
    setAcceptDrops(true);
}

void MainWindow::restoreLayout() {
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
    restoreState(settings.value(QStringLiteral("window/state")).toByteArray());
}

QStringList MainWindow::recentModels() const { return QSettings().value(QLatin1String(kRecentKey)).toStringList(); }

void MainWindow::rememberModel(const QString& source) {
    const QFileInfo f(source);
    const QString entry = f.exists() ? f.absoluteFilePath() : source;
    QStringList list = recentModels();
    list.removeAll(entry);
    list.prepend(entry);
    while (list.size() > kRecentMax) list.removeLast();
    QSettings().setValue(QLatin1String(kRecentKey), list);
    refreshRecentMenu();
}

void MainWindow::refreshRecentMenu() {
    if (!m_recentMenu) return;
    m_recentMenu->clear();
    const QStringList list = recentModels();
    for (const QString& m : list) m_recentMenu->addAction(m, this, [this, m] { openModel(m); });
    m_recentMenu->setEnabled(!list.isEmpty());
}

bool MainWindow::saveRunSpec(const QString& path) {
    const QString task = m_taskCombo->currentData().toString();
    if (task.isEmpty()) {
        m_lastError = tr("Choose a demo task first (a spec opened from a file is already saved)");
        return false;
    }
    if (!deltaReady()) return false;
    try {
        dt::write_file_atomic(path.toStdString(), taskRunSpec(task, m_stepsSpin->value(), m_lrSpin->value()).dump(2) + "\n");
    } catch (const dt::Error& e) {
        m_lastError = QString::fromStdString(e.what());
        log(m_lastError);
        return false;
    }
    log(tr("Saved the run spec %1 (deltatune train --spec %1 --out RUN_DIR)").arg(path));
    return true;
}

bool MainWindow::exportLastRun(const QString& format, const QString& outDir) {
    if (m_exportThread) {
        m_lastError = tr("An export is already running");
        return false;
    }
    if (m_lastRunDir.isEmpty() || m_training->isRunning()) {
        m_lastError = tr("No finished run to export");
        return false;
    }
    const std::string run = m_lastRunDir.toStdString(), fmt = format.toStdString(), out = outDir.toStdString();
    auto error = std::make_shared<QString>();
    m_exportThread = QThread::create([run, fmt, out, error] {
        try {
            dt::export_run(run, fmt, out);
        } catch (const std::exception& e) {
            *error = QString::fromUtf8(e.what());
        }
    });
    connect(m_exportThread, &QThread::finished, this, [this, error, outDir, format] {
        m_exportThread->deleteLater();
        m_exportThread = nullptr;
        if (error->isEmpty()) {
            log(tr("Exported the last run (%1) to %2").arg(format, outDir));
            statusBar()->showMessage(tr("Exported %1").arg(outDir), 5000);
            Q_EMIT exported(outDir);
        } else {
            m_lastError = *error;
            log(m_lastError);
            Q_EMIT exportFailed(m_lastError);
        }
    });
    log(tr("Exporting %1 as %2…").arg(m_lastRunDir, format));
    m_exportThread->start();
    return true;
}

bool MainWindow::importDelta(const QString& folder) {
    if (m_modelSource.isEmpty()) return false;
    try {
        if (!dt::is_exported_delta(folder.toStdString()))
            throw dt::Error("not an exported delta folder (no adapter_config.json or delta_config.json)", folder.toStdString(),
                            "choose a folder saved by PEFT or exported by DeltaTune");
        // Checked on a fresh copy of the open model, so a delta for another base fails here, by tensor.
        dt::LoadedModel copy = dt::load_model(modelForSpec());
        dt::DeltaImport d = dt::import_exported_delta(*copy.model, folder.toStdString());
        const dt::Accounting acc = d.deltas.accounting(*copy.model);
        m_importedDelta = QFileInfo(folder).absoluteFilePath();
        log(tr("Imported %1: %2. Training starts from it until the method panel changes.")
                .arg(m_importedDelta, QString::fromStdString(acc.summary())));
        if (!d.warning.empty()) log(tr("Warning: %1").arg(QString::fromStdString(d.warning)));
        return true;
    } catch (const std::exception& e) {
        m_lastError = QString::fromUtf8(e.what());
        log(m_lastError);
        return false;
    }
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
    if (!droppedFolder(e->mimeData()).isEmpty()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
    if (openDropped(e->mimeData())) e->acceptProposedAction();
}

bool MainWindow::openDropped(const QMimeData* mime) {
    const QString dir = droppedFolder(mime);
    if (dir.isEmpty()) return false;
    // A delta folder is imported; anything else is opened as a model.
    return dt::is_exported_delta(dir.toStdString()) ? importDelta(dir) : openModel(dir);
}

void MainWindow::closeEvent(QCloseEvent* e) {
    QSettings settings;
    settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
    settings.setValue(QStringLiteral("window/state"), saveState());
    QMainWindow::closeEvent(e);
}
