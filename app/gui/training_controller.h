// TrainingController: runs the engine's Trainer in a QThread. Observer calls become queued signals;
// every exception is caught at the thread boundary and reported as failed(); pause and stop take
// effect between micro-batches. The GUI never touches tensors.
#pragma once

#include "train/trainer.h"

#include <QObject>
#include <QString>
#include <QStringList>
#include <QVariantMap>
#include <QVector>

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <map>

Q_DECLARE_METATYPE(dt::ConfusionMatrix)

class QThread;
namespace dt {
class DeltaSet;
class TransformerModel;
}

class TrainingWorker : public QObject, public dt::TrainObserver {
    Q_OBJECT
public:
    // An empty specPath resumes runDir from its latest checkpoint (as `deltatune resume`).
    TrainingWorker(QString specPath, QString runDir, dt::TrainControl* control);
    void run();

    void on_step(const dt::StepEvent& e) override;
    void on_eval(const dt::EvalEvent& e) override;
    void on_status(const std::string& s) override;
    void on_error(const std::string& s) override;

Q_SIGNALS:
    void step(qint64 step, qint64 maxSteps, double loss, double lr, double tokensPerSecond, double elapsed);
    void evaluated(qint64 step, QVariantMap metrics);
    // Classification evaluations: gold x predicted on the validation set.
    void confusion(qint64 step, dt::ConfusionMatrix matrix);
    // Delta inspection (engine/experiments/inspection) every few steps: kind "delta_magnitude" or
    // "grad_norm", a layer-by-module grid, values row-major (NaN: none).
    void inspected(qint64 step, QString kind, QStringList rows, QStringList cols, QVector<double> values);
    // AdaLoRA's kept rank per module path, after each step that changed it.
    void ranks(qint64 step, QVariantMap pathToRank);
    void status(QString text);
    void finished(QString status, qint64 steps);
    void failed(QString message);

private:
    QString m_spec, m_runDir;
    dt::TrainControl* m_control;
    qint64 m_maxSteps = 0;
    dt::TransformerModel* m_model = nullptr;  // set while run() trains, used on the worker thread only
    const dt::DeltaSet* m_deltas = nullptr;
    nlohmann::json m_lastRanks;
    std::map<std::string, at::Tensor> m_start;
};

class TrainingController : public QObject {
    Q_OBJECT
public:
    explicit TrainingController(QObject* parent = nullptr);
    ~TrainingController() override;
    // Starts a run from a run spec into runDir (which must not hold a run yet); false if one is running.
    bool start(const QString& specPath, const QString& runDir);
    // Continues a stopped or killed run from its latest checkpoint, exactly; false if one is running.
    bool resume(const QString& runDir);
    void setPaused(bool paused);  // not with several processes (they stop together instead)
    void stop();
    bool isRunning() const { return m_thread != nullptr || m_proc != nullptr; }
    // Data parallel: with n > 1, start() and resume() run `deltatune train|resume ... --nproc n --json`
    // as a child process (the run spec is the contract) and read rank 0's event stream; stop() sends
    // it Ctrl+C, and every rank stops after its step. The CLI is found beside the workbench, else on
    // PATH, unless setCliPath() names it.
    void setProcesses(int n) { m_processes = std::max(1, n); }
    int processes() const { return m_processes; }
    void setCliPath(const QString& path) { m_cli = path; }
    QString cliPath() const;

Q_SIGNALS:
    void step(qint64 step, qint64 maxSteps, double loss, double lr, double tokensPerSecond, double elapsed);
    void evaluated(qint64 step, QVariantMap metrics);
    void confusion(qint64 step, dt::ConfusionMatrix matrix);
    void inspected(qint64 step, QString kind, QStringList rows, QStringList cols, QVector<double> values);
    // AdaLoRA's kept rank per module path, after each step that changed it.
    void ranks(qint64 step, QVariantMap pathToRank);
    void status(QString text);
    void finished(QString status, qint64 steps);
    void failed(QString message);
    void runningChanged(bool running);

private:
    bool startProcesses(const QString& specPath, const QString& runDir);
    void readProcessOutput();
    // Several processes: no model lives here, so when they end the Delta tab's magnitudes come from
    // the run's last checkpoint against the delta's seeded start (inspect_run_delta), on a thread.
    void inspectProcessRun(const QString& runDir, qint64 step);
    QThread* m_inspectThread = nullptr;
    QThread* m_thread = nullptr;
    dt::TrainControl m_control;
    int m_processes = 1;
    QString m_cli;
    class QProcess* m_proc = nullptr;
    QByteArray m_outBuffer;
    QString m_errTail, m_doneStatus;
    qint64 m_procMaxSteps = 0, m_doneSteps = 0;
};
