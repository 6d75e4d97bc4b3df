#include "budget_chart.h"

#include "plot_style.h"

#include <QVBoxLayout>

namespace {
QColor barColor(int i) {
    static const QColor colors[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(214, 39, 40),
                                    QColor(148, 103, 189), QColor(140, 86, 75)};
    return colors[i % 6];
}
}  // namespace

BudgetChart::BudgetChart(QWidget* parent) : QWidget(parent), m_plot(new QCustomPlot(this)) {
    stylePlot(m_plot);
    m_plot->setInteractions({});  // a summary, not something to explore
    m_plot->yAxis->setLabel(tr("trainable"));
    legendAbove(m_plot);
    m_plot->setMinimumHeight(170);
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(0, 0, 0, 0);
    lay->addWidget(m_plot);
}

double BudgetChart::total(int group) const {
    double s = 0;
    for (const auto& m : m_counts) s += m.value(group);
    return s;
}

void BudgetChart::setValueLabel(const QString& label) {
    if (m_plot->yAxis->label() == label) return;
    m_plot->yAxis->setLabel(label);
    m_plot->replot();
}

void BudgetChart::setBudget(const QStringList& groups, const QStringList& methods, const QVector<QVector<double>>& counts) {
    m_groups = groups;
    m_methods = methods;
    m_counts = counts;
    m_plot->clearPlottables();
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    QVector<double> x;
    for (int g = 0; g < groups.size(); ++g) {
        x << g;
        ticker->addTick(g, groups[g]);
    }
    m_plot->xAxis->setTicker(ticker);
    m_plot->xAxis->setTickLabelRotation(groups.size() > 6 ? 60 : 0);
    QCPBars* below = nullptr;
    double top = 0;
    for (int m = 0; m < methods.size(); ++m) {
        auto* bars = new QCPBars(m_plot->xAxis, m_plot->yAxis);
        bars->setName(methods[m]);
        bars->setPen(Qt::NoPen);
        bars->setBrush(barColor(m));
        bars->setWidth(0.7);
        bars->setData(x, counts.value(m), true);
        if (below) bars->moveAbove(below);
        below = bars;
    }
    for (int g = 0; g < groups.size(); ++g) top = std::max(top, total(g));
    m_plot->xAxis->setRange(-0.6, std::max(0.6, groups.size() - 0.4));
    m_plot->yAxis->setRange(0, top > 0 ? top * 1.15 : 1);
    if (m_plot->isVisible()) m_plot->replot(QCustomPlot::rpQueuedReplot);  // a hidden plot replots when shown
}

void BudgetChart::showEvent(QShowEvent* e) {
    QWidget::showEvent(e);
    m_plot->replot();
}
