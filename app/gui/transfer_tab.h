// TransferTab: the Transfer & Ablation tab. A transfer matrix over the ticked tasks (one delta trained
// per task, each evaluated on every task) or a layer ablation of a finished run, computed by the
// engine's experiments in a worker thread (its ExperimentController); the heatmap fills cell by cell,
// optionally relative to each task's own delta. Stop keeps the finished cells; Run Transfer again
// continues the stopped matrix.
#pragma once

#include "experiments/experiments.h"

#include <QStringList>
#include <QWidget>

class ExperimentController;
class HeatmapView;
class QCheckBox;
class QListWidget;
class QPushButton;
class QSpinBox;
class TrainingTab;
class Workbench;

class TransferTab : public QWidget {
    Q_OBJECT
public:
    // `training` gives the learning rate and the last run (for the ablation button).
    TransferTab(Workbench* session, const TrainingTab* training, QWidget* parent = nullptr);
    // A transfer matrix over at least two task files into outDir (default: a new work folder).
    bool startTransfer(const QStringList& taskFiles, int steps, const QString& outDir = QString());
    // Layer ablation of a finished run (its spec.json and checkpoints/final).
    bool startAblation(const QString& runDir, const QString& outDir = QString());
    QStringList checkedTasks() const;
    // An exported or merged delta folder evaluated on every task as one more row of the next matrix.
    void addDeltaRow(const QString& name, const QString& folder);
    // Row name -> folder, in the list's order.
    QList<QPair<QString, QString>> deltaRows() const;
    HeatmapView* heatmap() const { return m_heatmap; }
    // The last "delta i/N, step s/S" line while a transfer trains its deltas.
    QString progress() const { return m_progress; }
    ExperimentController* experiments() const { return m_experiments; }

private:
    QWidget* buildSidePanel();
    void connectExperiments();
    void showMatrix(const QStringList& rows, const QStringList& cols, const QStringList& rc, const QStringList& cc, const QString& metric);
    void showCell(int r, int c, double v, const QString& note);
    void redraw();
    void rescale();
    bool relativeView() const;
    void saveHeatmap(const QString& filter, const QString& ext);

    Workbench* m_session;
    const TrainingTab* m_training;
    ExperimentController* m_experiments;
    HeatmapView* m_heatmap;
    QListWidget* m_tasks = nullptr;
    QListWidget* m_deltaRows = nullptr;
    QSpinBox* m_steps = nullptr;
    QCheckBox* m_relative = nullptr;
    QPushButton* m_run = nullptr;
    QPushButton* m_stop = nullptr;
    QPushButton* m_ablate = nullptr;
    QString m_outDir;
    qint64 m_transferSteps = 0;
    QString m_progress;  // the last training progress line
    dt::ResultMatrix m_result;     // the matrix the heatmap shows, cell by cell as computed
    bool m_ablationShown = false;  // the heatmap shows a layer ablation (no relative view)
    bool m_resumable = false;      // the last transfer was stopped: Run Transfer continues it
};
