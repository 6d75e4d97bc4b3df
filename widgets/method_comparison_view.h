// MethodComparisonView: the method comparison of one task. Left, the final metric against trainable
// parameters (log scale), one labelled point per method, the Pareto front drawn as a step line
// through the methods no other beats with fewer parameters. Right, the convergence curves (metric
// against steps or against wall time), one colour per method, filling in as evaluations arrive.
#pragma once

#include <QColor>
#include <QMap>
#include <QStringList>
#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPGraph;
class QCheckBox;

class QShowEvent;

class MethodComparisonView : public QWidget {
    Q_OBJECT
public:
    explicit MethodComparisonView(QWidget* parent = nullptr);

    void clear(const QString& metric);
    void addCurvePoint(const QString& method, qint64 step, double elapsedSeconds, double value);
    // A method's whole curve (replacing what arrived point by point).
    void setCurve(const QString& method, const QVector<double>& steps, const QVector<double>& seconds, const QVector<double>& values);
    // A finished method: its point in the scatter (the Pareto front is recomputed).
    void setMethodResult(const QString& method, qint64 trainableParams, double value);
    void setTimeAxis(bool wallTime);  // convergence against wall time instead of steps

    QStringList methods() const { return m_order; }
    bool hasResult(const QString& method) const { return m_results.contains(method); }
    bool isPareto(const QString& method) const;
    int curvePoints(const QString& method) const;
    QCustomPlot* scatter() const { return m_scatter; }
    QCustomPlot* curves() const { return m_curves; }

    // "method,trainable_params,value,pareto" then "method,step,elapsed_s,value" blocks.
    QString toCsv() const;
    bool saveCsv(const QString& path) const;
    bool savePng(const QString& path);
    bool savePdf(const QString& path);

protected:
    void showEvent(QShowEvent* e) override;  // replots what changed while hidden

private:
    struct Curve {
        QVector<double> steps, seconds, values;
        QCPGraph* graph = nullptr;
        QColor color;
    };
    struct Result {
        qint64 params = 0;
        double value = 0;
    };
    Curve& curve(const QString& method);
    void redrawScatter();
    void redrawCurves();
    void fitCurves();
    void scheduleReplot();

    QCustomPlot* m_scatter;
    QCustomPlot* m_curves;
    QCheckBox* m_timeAxis;
    QString m_metric;
    QStringList m_order;
    QMap<QString, Curve> m_curveData;
    QMap<QString, Result> m_results;
    QVector<bool> m_pareto;  // per m_order entry with a result
    bool m_replotPending = false;
};
