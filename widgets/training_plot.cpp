#include "training_plot.h"

#include "plot_style.h"
#include "save_text.h"

#include <QCheckBox>
#include <QElapsedTimer>
#include <QTimer>
#include <QVBoxLayout>

#include <cmath>


TrainingPlot::TrainingPlot(QWidget* parent)
    : QWidget(parent), m_plot(new QCustomPlot(this)), m_rates(new QCustomPlot(this)), m_log(new QCheckBox(tr("Log scale"), this)),
      m_timer(new QTimer(this)) {
    m_timer->setSingleShot(true);
    m_timer->setInterval(40);
    connect(m_timer, &QTimer::timeout, this, &TrainingPlot::replotNow);
    stylePlot(m_plot);
    stylePlot(m_rates);
    m_plot->xAxis->setLabel(tr("step"));
    m_plot->yAxis->setLabel(tr("training loss"));
    m_plot->yAxis2->setLabel(tr("validation score"));
    m_plot->yAxis2->setVisible(true);
    m_plot->yAxis2->setRange(0, 1.05);
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
    legendAbove(m_plot);

    m_rates->xAxis->setLabel(tr("step"));
    m_rates->yAxis->setLabel(tr("learning rate"));
    m_rates->yAxis2->setLabel(tr("tokens/s"));
    m_rates->yAxis2->setVisible(true);
    m_lr = m_rates->addGraph();
    m_lr->setName(tr("learning rate"));
    m_lr->setPen(QPen(QColor(44, 160, 44), 1.5));
    m_tps = m_rates->addGraph(m_rates->xAxis, m_rates->yAxis2);
    m_tps->setName(tr("tokens/s"));
    m_tps->setPen(QPen(QColor(148, 103, 189), 1));
    legendAbove(m_rates);
    m_rates->setMinimumHeight(110);
    m_rates->setMaximumHeight(170);
    connect(m_plot->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), m_rates->xAxis, qOverload<const QCPRange&>(&QCPAxis::setRange));

    // The user zooming or panning stops the ranges following the run; a double click resumes it.
    for (QCustomPlot* p : {m_plot, m_rates}) {
        connect(p, &QCustomPlot::mousePress, this, [this] { m_follow = false; });
        connect(p, &QCustomPlot::mouseWheel, this, [this] { m_follow = false; });
        connect(p, &QCustomPlot::mouseDoubleClick, this, [this] {
            m_follow = true;
            replotNow();
        });
    }
    m_log->setToolTip(tr("Logarithmic loss axis"));
    connect(m_log, &QCheckBox::toggled, this, &TrainingPlot::setLogScale);
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(0, 0, 0, 0);
    lay->addWidget(m_plot, 3);
    lay->addWidget(m_rates, 1);
    lay->addWidget(m_log);
}

void TrainingPlot::clear() {
    m_steps.clear();
    m_losses.clear();
    m_smoothed.clear();
    m_evalSteps.clear();
    m_evalScores.clear();
    m_rateSteps.clear();
    m_lrs.clear();
    m_tpss.clear();
    for (QCPGraph* g : {m_raw, m_smooth, m_eval, m_lr, m_tps}) g->data()->clear();
    m_lossMin = m_lossMax = m_stepMax = m_lrMax = m_tpsMax = 0;
    m_follow = true;
    scheduleReplot();
}

void TrainingPlot::addStep(qint64 step, double loss, double lr, double tokensPerSecond) {
    const double x = static_cast<double>(step);
    if (std::isfinite(lr) || std::isfinite(tokensPerSecond)) {
        m_rateSteps.append(x);
        m_lrs.append(lr);
        m_tpss.append(tokensPerSecond);
        if (std::isfinite(lr)) m_lr->addData(x, lr), m_lrMax = std::max(m_lrMax, lr);
        if (std::isfinite(tokensPerSecond)) m_tps->addData(x, tokensPerSecond), m_tpsMax = std::max(m_tpsMax, tokensPerSecond);
    }
    m_stepMax = std::max(m_stepMax, x);
    if (!std::isfinite(loss)) {  // skipped steps leave a gap
        scheduleReplot();
        return;
    }
    m_ema = m_smoothed.isEmpty() ? loss : 0.9 * m_ema + 0.1 * loss;
    if (m_steps.isEmpty()) m_lossMin = m_lossMax = loss;
    m_lossMin = std::min(m_lossMin, loss);
    m_lossMax = std::max(m_lossMax, loss);
    m_steps.append(x);
    m_losses.append(loss);
    m_smoothed.append(m_ema);
    m_raw->addData(x, loss);
    m_smooth->addData(x, m_ema);
    scheduleReplot();
}

void TrainingPlot::addEvaluation(qint64 step, double score) {
    m_evalSteps.append(static_cast<double>(step));
    m_evalScores.append(score);
    m_eval->addData(static_cast<double>(step), score);
    scheduleReplot();
}

