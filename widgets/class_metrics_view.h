// ClassMetricsView: a classification run's per-class precision, recall, F1 and support in a table,
// and its confusion matrix (gold class x predicted class, counts in the cells) as a heatmap, from
// the latest evaluation while training or from a run folder's events.jsonl.
#pragma once

#include "train/metrics.h"

#include <QWidget>

class HeatmapView;
class QLabel;
class QTableWidget;

class ClassMetricsView : public QWidget {
    Q_OBJECT
public:
    explicit ClassMetricsView(QWidget* parent = nullptr);
    void setConfusion(qint64 step, const dt::ConfusionMatrix& cm, const QString& source = {});
    // The last evaluation with a confusion matrix in a run folder; false (view cleared) when none.
    bool loadRun(const QString& runDir);
    void clear(const QString& why = {});
    QTableWidget* table() const { return m_table; }
    HeatmapView* heatmap() const { return m_heatmap; }
    QString caption() const;

private:
    QLabel* m_caption;
    QTableWidget* m_table;
    HeatmapView* m_heatmap;
};
