// TrainingPlot: live training curves (loss raw and smoothed, evaluation accuracy on the right axis).
// Producers append points at any rate; the plot repaints on a coalescing 40 ms timer, so a fast run
// cannot flood the GUI.
#pragma once

#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPGraph;
class QTimer;

class TrainingPlot : public QWidget {
    Q_OBJECT
public:
    explicit TrainingPlot(QWidget* parent = nullptr);
    void clear();
    void addStep(qint64 step, double loss);
    void addEvaluation(qint64 step, double score);
    int pointCount() const { return m_steps.size(); }
    int replotCount() const { return m_replots; }
    QCustomPlot* plot() const { return m_plot; }
    // The curves as CSV: "kind,step,value" rows (loss, loss_smoothed, validation), in arrival order.
    QString toCsv() const;
    bool saveCsv(const QString& path) const;  // atomic (QSaveFile)
    bool savePng(const QString& path, int width = 0, int height = 0);
    bool savePdf(const QString& path);

private:
    void scheduleReplot();
    void replotNow();

    QCustomPlot* m_plot;
    QCPGraph* m_raw;
    QCPGraph* m_smooth;
    QCPGraph* m_eval;
    QTimer* m_timer;
    QVector<double> m_steps, m_losses, m_smoothed, m_evalSteps, m_evalScores;
    double m_ema = 0;
    int m_replots = 0;
};
