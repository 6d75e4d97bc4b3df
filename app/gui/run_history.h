// RunHistory: the Runs tab. Every run of this and earlier sessions (run folders with events.jsonl),
// newest first, in a table: name, method, key settings, trainable parameters, best metric, status,
// duration. Rename (label.txt), delete, resume a stopped run, a settings diff of two selected runs,
// and TensorBoard event files. Ticked runs are overlaid in the tab's own plot with the chosen metric
// against step, epoch, tokens or wall time, smoothed by a slider; the training loss against steps is
// also overlaid on the Training tab's live plot. The selected run's per-class metrics are shown.
#pragma once

#include <QPair>
#include <QVector>
#include <QWidget>

class ClassMetricsView;
class QComboBox;
class QCustomPlot;
class QPushButton;
class QSlider;
class QTreeWidget;
class QTreeWidgetItem;

class RunHistory : public QWidget {
    Q_OBJECT
public:
    enum Column { Name, Method, Settings, Trainable, Best, Status, Duration, ColumnCount };
    explicit RunHistory(QWidget* parent = nullptr);
    // Adds a run folder at the top, or refreshes its row; label: a name for this session only.
    void addRun(const QString& runDir, const QString& label = QString());
    // Lists the run folders under `folder` (each holding events.jsonl), newest first, at most `limit`.
    void scan(const QString& folder, int limit = 50);
    QStringList runDirs() const;
    QTreeWidget* table() const { return m_table; }
    QTreeWidgetItem* item(int row) const;
    QString displayName(const QString& runDir) const;
    void setChecked(const QString& runDir, bool on);

    // Overlay settings. Metrics: "training loss" or an evaluation metric ("accuracy", ...); x: "step",
    // "epoch", "tokens" or "time" (seconds); smoothing: the EMA factor 0..0.99.
    void setMetric(const QString& metric);
    void setXAxis(const QString& x);
    void setSmoothing(double factor);
    QStringList metricChoices() const;
    QStringList comparedRuns() const;  // the series in the comparison plot
    QCustomPlot* comparisonPlot() const { return m_plot; }
    ClassMetricsView* classes() const { return m_classes; }

    bool renameRun(const QString& runDir, const QString& label);
    bool deleteRun(const QString& runDir);  // refuses the run being trained (setActiveRun)
    void setActiveRun(const QString& runDir) { m_active = runDir; }
    // The spec.json fields that differ between two runs: (field, (value in a, value in b)).
    static QVector<QPair<QString, QPair<QString, QString>>> specDiff(const QString& a, const QString& b);
    QString lastError() const { return m_error; }

    // The step numbers and the smoothed (EMA 0.9) training loss from a run's events.jsonl.
    static bool readCurve(const QString& runDir, QVector<double>& steps, QVector<double>& smoothed);
    // One metric of a run against x, smoothed by an EMA with `smoothing`; lines that do not parse (a
    // run killed mid-write) are skipped, and a resumed run's repeated steps keep the later ones.
    static bool readSeries(const QString& runDir, const QString& metric, const QString& x, double smoothing,
                           QVector<double>& xs, QVector<double>& ys);

Q_SIGNALS:
    void overlay(QString name, QVector<double> steps, QVector<double> losses);
    void overlayRemoved(QString name);
    void resumeRequested(QString runDir);
    void exportRequested(QString runDir);  // its checkpoint and format are picked in the Export dialog
    void message(QString text);  // for the status bar
    void failed(QString text);

private:
    void fillRow(QTreeWidgetItem* item);
    void replotComparison();
    void onItemChanged(QTreeWidgetItem* item, int column);
    void syncButtons();
    QStringList selectedRuns() const;
    void showDiff();

    QTreeWidget* m_table;
    QCustomPlot* m_plot;
    ClassMetricsView* m_classes;
    QComboBox* m_metric;
    QComboBox* m_x;
    QSlider* m_smoothing;
    QPushButton *m_rename, *m_delete, *m_resume, *m_export, *m_diff, *m_tensorboard;
    QString m_active, m_error;
    bool m_filling = false;
};
