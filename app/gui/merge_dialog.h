// MergeDeltasDialog: File > Merge Deltas. Pick two or more finished runs (or delta folders), a
// weight for each, and PEFT's combination (linear, cat, svd, ties, dare_linear, dare_ties,
// magnitude_prune) with its density / SVD rank / sign election / seed. The window runs
// dt::merge_deltas in a worker and adds the result as a row of the transfer heatmap.
#pragma once

#include "export/merge_deltas.h"

#include <QDialog>
#include <QStringList>

class QComboBox;
class QDoubleSpinBox;
class QLineEdit;
class QSpinBox;
class QTableWidget;

class MergeDeltasDialog : public QDialog {
    Q_OBJECT
public:
    // `sources`: run folders or exported delta folders, newest first; `labels` name them (may be empty).
    MergeDeltasDialog(const QStringList& sources, const QStringList& labels, QWidget* parent = nullptr);
    // The ticked sources with their weights and the combination's settings.
    dt::MergeOptions options() const;
    QString mergedName() const;
    // For tests and scripting: tick source i with weight w; choose a combination.
    void setSource(int i, bool ticked, double weight);
    void setCombination(const QString& c);
    QTableWidget* table() const { return m_table; }

private:
    void updateFields();
    QTableWidget* m_table;
    QComboBox* m_combination;
    QDoubleSpinBox* m_density;
    QSpinBox* m_svdRank;
    QComboBox* m_sign;
    QSpinBox* m_seed;
    QLineEdit* m_name;
    QStringList m_sources;
};
