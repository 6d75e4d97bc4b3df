#include "method_comparison_view.h"

#include "experiments/experiments.h"
#include "plot_style.h"
#include "save_text.h"

#include <QCheckBox>
#include <QHBoxLayout>
#include <QPainter>
#include <QPdfWriter>
#include <QTimer>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace {

QColor methodColor(int i) {
    static const QColor colors[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(214, 39, 40),
                                    QColor(148, 103, 189), QColor(140, 86, 75),  QColor(227, 119, 194), QColor(127, 127, 127),
                                    QColor(188, 189, 34),  QColor(23, 190, 207)};
    return colors[i % 10];
}


}  // namespace

MethodComparisonView::MethodComparisonView(QWidget* parent)
    : QWidget(parent), m_scatter(new QCustomPlot(this)), m_curves(new QCustomPlot(this)), m_timeAxis(new QCheckBox(tr("Against wall time"), this)) {
    stylePlot(m_scatter);
    stylePlot(m_curves);
    m_scatter->xAxis->setScaleType(QCPAxis::stLogarithmic);
    m_scatter->xAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    m_scatter->xAxis->setLabel(tr("trainable parameters (log scale)"));
    m_scatter->plotLayout()->insertRow(0);
    m_scatter->plotLayout()->addElement(0, 0, new QCPTextElement(m_scatter, tr("Metric per trainable parameter (Pareto front: dashed)")));
    m_curves->xAxis->setLabel(tr("step"));
    legendAbove(m_curves);
    m_curves->plotLayout()->insertRow(0);
    m_curves->plotLayout()->addElement(0, 0, new QCPTextElement(m_curves, tr("Convergence")));
    m_timeAxis->setToolTip(tr("Plot the convergence curves against training seconds instead of steps"));
    connect(m_timeAxis, &QCheckBox::toggled, this, &MethodComparisonView::setTimeAxis);
    auto* plots = new QVBoxLayout;
    plots->addWidget(m_scatter, 1);
    plots->addWidget(m_curves, 1);
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(0, 0, 0, 0);
    lay->addLayout(plots, 1);
    lay->addWidget(m_timeAxis);
    clear(tr("accuracy"));
}

void MethodComparisonView::clear(const QString& metric) {
    m_metric = metric;
    m_order.clear();
    m_curveData.clear();
    m_results.clear();
    m_pareto.clear();
    m_curves->clearGraphs();
    m_scatter->yAxis->setLabel(metric);
    m_curves->yAxis->setLabel(metric);
    redrawScatter();
    redrawCurves();
}

MethodComparisonView::Curve& MethodComparisonView::curve(const QString& method) {
    if (!m_curveData.contains(method)) {
        if (!m_order.contains(method)) m_order << method;
        Curve c;
        c.color = methodColor(static_cast<int>(m_order.indexOf(method)));
        c.graph = m_curves->addGraph();
        c.graph->setName(method);
        c.graph->setPen(QPen(c.color, 2));
        c.graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
        m_curveData.insert(method, c);
    }
    return m_curveData[method];
}

void MethodComparisonView::addCurvePoint(const QString& method, qint64 step, double elapsedSeconds, double value) {
    Curve& c = curve(method);
    c.steps << static_cast<double>(step);
    c.seconds << elapsedSeconds;
    c.values << value;
    c.graph->setData(m_timeAxis->isChecked() ? c.seconds : c.steps, c.values, true);
    scheduleReplot();
}

void MethodComparisonView::setCurve(const QString& method, const QVector<double>& steps, const QVector<double>& seconds,
                                    const QVector<double>& values) {
    Curve& c = curve(method);
    c.steps = steps;
    c.seconds = seconds;
    c.values = values;
    c.graph->setData(m_timeAxis->isChecked() ? c.seconds : c.steps, c.values, true);
    scheduleReplot();
}

void MethodComparisonView::setMethodResult(const QString& method, qint64 trainableParams, double value) {
    curve(method);  // gives it its colour and place
    m_results[method] = {trainableParams, value};
    redrawScatter();
    scheduleReplot();
}

void MethodComparisonView::setTimeAxis(bool wallTime) {
    if (m_timeAxis->isChecked() != wallTime) m_timeAxis->setChecked(wallTime);
    redrawCurves();
    scheduleReplot();
}

bool MethodComparisonView::isPareto(const QString& method) const {
    QStringList withResult;
    for (const auto& m : m_order)
        if (m_results.contains(m)) withResult << m;
    const auto i = withResult.indexOf(method);
    return i >= 0 && i < m_pareto.size() && m_pareto[i];
}

int MethodComparisonView::curvePoints(const QString& method) const {
    return m_curveData.contains(method) ? m_curveData[method].values.size() : 0;
}

void MethodComparisonView::redrawCurves() {
    for (auto it = m_curveData.begin(); it != m_curveData.end(); ++it)
        it->graph->setData(m_timeAxis->isChecked() ? it->seconds : it->steps, it->values, true);
    m_curves->xAxis->setLabel(m_timeAxis->isChecked() ? tr("training time (s)") : tr("step"));
    fitCurves();
}

void MethodComparisonView::fitCurves() {
    m_curves->rescaleAxes();
    // Flat curves (every method at 1.0) still get a readable value range. The span comes from the
    // data: rescaleAxes keeps the old span for constant data, which the 10% margin would grow on
    // every fit.
    QCPRange y;
    bool any = false;
    for (int i = 0; i < m_curves->graphCount(); ++i) {
        bool found = false;
        const QCPRange r = m_curves->graph(i)->getValueRange(found);
        if (!found) continue;
        if (any) y.expand(r);
        else y = r;
        any = true;
    }
    if (!any) return;
    if (y.size() < 0.1) m_curves->yAxis->setRange(y.center() - 0.05, y.center() + 0.05);
    else m_curves->yAxis->setRange(y.lower - 0.05 * y.size(), y.upper + 0.05 * y.size());
}

