// DeltaFiles: File > Export Delta, File > Import Delta and File > Merge Deltas. Both run in a worker thread (the
// one helper in worker_thread.h), so the window stays responsive while a merged model is written or
// a model is loaded to check an imported delta against it. Results and failures come back as signals
// and reach the session's log and status bar.
#pragma once

#include "export/merge_deltas.h"

#include <QObject>
#include <QString>

class QThread;
class QWidget;
class TrainingTab;
class Workbench;

class DeltaFiles : public QObject {
    Q_OBJECT
public:
    DeltaFiles(Workbench* session, const TrainingTab* training, QObject* parent = nullptr);
    ~DeltaFiles() override;  // waits for a running export or import
    // Exports the Training tab's last run ("peft", "deltatune" or "merged") into outDir; exported or
    // exportFailed follows. False when refused (see the session's lastError()).
    bool exportLastRun(const QString& format, const QString& outDir);
    // Exports `checkpoint` (empty: final, else the latest) of the run in runDir.
    bool exportRun(const QString& runDir, const QString& checkpoint, const QString& format, const QString& outDir);
    // Checks an exported delta folder (PEFT's or DeltaTune's) against a fresh copy of the open model;
    // then training starts from it until the method panel changes (imported), or importFailed and
    // nothing changes. False when refused at once (no model, not a delta folder, an import running).
    bool importDelta(const QString& folder);
    // Merges the sources (runs or delta folders for the open model) into work/merged/<name> in PEFT's
    // format; merged(name, folder) or mergeFailed follows. False when refused at once.
    bool mergeDeltas(const dt::MergeOptions& options, const QString& name);
    bool isMerging() const { return m_mergeThread != nullptr; }
    bool isExporting() const { return m_exportThread != nullptr; }
    bool isImporting() const { return m_importThread != nullptr; }
    // The dialogs of the File menu's actions, over `window`.
    void chooseExport(QWidget* window, const QString& run = QString());
    void chooseImport(QWidget* window);
    void chooseMerge(QWidget* window);  // the Merge Deltas dialog over the run history

Q_SIGNALS:
    void exported(QString folder);
    void exportFailed(QString message);
    void imported(QString folder);
    void importFailed(QString message);
    void merged(QString name, QString folder);
    void mergeFailed(QString message);

private:
    Workbench* m_session;
    const TrainingTab* m_training;
    QThread* m_exportThread = nullptr;
    QThread* m_importThread = nullptr;
    QThread* m_mergeThread = nullptr;
};