void TrainingPlot::setOverlay(const QString& name, const QVector<double>& steps, const QVector<double>& losses) {
    static const QColor colors[] = {QColor(150, 150, 150), QColor(200, 120, 160), QColor(120, 180, 120), QColor(190, 160, 90)};
    QCPGraph* g = m_overlays.value(name);
    if (!g) {
        g = m_plot->addGraph();
        g->setPen(QPen(colors[m_overlays.size() % 4], 1.5, Qt::DashLine));
        m_overlays.insert(name, g);
    }
    g->setName(name);
    g->setData(steps, losses);
    for (int i = 0; i < steps.size(); ++i)
        if (std::isfinite(losses[i])) {
            m_stepMax = std::max(m_stepMax, steps[i]);
            if (m_steps.isEmpty() && m_overlays.size() == 1 && i == 0) m_lossMin = m_lossMax = losses[i];
            m_lossMin = std::min(m_lossMin, losses[i]);
            m_lossMax = std::max(m_lossMax, losses[i]);
        }
    scheduleReplot();
}

void TrainingPlot::removeOverlay(const QString& name) {
    if (QCPGraph* g = m_overlays.take(name)) m_plot->removeGraph(g);
    scheduleReplot();
}

void TrainingPlot::setLogScale(bool on) {
    if (m_log->isChecked() != on) m_log->setChecked(on);
    m_plot->yAxis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (on) m_plot->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    else m_plot->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    replotNow();
}

bool TrainingPlot::logScale() const { return m_log->isChecked(); }

void TrainingPlot::scheduleReplot() {
    if (!m_timer->isActive()) m_timer->start();
}

void TrainingPlot::applyRanges() {
    if (!m_follow) return;
    m_plot->xAxis->setRange(0, std::max(1.0, m_stepMax));
    double lo = m_lossMin, hi = m_lossMax;
    if (logScale()) {
        lo = std::max(lo > 0 ? lo * 0.8 : 1e-4, 1e-6);
        hi = std::max(hi * 1.25, lo * 10);
    } else {
        const double pad = std::max(1e-3, (hi - lo) * 0.05);
        lo = std::max(0.0, lo - pad);
        hi += pad;
    }
    m_plot->yAxis->setRange(lo, hi > lo ? hi : lo + 1);
    m_plot->yAxis2->setRange(0, 1.05);
    m_rates->yAxis->setRange(0, m_lrMax > 0 ? m_lrMax * 1.1 : 1);
    m_rates->yAxis2->setRange(0, m_tpsMax > 0 ? m_tpsMax * 1.1 : 1);
}

void TrainingPlot::replotNow() {
    applyRanges();
    // Past a hundred thousand points the curves are drawn without antialiasing (half the repaint
    // time at a million points; at that density a pixel column holds hundreds of points anyway).
    const bool dense = m_steps.size() > 100000;
    m_raw->setAntialiased(!dense);
    m_smooth->setAntialiased(!dense);
    if (!isVisible()) return;  // a hidden plot repaints when shown (the next point or a resize)
    m_plot->replot(QCustomPlot::rpQueuedReplot);
    m_rates->replot(QCustomPlot::rpQueuedReplot);
    ++m_replots;
}

double TrainingPlot::replotMilliseconds() {
    applyRanges();
    const bool dense = m_steps.size() > 100000;
    m_raw->setAntialiased(!dense);
    m_smooth->setAntialiased(!dense);
    m_rates->replot(QCustomPlot::rpImmediateRefresh);
    QElapsedTimer t;
    t.start();
    m_plot->replot(QCustomPlot::rpImmediateRefresh);
    return static_cast<double>(t.nsecsElapsed()) / 1e6;
}

QString TrainingPlot::toCsv() const {
    QString out = QStringLiteral("kind,step,value\n");
    for (int i = 0; i < m_steps.size(); ++i)
        out += QStringLiteral("loss,%1,%2\n").arg(m_steps[i], 0, 'f', 0).arg(m_losses[i], 0, 'g', 9);
    for (int i = 0; i < m_steps.size(); ++i)
        out += QStringLiteral("loss_smoothed,%1,%2\n").arg(m_steps[i], 0, 'f', 0).arg(m_smoothed[i], 0, 'g', 9);
    for (int i = 0; i < m_evalSteps.size(); ++i)
        out += QStringLiteral("validation,%1,%2\n").arg(m_evalSteps[i], 0, 'f', 0).arg(m_evalScores[i], 0, 'g', 9);
    for (int i = 0; i < m_rateSteps.size(); ++i)
        if (std::isfinite(m_lrs[i])) out += QStringLiteral("lr,%1,%2\n").arg(m_rateSteps[i], 0, 'f', 0).arg(m_lrs[i], 0, 'g', 9);
    for (int i = 0; i < m_rateSteps.size(); ++i)
        if (std::isfinite(m_tpss[i])) out += QStringLiteral("tokens_per_s,%1,%2\n").arg(m_rateSteps[i], 0, 'f', 0).arg(m_tpss[i], 0, 'g', 9);
    return out;
}

bool TrainingPlot::saveCsv(const QString& path) const { return saveTextFile(path, toCsv()); }

bool TrainingPlot::savePng(const QString& path, int width, int height) {
    applyRanges();
    return m_plot->savePng(path, width, height);
}

bool TrainingPlot::savePdf(const QString& path) {
    applyRanges();
    return m_plot->savePdf(path);
}
