// ExportDialog: File > Export Delta. It names the run and lets the user pick it (the run history,
// newest first, each with its status) and its checkpoint (best, final, step-N), defaulting to the
// newest finished run's best checkpoint; a cancelled or unfinished run is marked and warned about.
// Format (PEFT, DeltaTune, merged) and the destination folder complete it.
#pragma once

#include <QDialog>
#include <QStringList>

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;

class ExportDialog : public QDialog {
    Q_OBJECT
public:
    ExportDialog(const QStringList& runDirs, QWidget* parent = nullptr);
    QString runDir() const;
    void selectRun(const QString& runDir);  // e.g. the run selected in the Runs tab
    QString checkpoint() const;
    QString format() const;  // peft | deltatune | merged
    QString outDir() const;
    void setOutDir(const QString& dir);
    QString warning() const;  // what the warning line says ("" for a finished run)
    QComboBox* runs() const { return m_runs; }
    QComboBox* checkpoints() const { return m_checkpoints; }

private:
    void runChanged();
    QStringList m_runDirs;
    QComboBox* m_runs;
    QComboBox* m_checkpoints;
    QComboBox* m_format;
    QLineEdit* m_out;
    QLabel* m_warning;
    QPushButton* m_ok = nullptr;
};
