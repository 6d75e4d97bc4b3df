// DeltaFiles: delta export and import in worker threads (see delta_files.h).
#include "delta_files.h"

#include "export_dialog.h"
#include "merge_dialog.h"
#include "run_history.h"
#include "training_tab.h"
#include "workbench.h"
#include "worker_thread.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "export/delta_format.h"
#include "export/export_run.h"
#include "export/peft_export.h"
#include "io/atomic_file.h"
#include "models/loader.h"

#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QMessageBox>

#include <memory>

DeltaFiles::DeltaFiles(Workbench* session, const TrainingTab* training, QObject* parent)
    : QObject(parent), m_session(session), m_training(training) {}

DeltaFiles::~DeltaFiles() {
    gui::endWorker(m_exportThread);
    gui::endWorker(m_importThread);
    gui::endWorker(m_mergeThread);
}

bool DeltaFiles::mergeDeltas(const dt::MergeOptions& options, const QString& name) {
    if (m_session->modelSource().isEmpty()) {
        m_session->fail(tr("Open the model the deltas were trained on before merging them"));
        return false;
    }
    if (m_mergeThread) {
        m_session->fail(tr("A merge is already running"));
        return false;
    }
    if (options.sources.size() < 2) {
        m_session->fail(tr("Tick at least two deltas to merge"));
        return false;
    }
    const QString out = Workbench::workFolder(QStringLiteral("merged"), name);
    const std::string model = m_session->modelForSpec(), dir = out.toStdString();
    gui::runJob(
        this, m_mergeThread,
        [model, dir, options] {
            dt::LoadedModel m = dt::load_model(model);
            dt::DeltaSet set = dt::merge_deltas(*m.model, options);
            dt::make_dirs(QFileInfo(QString::fromStdString(dir)).path().toStdString());
            dt::export_peft(*m.model, set, dir, model);
        },
        [this, name, out, options](const QString& error) {
            if (!error.isEmpty()) {
                m_session->fail(error);
                Q_EMIT mergeFailed(error);
                return;
            }
            m_session->log(tr("Merged %1 deltas (%2) into %3").arg(options.sources.size()).arg(QString::fromStdString(options.combination), out));
            m_session->showStatus(tr("Merged delta '%1': added as a row of the Transfer tab").arg(name));
            Q_EMIT merged(name, out);
        });
    m_session->log(tr("Merging %1 deltas (%2)…").arg(options.sources.size()).arg(QString::fromStdString(options.combination)));
    return true;
}

void DeltaFiles::chooseMerge(QWidget* window) {
    QStringList sources, labels;
    for (const QString& run : m_training->history()->runDirs()) {
        sources << run;
        labels << QFileInfo(run).fileName();
    }
    if (sources.size() < 2) {
        m_session->fail(tr("Merging needs at least two finished runs in the run history (or import their folders first)"));
        return;
    }
    MergeDeltasDialog dialog(sources, labels, window);
    if (dialog.exec() != QDialog::Accepted) return;
    mergeDeltas(dialog.options(), dialog.mergedName());
}

bool DeltaFiles::exportLastRun(const QString& format, const QString& outDir) {
    if (m_training->lastRunDir().isEmpty() || m_training->isRunning()) {
        m_session->fail(tr("No finished run to export"));
        return false;
    }
    return exportRun(m_training->lastRunDir(), QString(), format, outDir);
}

