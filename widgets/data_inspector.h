// DataInspector: a task's data as the engine reads it (dt::DataReport): a summary (examples, how the
// loss scores them, how many are cut at max_length, lines skipped), the token-length histogram with
// max_length marked, the label distribution, one example at a time with its tokens and the scored
// positions highlighted, and the problem lines.
#pragma once

#include "data/inspect_data.h"

#include <QWidget>

class QCustomPlot;
class QLabel;
class QListWidget;
class QSpinBox;
class QTableWidget;
class QTextBrowser;

class DataInspector : public QWidget {
    Q_OBJECT
public:
    explicit DataInspector(QWidget* parent = nullptr);
    void setReport(const dt::DataReport& report);
    void showExample(int index);
    QString summary() const;
    QString exampleHtml() const;
    QTableWidget* labelTable() const { return m_labels; }
    QCustomPlot* histogram() const { return m_histogram; }
    QListWidget* problems() const { return m_problems; }

private:
    dt::DataReport m_report;
    QLabel* m_summary;
    QCustomPlot* m_histogram;
    QTableWidget* m_labels;
    QSpinBox* m_index;
    QTextBrowser* m_example;
    QListWidget* m_problems;
};
