// BudgetChart: the live parameter budget as a stacked bar chart: trainable parameters per layer
// (plus "other" for embeddings, heads and prompts), one colour per method. The method panel's
// budget redraws it whenever a box is ticked or a hyperparameter changes.
#pragma once

#include <QStringList>
#include <QVector>
#include <QWidget>

class QCustomPlot;

class QShowEvent;

class BudgetChart : public QWidget {
    Q_OBJECT
public:
    explicit BudgetChart(QWidget* parent = nullptr);
    // counts[m][g]: parameters method m trains in group g.
    void setBudget(const QStringList& groups, const QStringList& methods, const QVector<QVector<double>>& counts);
    // The value axis' title ("trainable" for parameter budgets, "kept rank" for AdaLoRA's allocation).
    void setValueLabel(const QString& label);
    QStringList groups() const { return m_groups; }
    double total(int group) const;  // over the methods
    QCustomPlot* plot() const { return m_plot; }

protected:
    void showEvent(QShowEvent* e) override;  // replots what changed while hidden

private:
    QCustomPlot* m_plot;
    QStringList m_groups, m_methods;
    QVector<QVector<double>> m_counts;
};
