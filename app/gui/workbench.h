// Workbench: the session facts the window's tabs share, each in one place: the open model and its
// source, the delta to train (the method panel's spec, or an imported delta folder), where work
// folders go, the built-in demo's files, and the log and last error that reach the status bar.
#pragma once

#include <QObject>
#include <QString>
#include <QStringList>

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

namespace dt {
class TransformerModel;
}

class Workbench : public QObject {
    Q_OBJECT
public:
    explicit Workbench(QObject* parent = nullptr);

    std::shared_ptr<dt::TransformerModel> model() const { return m_model; }
    QString modelSource() const { return m_modelSource; }
    // A newly opened model; an imported delta belonged to the old one and is dropped.
    void setModel(std::shared_ptr<dt::TransformerModel> model, const QString& source);
    // The open model as a spec's "model": its absolute folder, or a built-in name.
    std::string modelForSpec() const;

    // The method panel's delta spec (JSON) with the ticked targets; empty while the form is invalid,
    // and then `problem` says why.
    void setDeltaSpec(const std::string& spec, const QString& problem);
    QString deltaSpecJson() const { return QString::fromStdString(m_deltaSpec); }
    std::string deltaSpec() const { return m_deltaSpec; }
    // An exported delta folder that training starts from instead of the form (empty: none).
    QString importedDelta() const { return m_importedDelta; }
    void setImportedDelta(const QString& folder);
    // A run spec's "delta": the imported folder, else the method panel's spec.
    nlohmann::json runDelta() const;
    // A model is open and its delta valid (brought up to date with the ticks first); else fails saying why.
    bool deltaReady();

    // A fresh folder <work dir>/<kind>/<name>-<time> (DELTATUNE_WORK_DIR, else the app data folder).
    static QString workFolder(const QString& kind, const QString& name);
    // The built-in demo (resources/demo): its folder, model folder and task files, when present.
    static QString demoDir();
    static QString demoModel();
    static QStringList demoTasks();  // task.json paths
    static QStringList demoGenerativeTasks();  // the text-to-text tasks for the demo T5s
    // Where a file dialog of `kind` ("models", "deltas", "specs", "exports") starts: the folder last
    // chosen in one, else Documents; with fileName, that file in it. remember() records a choice (a
    // chosen folder records its parent: its siblings are the likely next choices).
    static QString dialogStart(const QString& kind, const QString& fileName = {});
    static void remember(const QString& kind, const QString& chosen, bool isFolder);

    void log(const QString& line) { Q_EMIT logLine(line); }
    // A refusal or failure: kept as lastError(), logged and shown in the status bar.
    void fail(const QString& message);
    void showStatus(const QString& message, int timeoutMs = 5000) { Q_EMIT statusMessage(message, timeoutMs); }
    QString lastError() const { return m_lastError; }
    // The budget's memory estimate for the current delta: weights + gradients + AdamW state, and the
    // activations at the budget's batch x tokens (dt::Budget::activation_bytes); -1 when none.
    void setMemoryEstimate(qint64 fixedBytes, qint64 activationBytes, qint64 budgetBatch, qint64 budgetTokens) {
        m_estimateFixed = fixedBytes;
        m_estimateActivations = activationBytes;
        m_estimateBatchTokens = static_cast<double>(budgetBatch * budgetTokens);
    }
    // The estimate at `batch` x `tokens` (activations scale linearly); -1 when unknown.
    qint64 memoryEstimate(int batch, int tokens) const {
        if (m_estimateFixed < 0) return -1;
        return m_estimateFixed + static_cast<qint64>(static_cast<double>(m_estimateActivations) * batch * tokens / m_estimateBatchTokens);
    }
    void clearError() { m_lastError.clear(); }
    // The bytes a data-parallel step all-reduces: the trainable tensors' float32 gradients; -1 unknown.
    void setAllReduceBytes(qint64 bytes) { m_allReduceBytes = bytes; }
    qint64 allReduceBytes() const { return m_allReduceBytes; }

Q_SIGNALS:
    void logLine(QString line);
    void statusMessage(QString message, int timeoutMs);
    // Emitted by deltaReady() before it reads the spec: a pending tick change must be applied now.
    void deltaNeeded();

private:
    std::shared_ptr<dt::TransformerModel> m_model;
    QString m_modelSource, m_importedDelta, m_lastError, m_deltaProblem;
    std::string m_deltaSpec;
    qint64 m_estimateFixed = -1, m_estimateActivations = 0, m_allReduceBytes = -1;
    double m_estimateBatchTokens = 1;
};
