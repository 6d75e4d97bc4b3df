// MainWindow: wires the docks and actions; no logic of its own (see DESIGN.md, "The window").
#pragma once

#include <QMainWindow>

#include "experiments/experiments.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace dt {
class TransformerModel;
class DeltaSet;
}
class ModelPanel;
class QPlainTextEdit;
class QLabel;
class QProgressBar;
class QPushButton;
class TrainingController;
class MethodPanel;
class TrainingPlot;
class HeatmapView;
class ExperimentController;
class QComboBox;
class QSpinBox;
class QDoubleSpinBox;
class QListWidget;
class QCheckBox;
class CompareTab;
class DeltaTab;
class QTabWidget;
class QMenu;
class QThread;
class QDragEnterEvent;
class QDropEvent;
class QCloseEvent;
class QMimeData;
class RunHistory;
class TaskPanel;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;
    // Loads a model folder or built-in name; on bad input shows the message and keeps the old model.
    bool openModel(const QString& source);
    ModelPanel* modelPanel() const { return m_panel; }
    // Starts training from a run spec in a worker thread; the window stays responsive.
    bool startTraining(const QString& specPath, const QString& runDir = QString());
    TrainingController* training() const { return m_training; }
    TrainingPlot* trainingPlot() const { return m_plot; }
    MethodPanel* methodPanel() const { return m_method; }
    // Recomputes the parameter budget of the method on the ticked modules (also runs on every change).
    void updateBudget();
    QString budgetText() const { return m_budgetText; }
    // The ticked modules as PEFT's target_modules JSON (Edit > Copy target_modules); empty: none ticked.
    QString targetModules() const { return m_targetModules; }
    QString lastError() const { return m_lastError; }
    QString modelSource() const { return m_modelSource; }

    // The built-in demo (resources/demo): its model folder and task files, when present.
    static QString demoDir();
    static QString demoModel();
    static QStringList demoTasks();  // task.json paths
    // Trains the current model on a task file with the method panel's delta (the Training tab's
    // Start). Writes the run spec into the new run folder.
    bool startTaskTraining(const QString& taskFile, int steps, double lr, const QString& runDir = QString());
    // The method panel's delta spec with the ticked modules as targets.
    QString currentDeltaSpecJson() const;
    // Experiments tab: a transfer matrix over the ticked tasks (deltas trained first, in the worker).
    bool startTransfer(const QStringList& taskFiles, int steps, const QString& outDir = QString());
    // Experiments tab: layer ablation of a finished run (its spec.json and checkpoints/final).
    bool startAblation(const QString& runDir, const QString& outDir = QString());
    HeatmapView* heatmap() const { return m_heatmap; }
    ExperimentController* experiments() const { return m_experiments; }
    CompareTab* compareTab() const { return m_compare; }
    DeltaTab* deltaTab() const { return m_deltaTab; }
    QTabWidget* tabs() const { return m_tabs; }

    // File menu (main_window_files.cpp). The Training tab's settings as a run spec the CLI takes.
    nlohmann::json taskRunSpec(const QString& taskFile, int steps, double lr) const;
    bool saveRunSpec(const QString& path);
    // Exports the Training tab's last run ("peft", "deltatune" or "merged") in a background thread;
    // exported(folder) or exportFailed(message) follows.
    bool exportLastRun(const QString& format, const QString& outDir);
    // An exported delta folder (PEFT's or DeltaTune's) checked against the open model; training then
    // starts from it until the method panel changes.
    bool importDelta(const QString& folder);
    QString importedDelta() const { return m_importedDelta; }
    QStringList recentModels() const;
    // A folder dropped on the window: an exported delta is imported, anything else opened as a model.
    bool openDropped(const QMimeData* mime);
    QString lastRunDir() const { return m_lastRunDir; }
    RunHistory* runHistory() const { return m_history; }
    TaskPanel* taskPanel() const { return m_taskPanel; }
    // Writes the Task Data tab's task.json into the work folder and selects it for training; returns
    // its path (empty on error, see lastError()).
    QString useTaskPanel();

Q_SIGNALS:
    void exported(QString folder);
    void exportFailed(QString message);

protected:
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;
    void closeEvent(QCloseEvent* e) override;

private:
    void chooseModelFolder();
    void chooseRunSpec();
    QWidget* buildTrainingTab();
    QWidget* buildExperimentsTab();
    QString workFolder(const QString& kind, const QString& name) const;
    bool deltaReady();                 // a model is open and the method panel's delta is valid (else logs why)
    std::string modelForSpec() const;  // the open model as a spec's "model": absolute folder or built-in name
    void log(const QString& line);
    void showTrainable(const dt::DeltaSet& set);  // the tree's Trainable column and the budget chart
    void buildFileActions(QMenu* fileMenu);        // main_window_files.cpp
    void rememberModel(const QString& source);
    void restoreLayout();  // window geometry and dock layout of the last session
    void refreshRecentMenu();

    ModelPanel* m_panel;
    QPlainTextEdit* m_log;
    QPlainTextEdit* m_inspect;
    std::shared_ptr<dt::TransformerModel> m_model;
    QString m_lastError;
    TrainingController* m_training;
    TrainingPlot* m_plot = nullptr;
    QLabel* m_specLabel = nullptr;
    QPushButton* m_startButton = nullptr;
    QPushButton* m_pauseButton = nullptr;
    QPushButton* m_stopButton = nullptr;
    QProgressBar* m_progress = nullptr;
    QString m_specPath;
    MethodPanel* m_method = nullptr;
    QString m_budgetText;
    QString m_targetModules;
    bool m_budgetQueued = false;
    QString m_modelSource;
    std::string m_deltaSpec;
    std::string m_formSpec;   // the method panel's form alone, with its ticked targets  // the method panel's spec with ticked targets, as JSON
    QComboBox* m_taskCombo = nullptr;
    QSpinBox* m_stepsSpin = nullptr;
    QDoubleSpinBox* m_lrSpin = nullptr;
    HeatmapView* m_heatmap = nullptr;
    ExperimentController* m_experiments = nullptr;
    QListWidget* m_transferTasks = nullptr;
    QSpinBox* m_transferSteps = nullptr;
    QCheckBox* m_relative = nullptr;
    QPushButton* m_transferButton = nullptr;
    QPushButton* m_transferStop = nullptr;
    QString m_transferDir;
    dt::ResultMatrix m_result;  // the matrix the heatmap shows, cell by cell as computed
    bool m_ablationShown = false;  // the heatmap shows a layer ablation (no relative view)
    QString m_lastRunDir;          // the Training tab's latest run, for the ablation button
    bool m_transferResumable = false;  // the last transfer was stopped: Run Transfer continues it
    CompareTab* m_compare = nullptr;
    DeltaTab* m_deltaTab = nullptr;
    QTabWidget* m_tabs = nullptr;
    QComboBox* m_device = nullptr;
    QComboBox* m_precision = nullptr;
    QString m_importedDelta;
    QMenu* m_recentMenu = nullptr;
    QThread* m_exportThread = nullptr;
    RunHistory* m_history = nullptr;
    TaskPanel* m_taskPanel = nullptr;
};
