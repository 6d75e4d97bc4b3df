#include "training_plot.h"

#include "qcustomplot_compat.h"
#include "save_text.h"

#include <QTimer>
#include <QVBoxLayout>

#include <cmath>

TrainingPlot::TrainingPlot(QWidget* parent) : QWidget(parent), m_plot(new QCustomPlot(this)), m_timer(new QTimer(this)) {
    m_timer->setSingleShot(true);
    m_timer->setInterval(40);
    connect(m_timer, &QTimer::timeout, this, &TrainingPlot::replotNow);
    const QPalette pal = palette();
    m_plot->setBackground(pal.base());
    for (QCPAxis* ax : {m_plot->xAxis, m_plot->yAxis, m_plot->yAxis2}) {
        ax->setBasePen(QPen(pal.text().color()));
        ax->setTickPen(QPen(pal.text().color()));
        ax->setSubTickPen(QPen(pal.text().color()));
        ax->setTickLabelColor(pal.text().color());
        ax->setLabelColor(pal.text().color());
    }
    m_plot->xAxis->setLabel(tr("step"));
    m_plot->yAxis->setLabel(tr("training loss"));
    m_plot->yAxis2->setLabel(tr("validation score"));
    m_plot->yAxis2->setVisible(true);
    m_plot->yAxis2->setRange(0, 1);
    m_raw = m_plot->addGraph();
    m_raw->setName(tr("loss"));
    m_raw->setPen(QPen(QColor(120, 160, 220, 140)));
    m_smooth = m_plot->addGraph();
    m_smooth->setName(tr("loss (smoothed)"));
    m_smooth->setPen(QPen(QColor(30, 90, 200), 2));
    m_eval = m_plot->addGraph(m_plot->xAxis, m_plot->yAxis2);
    m_eval->setName(tr("validation"));
    m_eval->setPen(QPen(QColor(220, 120, 20), 2));
    m_eval->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 6));
    m_plot->legend->setVisible(true);
    m_plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignBottom | Qt::AlignLeft);
    m_plot->legend->setBrush(pal.base());
    m_plot->legend->setTextColor(pal.text().color());
    m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(0, 0, 0, 0);
    lay->addWidget(m_plot);
}

void TrainingPlot::clear() {
    m_steps.clear();
    m_losses.clear();
    m_smoothed.clear();
    m_evalSteps.clear();
    m_evalScores.clear();
    scheduleReplot();
}

void TrainingPlot::addStep(qint64 step, double loss) {
    if (!std::isfinite(loss)) return;  // skipped steps leave a gap
    m_ema = m_smoothed.isEmpty() ? loss : 0.9 * m_ema + 0.1 * loss;
    m_steps.append(static_cast<double>(step));
    m_losses.append(loss);
    m_smoothed.append(m_ema);
    scheduleReplot();
}

void TrainingPlot::addEvaluation(qint64 step, double score) {
    m_evalSteps.append(static_cast<double>(step));
    m_evalScores.append(score);
    scheduleReplot();
}

void TrainingPlot::scheduleReplot() {
    if (!m_timer->isActive()) m_timer->start();
}

void TrainingPlot::replotNow() {
    m_raw->setData(m_steps, m_losses, true);
    m_smooth->setData(m_steps, m_smoothed, true);
    m_eval->setData(m_evalSteps, m_evalScores, true);
    m_raw->rescaleAxes();
    m_smooth->rescaleAxes(true);
    m_plot->yAxis2->setRange(0, 1.05);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
    ++m_replots;
}

QString TrainingPlot::toCsv() const {
    QString out = QStringLiteral("kind,step,value\n");
    for (int i = 0; i < m_steps.size(); ++i)
        out += QStringLiteral("loss,%1,%2\n").arg(m_steps[i], 0, 'f', 0).arg(m_losses[i], 0, 'g', 9);
    for (int i = 0; i < m_steps.size(); ++i)
        out += QStringLiteral("loss_smoothed,%1,%2\n").arg(m_steps[i], 0, 'f', 0).arg(m_smoothed[i], 0, 'g', 9);
    for (int i = 0; i < m_evalSteps.size(); ++i)
        out += QStringLiteral("validation,%1,%2\n").arg(m_evalSteps[i], 0, 'f', 0).arg(m_evalScores[i], 0, 'g', 9);
    return out;
}

bool TrainingPlot::saveCsv(const QString& path) const { return saveTextFile(path, toCsv()); }

bool TrainingPlot::savePng(const QString& path, int width, int height) {
    replotNow();
    return m_plot->savePng(path, width, height);
}

bool TrainingPlot::savePdf(const QString& path) {
    replotNow();
    return m_plot->savePdf(path);
}
