// ExperimentController: runs a transfer matrix or a layer ablation (engine/experiments) in a
// QThread. Cells arrive as queued signals in the order they are computed; stop() takes effect
// between cells or training steps, and running the same experiment folder again continues it.
#pragma once

#include "experiments/experiments.h"

#include <QObject>
#include <QString>
#include <QStringList>

#include <functional>

class QThread;

class ExperimentWorker : public QObject, public dt::ExperimentObserver {
    Q_OBJECT
public:
    ExperimentWorker(std::function<void(dt::ExperimentObserver*)> job) : m_job(std::move(job)) {}
    void run();
    void on_status(const std::string& s) override;
    void on_matrix(const dt::ResultMatrix& m) override;
    void on_cell(std::size_t row, std::size_t col, double value, const std::string& note) override;
    void on_train_step(const std::string& task, const dt::StepEvent& e) override;

Q_SIGNALS:
    void matrix(QStringList rows, QStringList cols, QStringList rowCategories, QStringList colCategories, QString metric);
    void cell(int row, int col, double value, QString note);
    void status(QString text);
    void trainStep(QString task, qint64 step, double elapsed);
    void finished();
    void failed(QString message);

private:
    std::function<void(dt::ExperimentObserver*)> m_job;
};

class ExperimentController : public QObject {
    Q_OBJECT
public:
    explicit ExperimentController(QObject* parent = nullptr);
    ~ExperimentController() override;
    bool startTransfer(const dt::TransferSpec& spec);
    bool startAblation(const QString& runSpec, const QString& checkpoint, const QString& outDir);
    void stop();
    bool isRunning() const { return m_thread != nullptr; }

Q_SIGNALS:
    void matrix(QStringList rows, QStringList cols, QStringList rowCategories, QStringList colCategories, QString metric);
    void cell(int row, int col, double value, QString note);
    void status(QString text);
    // A transfer delta's training step (the tab turns it into "delta i/N, step s/S, ETA").
    void trainStep(QString task, qint64 step, double elapsed);
    void finished(bool stopped);
    void failed(QString message);
    void runningChanged(bool running);

private:
    bool start(std::function<void(dt::ExperimentObserver*)> job);
    QThread* m_thread = nullptr;
    dt::TrainControl m_control;
};
