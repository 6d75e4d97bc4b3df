// CompareTab: the method comparison of one task (engine/experiments/comparison) in a worker thread:
// pick a task, tick methods, optionally a matched budget of trainable parameters, and watch the
// convergence curves and the metric-per-parameter scatter with its Pareto front fill in. Stop keeps
// the finished methods; running the same comparison again continues with the rest.
#pragma once

#include "experiments/comparison.h"

#include <QStringList>
#include <QVector>
#include <QWidget>

#include <functional>

class MethodComparisonView;
class QComboBox;
class QListWidget;
class QPushButton;
class QSpinBox;
class QThread;
class QLabel;

class ComparisonWorker : public QObject, public dt::ComparisonObserver {
    Q_OBJECT
public:
    ComparisonWorker(dt::CompareSpec spec, dt::TrainControl* control) : m_spec(std::move(spec)), m_control(control) {}
    void run();
    void on_status(const std::string& s) override;
    void on_point(const std::string& method, const dt::CurvePoint& p) override;
    void on_method(const dt::MethodResult& r) override;

Q_SIGNALS:
    void status(QString text);
    void point(QString method, qint64 step, double elapsed, double value);
    // A finished method (trained now or kept from an earlier run), with its whole curve.
    void method(QString method, qint64 trainable, double value, QString metric, QVector<double> steps, QVector<double> seconds,
                QVector<double> values);
    void finished();
    void failed(QString message);

private:
    dt::CompareSpec m_spec;
    dt::TrainControl* m_control;
};

class CompareTab : public QWidget {
    Q_OBJECT
public:
    // `model` gives the model for the spec (the window's current model); `workFolder` a fresh folder
    // for a comparison's files.
    CompareTab(std::function<std::string()> model, std::function<QString(QString)> workFolder, QWidget* parent = nullptr);
    ~CompareTab() override;
    void setTasks(const QStringList& taskFiles);
    // Starts a comparison; outDir empty: a new folder (or the last one, to continue a stopped run).
    bool start(const QString& taskFile, const QStringList& methods, qint64 budget, int steps, const QString& outDir = QString());
    void stop();
    bool isRunning() const { return m_thread != nullptr; }
    MethodComparisonView* view() const { return m_view; }
    QString outputDir() const { return m_outDir; }
    QString lastError() const { return m_lastError; }

Q_SIGNALS:
    void finished(bool stopped);
    void failed(QString message);
    void logLine(QString line);

private:
    void setRunning(bool running);
    std::function<std::string()> m_model;
    std::function<QString(QString)> m_workFolder;
    MethodComparisonView* m_view;
    QComboBox* m_task;
    QListWidget* m_methods;
    QSpinBox* m_budget;
    QSpinBox* m_steps;
    QPushButton* m_run;
    QPushButton* m_stop;
    QLabel* m_status;
    QThread* m_thread = nullptr;
    dt::TrainControl m_control;
    QString m_outDir, m_lastError, m_lastKey;
};