bool DeltaFiles::exportRun(const QString& run, const QString& checkpoint, const QString& format, const QString& outDir) {
    if (m_exportThread) {
        m_session->fail(tr("An export is already running"));
        return false;
    }
    if (run.isEmpty() || (m_training->isRunning() && run == m_training->lastRunDir())) {
        m_session->fail(tr("No finished run to export"));
        return false;
    }
    const std::string runDir = run.toStdString(), fmt = format.toStdString(), out = outDir.toStdString(), ckpt = checkpoint.toStdString();
    gui::runJob(this, m_exportThread, [runDir, fmt, out, ckpt] { dt::export_run(runDir, fmt, out, ckpt); },
                [this, run, format, outDir](const QString& error) {
                    if (!error.isEmpty()) {
                        m_session->fail(error);
                        Q_EMIT exportFailed(error);
                        return;
                    }
                    m_session->log(tr("Exported %1 (%2) to %3").arg(run, format, outDir));
                    m_session->showStatus(tr("Exported %1").arg(outDir));
                    Q_EMIT exported(outDir);
                });
    m_session->log(tr("Exporting %1 as %2…").arg(run, format));
    return true;
}

bool DeltaFiles::importDelta(const QString& folder) {
    if (m_session->modelSource().isEmpty()) {
        m_session->fail(tr("Open a model before importing a delta"));
        return false;
    }
    if (m_importThread) {
        m_session->fail(tr("An import is already running"));
        return false;
    }
    if (!dt::is_exported_delta(folder.toStdString())) {
        m_session->fail(QString::fromStdString(dt::Error("not an exported delta folder (no adapter_config.json or delta_config.json)",
                                                         folder.toStdString(), "choose a folder saved by PEFT or exported by DeltaTune")
                                                   .what()));
        return false;
    }
    const QString path = QFileInfo(folder).absoluteFilePath(), source = m_session->modelSource();
    const std::string model = m_session->modelForSpec();
    struct Result {
        std::string summary, warning;
    };
    auto result = std::make_shared<Result>();
    // Checked on a fresh copy of the open model, so a delta for another base fails here, by tensor.
    auto job = [model, dir = path.toStdString(), result] {
        dt::LoadedModel copy = dt::load_model(model);
        dt::DeltaImport d = dt::import_exported_delta(*copy.model, dir);
        result->summary = d.deltas.accounting(*copy.model).summary();
        result->warning = d.warning;
    };
    gui::runJob(this, m_importThread, job, [this, path, source, result](const QString& error) {
        QString failure = error;
        if (failure.isEmpty() && m_session->modelSource() != source)
            failure = tr("The model changed while %1 was checked against %2: import it again").arg(path, source);
        if (!failure.isEmpty()) {
            m_session->fail(failure);
            Q_EMIT importFailed(failure);
            return;
        }
        m_session->setImportedDelta(path);
        m_session->log(tr("Imported %1: %2. Training starts from it until the method panel changes.")
                           .arg(path, QString::fromStdString(result->summary)));
        if (!result->warning.empty()) m_session->log(tr("Warning: %1").arg(QString::fromStdString(result->warning)));
        m_session->showStatus(tr("Imported %1").arg(path));
        Q_EMIT imported(path);
    });
    m_session->log(tr("Checking %1 against %2…").arg(path, source));
    return true;
}

void DeltaFiles::chooseExport(QWidget* window, const QString& run) {
    const QStringList runs = m_training->history()->runDirs();
    if (runs.isEmpty()) {
        QMessageBox::information(window, tr("Export Delta"), tr("Train a delta first: the export offers the runs of the Runs list."));
        return;
    }
    ExportDialog dialog(runs, window);
    if (!run.isEmpty()) dialog.selectRun(run);
    if (dialog.exec() != QDialog::Accepted) return;
    if (!exportRun(dialog.runDir(), dialog.checkpoint(), dialog.format(), dialog.outDir()))
        QMessageBox::warning(window, tr("Cannot export"), m_session->lastError());
}

void DeltaFiles::chooseImport(QWidget* window) {
    const QString dir = QFileDialog::getExistingDirectory(window, tr("Import Delta Folder"), Workbench::dialogStart(QStringLiteral("deltas")));
    Workbench::remember(QStringLiteral("deltas"), dir, true);
    if (!dir.isEmpty() && !importDelta(dir)) QMessageBox::warning(window, tr("Cannot import the delta"), m_session->lastError());
}
