// MainWindow: wires the docks and actions; no logic of its own (see DESIGN.md, "The window").
#pragma once

#include <QMainWindow>

#include <memory>

namespace dt {
class TransformerModel;
}
class ModelPanel;
class QPlainTextEdit;
class QLabel;
class QProgressBar;
class QPushButton;
class TrainingController;
class MethodPanel;
class TrainingPlot;

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
    QString lastError() const { return m_lastError; }

private:
    void chooseModelFolder();
    void chooseRunSpec();
    QWidget* buildTrainingTab();
    void log(const QString& line);

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
    bool m_budgetQueued = false;
};
