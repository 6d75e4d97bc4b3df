// PlaygroundTab: try a model as a user would. Type an input (or pick one of the run's validation
// examples, rendered as the model sees it), and see the base model's answer beside the base plus a
// run's delta (its best, final or latest checkpoint), streamed token by token from a worker thread
// that Stop cancels. Causal LMs and T5 generate (greedy, beams or sampling); masked LMs fill the
// mask (label-word probabilities for label-word tasks, else the top words); classification heads
// give label probabilities. Works while nothing trains and on any run of the history.
#pragma once

#include "generate/generate.h"

#include <QString>
#include <QStringList>
#include <QWidget>

#include <atomic>
#include <functional>
#include <memory>

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QThread;
class Workbench;

// Loads the models and answers on its own thread; side 0 = base, 1 = base + delta.
class PlaygroundWorker : public QObject {
    Q_OBJECT
public:
    struct Job {
        std::string model, run_dir, checkpoint, input;
        dt::GenerationOptions generation;
    };
    PlaygroundWorker(Job job, std::shared_ptr<std::atomic<bool>> cancel) : m_job(std::move(job)), m_cancel(std::move(cancel)) {}
    void run();

Q_SIGNALS:
    void partial(int side, QString text);
    void answered(int side, QString text, QString scores);  // scores: one "word  0.873" per line, for heads that score
    void finished(QString error);

private:
    Job m_job;
    std::shared_ptr<std::atomic<bool>> m_cancel;
};

class PlaygroundTab : public QWidget {
    Q_OBJECT
public:
    // `runs` lists the run folders to offer (the Training tab's history, newest first).
    PlaygroundTab(Workbench* session, std::function<QStringList()> runs, QWidget* parent = nullptr);
    ~PlaygroundTab() override;
    void refreshRuns();
    // Selects a run folder (added when not listed); empty: the open model alone.
    void setRun(const QString& runDir);
    void setInput(const QString& text);
    bool generate();  // false (and says why in the status line) when it cannot start
    void stop();
    bool isRunning() const { return m_thread != nullptr; }
    QString output(int side) const;
    QString lastError() const { return m_lastError; }
    QStringList examples() const;
    QString statusText() const;
    QString currentRun() const;

Q_SIGNALS:
    void finished();

protected:
    void showEvent(QShowEvent* e) override;

private:
    void loadExamples();
    dt::GenerationOptions settings() const;

    Workbench* m_session;
    std::function<QStringList()> m_runs;
    QComboBox *m_run, *m_checkpoint, *m_example;
    QPlainTextEdit *m_input, *m_out[2];
    QLabel *m_title[2], *m_status;
    QSpinBox *m_maxNew, *m_beams, *m_seed;
    QDoubleSpinBox *m_temperature, *m_topP;
    QPushButton *m_go, *m_stop;
    QThread* m_thread = nullptr;
    std::shared_ptr<std::atomic<bool>> m_cancel;
    QString m_lastError, m_chosen;  // the run the user picked (m_chosenSet; empty: none)
    bool m_chosenSet = false;
};
