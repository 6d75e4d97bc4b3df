// TrainingPlot: live training curves. Top: training loss raw and smoothed, the validation score on
// the right axis, earlier runs overlaid on demand, a log-scale toggle; bottom: learning rate and
// tokens per second. Producers append points at any rate; the plots repaint on a coalescing 40 ms
// timer (at most 25 per second), so a fast run cannot flood the GUI. Points go straight into the
// graphs' containers and the axis ranges are tracked as they arrive, so a repaint costs the drawing
// only, even with a million points. Zoom and pan with the mouse; a double click follows the run again.
#pragma once

#include <QMap>
#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPGraph;
class QCheckBox;
class QTimer;

class TrainingPlot : public QWidget {
    Q_OBJECT
public:
    explicit TrainingPlot(QWidget* parent = nullptr);
    void clear();
    void addStep(qint64 step, double loss, double lr = NAN, double tokensPerSecond = NAN);
    void addEvaluation(qint64 step, double score);
    // An earlier run's smoothed loss drawn dashed under `name` (replacing one of that name).
    void setOverlay(const QString& name, const QVector<double>& steps, const QVector<double>& losses);
    void removeOverlay(const QString& name);
    QStringList overlays() const { return m_overlays.keys(); }
    void setLogScale(bool on);
    bool logScale() const;
    int pointCount() const { return m_steps.size(); }
    int replotCount() const { return m_replots; }
    QCustomPlot* plot() const { return m_plot; }
    QCustomPlot* ratesPlot() const { return m_rates; }
    QVector<double> smoothedLosses() const { return m_smoothed; }
    QVector<double> steps() const { return m_steps; }
    // Repaints both plots now; returns the wall time of the loss plot's repaint in milliseconds.
    double replotMilliseconds();
    // The curves as CSV: "kind,step,value" rows (loss, loss_smoothed, validation, lr, tokens_per_s).
    QString toCsv() const;
    bool saveCsv(const QString& path) const;  // atomic (QSaveFile)
    bool savePng(const QString& path, int width = 0, int height = 0);
    bool savePdf(const QString& path);

private:
    void scheduleReplot();
    void replotNow();
    void applyRanges();

    QCustomPlot* m_plot;
    QCustomPlot* m_rates;
    QCheckBox* m_log;
    QCPGraph* m_raw;
    QCPGraph* m_smooth;
    QCPGraph* m_eval;
    QCPGraph* m_lr;
    QCPGraph* m_tps;
    QMap<QString, QCPGraph*> m_overlays;
    QTimer* m_timer;
    QVector<double> m_steps, m_losses, m_smoothed, m_evalSteps, m_evalScores, m_rateSteps, m_lrs, m_tpss;
    double m_ema = 0;
    double m_lossMin = 0, m_lossMax = 0, m_stepMax = 0, m_lrMax = 0, m_tpsMax = 0;
    bool m_follow = true;  // ranges follow the data until the user zooms or pans
    int m_replots = 0;
};