void MethodComparisonView::redrawScatter() {
    m_scatter->clearGraphs();
    m_scatter->clearItems();
    std::vector<std::pair<double, double>> pts;
    QStringList names;
    for (const auto& m : m_order)
        if (m_results.contains(m)) {
            names << m;
            pts.emplace_back(static_cast<double>(std::max<qint64>(1, m_results[m].params)), m_results[m].value);
        }
    // A method without a finite metric (diverged) is never on the front, as in the engine's comparison.
    std::vector<std::pair<double, double>> ranked = pts;
    for (auto& p : ranked)
        if (!std::isfinite(p.second)) p.second = -1e300;
    auto front = dt::pareto_front(ranked);
    for (std::size_t i = 0; i < pts.size(); ++i) front[i] = front[i] && std::isfinite(pts[i].second);
    m_pareto = QVector<bool>(front.begin(), front.end());
    // The front: a dashed step line through the non-dominated points, by parameter count.
    std::vector<std::size_t> onFront;
    for (std::size_t i = 0; i < pts.size(); ++i)
        if (front[i]) onFront.push_back(i);
    std::sort(onFront.begin(), onFront.end(), [&](std::size_t a, std::size_t b) { return pts[a].first < pts[b].first; });
    if (!onFront.empty()) {
        auto* line = m_scatter->addGraph();
        line->setLineStyle(QCPGraph::lsStepLeft);
        line->setPen(QPen(palette().text().color(), 1.5, Qt::DashLine));
        QVector<double> xs, ys;
        for (auto i : onFront) xs << pts[i].first, ys << pts[i].second;
        line->setData(xs, ys, true);
    }
    double lo = 1e300, hi = -1e300, vlo = 1e300, vhi = -1e300;
    for (int i = 0; i < names.size(); ++i) {
        if (!std::isfinite(pts[i].second)) continue;  // nothing to place; the CSV still lists it
        auto* g = m_scatter->addGraph();
        const QColor c = m_curveData.contains(names[i]) ? m_curveData[names[i]].color : methodColor(i);
        g->setLineStyle(QCPGraph::lsNone);
        g->setScatterStyle(QCPScatterStyle(front[i] ? QCPScatterStyle::ssDiamond : QCPScatterStyle::ssCircle, c, c, front[i] ? 12 : 9));
        g->addData(pts[i].first, pts[i].second);
        auto* label = new QCPItemText(m_scatter);
        label->position->setCoords(pts[i].first, pts[i].second);
        label->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
        label->setText(QStringLiteral(" %1").arg(names[i]));
        label->setColor(palette().text().color());
        lo = std::min(lo, pts[i].first), hi = std::max(hi, pts[i].first);
        vlo = std::min(vlo, pts[i].second), vhi = std::max(vhi, pts[i].second);
    }
    if (lo <= hi) {
        m_scatter->xAxis->setRange(lo / 2, hi * 4);
        const double pad = std::max(0.02, (vhi - vlo) * 0.15);
        m_scatter->yAxis->setRange(vlo - pad, vhi + pad);
    } else {
        m_scatter->xAxis->setRange(1, 1e6);
        m_scatter->yAxis->setRange(0, 1);
    }
}

void MethodComparisonView::scheduleReplot() {
    if (m_replotPending) return;
    m_replotPending = true;
    QTimer::singleShot(40, this, [this] {
        m_replotPending = false;
        fitCurves();
        if (!isVisible()) return;  // a hidden plot replots when shown
        m_scatter->replot();
        m_curves->replot();
    });
}

QString MethodComparisonView::toCsv() const {
    QString out = QStringLiteral("method,trainable_params,%1,pareto\n").arg(m_metric);
    for (const auto& m : m_order)
        if (m_results.contains(m))
            out += QStringLiteral("%1,%2,%3,%4\n").arg(m).arg(m_results[m].params).arg(m_results[m].value, 0, 'g', 10).arg(isPareto(m) ? "yes" : "no");
    out += QStringLiteral("\nmethod,step,elapsed_s,%1\n").arg(m_metric);
    for (const auto& m : m_order) {
        if (!m_curveData.contains(m)) continue;
        const Curve& c = m_curveData[m];
        for (int i = 0; i < c.values.size(); ++i)
            out += QStringLiteral("%1,%2,%3,%4\n").arg(m).arg(static_cast<qint64>(c.steps[i])).arg(c.seconds[i], 0, 'g', 6).arg(c.values[i], 0, 'g', 10);
    }
    return out;
}

bool MethodComparisonView::saveCsv(const QString& path) const { return saveTextFile(path, toCsv()); }

bool MethodComparisonView::savePng(const QString& path) {
    m_scatter->replot();
    m_curves->replot();
    return grab().save(path, "PNG");
}

bool MethodComparisonView::savePdf(const QString& path) {
    m_scatter->replot();
    m_curves->replot();
    QPdfWriter pdf(path);
    pdf.setPageSize(QPageSize(QSizeF(width(), height()), QPageSize::Point));
    pdf.setResolution(72);
    pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
    QPainter painter;
    if (!painter.begin(&pdf)) return false;
    render(&painter);
    return painter.end();
}

void MethodComparisonView::showEvent(QShowEvent* e) {
    QWidget::showEvent(e);
    m_scatter->replot();
    m_curves->replot();
}
