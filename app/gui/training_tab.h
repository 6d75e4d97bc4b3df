// TrainingTab: the Training tab. Pick a task (a demo task, the Task Data tab's, or a run spec file),
// steps, learning rate, device and precision; Start trains the session's delta in a worker thread
// (its TrainingController) while the live plot, the progress bar and the run history follow. Run
// specs are written by the engine's run builder, so a GUI run is a CLI run.
#pragma once

#include <QString>
#include <QWidget>

#include <nlohmann/json_fwd.hpp>

class ClassMetricsView;
class FitProbe;
class QCheckBox;
class QComboBox;
class QGroupBox;
class ResourceView;
class QDoubleSpinBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class RunHistory;
class TaskPanel;
class TrainingController;
class TrainingPlot;
class Workbench;
namespace dt {
struct DeviceProbe;
}

// Fills the device combo from the engine's device probe: CPU, each GPU, or a disabled CUDA entry
// whose tooltip gives the probe's reason (data: the run spec's device name).
void fillDeviceChoice(QComboBox* combo, const dt::DeviceProbe& probe);

class TrainingTab : public QWidget {
    Q_OBJECT
public:
    explicit TrainingTab(Workbench* session, QWidget* parent = nullptr);
    // Starts training from a run spec into runDir (default: runs/<time> beside the spec); false
    // while a run is going.
    bool startTraining(const QString& specPath, const QString& runDir = QString());
    // Trains the open model on a task file with the session's delta; the run spec is written into
    // the run folder (default: a new work folder named after the task).
    bool startTaskTraining(const QString& taskFile, int steps, double lr, const QString& runDir = QString());
    // Continues a stopped run from its latest checkpoint (the Runs tab's Resume).
    bool resumeRun(const QString& runDir);
    // The tab's settings for a task as the run spec `deltatune train --spec` takes.
    nlohmann::json taskRunSpec(const QString& taskFile, int steps, double lr) const;
    // Writes the current task's run spec (File > Save Run Spec); false with the session's lastError.
    bool saveRunSpec(const QString& path);
    // Writes the Task Data tab's task.json into the work folder and selects it; returns its path
    // (empty on error, see the session's lastError()).
    QString useTaskData(TaskPanel* panel);
    QString lastRunDir() const { return m_lastRunDir; }
    double learningRate() const;
    bool isRunning() const;
    TrainingController* controller() const { return m_training; }
    TrainingPlot* plot() const { return m_plot; }
    RunHistory* history() const { return m_history; }  // the window shows it as the Runs tab
    ClassMetricsView* classes() const { return m_classes; }
    ResourceView* resources() const { return m_resources; }
    // The "Training settings" fields, by their run-spec names (batch_size, grad_accum, seed,
    // warmup_ratio, schedule, eval_every, patience, max_length), for tests and tooltips.
    QWidget* settingField(const QString& specName) const;
    // Will it fit: one real step at the chosen batch in a child process, or the largest batch that
    // fits under limitBytes (0: 90% of the available memory) up to maxBatch; results in fitText().
    bool measureMemory();
    bool findLargestBatch(int maxBatch = 4096, qint64 limitBytes = 0);
    FitProbe* fitProbe() const { return m_fit; }
    QString fitText() const;
    QProgressBar* progressBar() const { return m_progress; }
    // The first-run hint above the plot ("pick a task, press Start"); gone after the first run or a
    // click on its close link, and remembered in the settings.
    QLabel* firstRunHint() const { return m_hint; }

public Q_SLOTS:
    void chooseRunSpec();     // File > Open Run Spec
    void chooseSaveRunSpec();  // File > Save Run Spec
    void chooseCurvesFile();  // File > Export Training Curves

Q_SIGNALS:
    void runStarted(QString runDir);

private:
    QWidget* buildSettingsRow();
    QGroupBox* buildMoreSettings();
    void connectController();
    void syncButtons();
    QString currentTask() const;

    Workbench* m_session;
    TrainingController* m_training;
    TrainingPlot* m_plot;
    RunHistory* m_history;
    QProgressBar* m_progress;
    double m_smoothedTps = 0;  // tokens/s in the progress bar, smoothed
    QLabel* m_specLabel;
    QLabel* m_hint = nullptr;
    void dismissHint();
    QPushButton* m_startButton;
    QPushButton* m_pauseButton;
    QPushButton* m_stopButton;
    QComboBox* m_taskCombo = nullptr;
    QSpinBox* m_stepsSpin = nullptr;
    QDoubleSpinBox* m_lrSpin = nullptr;
    QComboBox* m_device = nullptr;
    QComboBox* m_precision = nullptr;
    QGroupBox* m_more = nullptr;
    QSpinBox *m_batch = nullptr, *m_accum = nullptr, *m_seed = nullptr, *m_evalEvery = nullptr, *m_patience = nullptr, *m_maxLength = nullptr;
    QDoubleSpinBox* m_warmup = nullptr;
    QComboBox* m_schedule = nullptr;
    ClassMetricsView* m_classes = nullptr;
    FitProbe* m_fit = nullptr;
    QLabel* m_fitLabel = nullptr;
    QSpinBox* m_processes = nullptr;
    QCheckBox* m_packing = nullptr;      // causal LM: sequence packing (run spec: packing)
    QComboBox* m_baseStorage = nullptr;  // the frozen base: fp32, bf16, int8 or nf4 (run spec: base_dtype / quantize)
    QLabel* m_parallelLabel = nullptr;
    QString probeSpec();  // the current settings as a spec file for the probe ("" with lastError)
    ResourceView* m_resources = nullptr;
    QString m_specPath, m_lastRunDir;
};
