// ScaleTab: the power-of-scale experiment (engine/experiments/scale) in a worker thread: one task,
// two or more model sizes (the demo's two T5s or its two BERTs, or any folders), the ticked methods.
// Top: the final metric against the base model's parameters (log scale), one line per method.
// Below: the convergence curves, colour by method and line style by size. Stop keeps the finished
// (size, method) pairs and Run continues with the rest. PNG, PDF and CSV export.
#pragma once

#include "experiments/scale.h"

#include <QMap>
#include <QStringList>
#include <QVector>
#include <QWidget>

#include <functional>

class QComboBox;
class QCustomPlot;
class QLabel;
class QListWidget;
class QPushButton;
class QSpinBox;
class QThread;

class ScaleWorker : public QObject, public dt::ComparisonObserver {
    Q_OBJECT
public:
    ScaleWorker(dt::ScaleSpec spec, dt::TrainControl* control) : m_spec(std::move(spec)), m_control(control) {}
    void run();
    void on_status(const std::string& s) override { Q_EMIT status(QString::fromStdString(s)); }
    void on_point(const std::string& m, const dt::CurvePoint& p) override { Q_EMIT point(QString::fromStdString(m), p.step, p.value); }
    void on_method(const dt::MethodResult& r) override;

Q_SIGNALS:
    void status(QString text);
    void point(QString sizeAndMethod, qint64 step, double value);
    void result(QString sizeAndMethod, qint64 baseParams, double value, QString metric, QVector<double> steps, QVector<double> values);
    void finished(QString error);

private:
    dt::ScaleSpec m_spec;
    dt::TrainControl* m_control;
};

class ScaleTab : public QWidget {
    Q_OBJECT
public:
    // `tasks` the demo's task files; `workFolder` a fresh folder for a run's files.
    ScaleTab(const QStringList& tasks, std::function<QString(QString)> workFolder, QWidget* parent = nullptr);
    ~ScaleTab() override;
    // models: folders (two or more); steps per (size, method).
    bool start(const QString& taskFile, const QStringList& models, const QStringList& methods, int steps, const QString& outDir = QString());
    void stop();
    bool isRunning() const { return m_thread != nullptr; }
    QString lastError() const { return m_lastError; }
    QString outputDir() const { return m_outDir; }
    // Sizes (name -> base parameters) and, per "size/method", the final value and the curve so far.
    int resultCount() const { return static_cast<int>(m_final.size()); }
    int curvePoints(const QString& sizeAndMethod) const { return static_cast<int>(m_curves.value(sizeAndMethod).steps.size()); }
    QString toCsv() const;
    bool savePng(const QString& path);  // the two plots, one above the other
    bool savePdf(const QString& path);
    QCustomPlot* sizePlot() const { return m_sizePlot; }

Q_SIGNALS:
    void finished(bool stopped);
    void failed(QString message);
    void logLine(QString line);

private:
    struct Curve {
        QVector<double> steps, values;
    };
    void setFamily(int index);
    void redraw();

    std::function<QString(QString)> m_workFolder;
    QComboBox *m_family, *m_task;
    QListWidget* m_methods;
    QSpinBox* m_steps;
    QPushButton *m_run, *m_stop;
    QLabel* m_status;
    QCustomPlot *m_sizePlot, *m_curvePlot;
    QStringList m_models, m_sizeOrder, m_methodOrder;
    QMap<QString, Curve> m_curves;               // "size/method"
    QMap<QString, std::pair<qint64, double>> m_final;  // "size/method" -> (base parameters, value)
    QString m_metric = QStringLiteral("accuracy"), m_outDir, m_lastError, m_lastKey;
    QThread* m_thread = nullptr;
    dt::TrainControl m_control;
};
