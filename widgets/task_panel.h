// TaskPanel: a task from the user's own data file (JSONL, CSV or TSV): a preview of the first rows,
// the field mapping (text, optional pair, label), classification or regression, the formulation
// (label words scored by the model's LM head at a template's mask, or a classification head), the
// label words, and a validation split. It writes a task.json the run spec, the CLI and the
// experiments take.
#pragma once

#include <QStringList>
#include <QWidget>

#include <nlohmann/json.hpp>

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QTableWidget;

class TaskPanel : public QWidget {
    Q_OBJECT
public:
    explicit TaskPanel(QWidget* parent = nullptr);

    // Reads the file's first rows; false (and error()) on bad input, the panel unchanged.
    bool loadFile(const QString& path);
    void setFields(const QString& text, const QString& pair, const QString& label);
    void setLabelWords(bool on);  // false: a classification head
    void setRegression(bool on);
    void setTemplate(const QString& t);
    void setLabelWord(const QString& label, const QString& word);
    void setName(const QString& name, const QString& category = {});

    QStringList columns() const { return m_columns; }
    QStringList labels() const;  // distinct values of the label column (classification)
    int previewRows() const;
    QString error() const { return m_error; }
    // The task as task.json holds it; paths absolute. Throws nothing; check error() after validate().
    nlohmann::json taskJson() const;
    bool validate();
    // Writes <dir>/task.json atomically; returns its path (empty on error, see error()).
    QString writeTask(const QString& dir);

Q_SIGNALS:
    // "Use for Training": the caller decides where the task.json goes and what to do with it.
    void useRequested();
    // "Inspect Data…": the caller reads the task with the open model's tokenizer.
    void inspectRequested();

private:
    void refreshLabels();
    QString m_path, m_error;
    QStringList m_columns;
    std::vector<QStringList> m_distinct;
    QLineEdit* m_file;
    QTableWidget* m_preview;
    QComboBox* m_text;
    QComboBox* m_pair;
    QComboBox* m_label;
    QComboBox* m_type;
    QComboBox* m_formulation;
    QLineEdit* m_template;
    QTableWidget* m_words;
    QDoubleSpinBox* m_split;
    QLineEdit* m_name;
    QLineEdit* m_category;
    QLabel* m_status;
    QPushButton* m_use;
    QPushButton* m_inspect;
};
