#include "resource_view.h"

#include "plot_style.h"

#include "core/process_usage.h"

#include <QLabel>

#include <algorithm>
#include <QThread>
#include <QTimer>
#include <QVBoxLayout>

ResourceView::ResourceView(QWidget* parent) : QWidget(parent) {
    m_plot = new QCustomPlot(this);
    stylePlot(m_plot);
    m_plot->addGraph(m_plot->xAxis, m_plot->yAxis);
    m_plot->addGraph(m_plot->xAxis, m_plot->yAxis2);
    m_plot->graph(0)->setName(tr("resident memory (MiB)"));
    m_plot->graph(0)->setPen(QPen(QColor(31, 119, 180), 2));
    m_plot->graph(1)->setName(tr("CPU (% of one core)"));
    m_plot->graph(1)->setPen(QPen(QColor(255, 127, 14), 1.5));
    m_plot->addGraph(m_plot->xAxis, m_plot->yAxis);
    m_plot->graph(2)->setName(tr("GPU memory allocated (MiB)"));
    m_plot->graph(2)->setPen(QPen(QColor(44, 160, 44), 2));
    m_plot->graph(2)->removeFromLegend();  // joins the legend with its first sample
    m_plot->xAxis->setLabel(tr("seconds"));
    m_plot->yAxis->setLabel(tr("MiB"));
    m_plot->yAxis2->setLabel(tr("CPU %"));
    m_plot->yAxis2->setVisible(true);
    legendAbove(m_plot);
    m_plot->setMinimumHeight(120);
    m_caption = new QLabel(this);
    m_caption->setWordWrap(true);
    m_caption->setText(tr("Memory and CPU of the workbench process, sampled every second while it trains. "
                          "GPU memory appears when training runs on a CUDA device."));
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(0, 0, 0, 0);
    lay->addWidget(m_caption);
    lay->addWidget(m_plot, 1);
    m_timer = new QTimer(this);
    m_timer->setInterval(1000);
    connect(m_timer, &QTimer::timeout, this, &ResourceView::sample);
    m_clock.start();
}

void ResourceView::setSampling(bool on) {
    if (on && !m_timer->isActive()) {
        sample();
        m_timer->start();
    } else if (!on) {
        m_timer->stop();
    }
}

bool ResourceView::isSampling() const { return m_timer->isActive(); }

void ResourceView::sample() {
    const dt::ProcessUsage u = dt::process_usage();
    const double wall = static_cast<double>(m_clock.nsecsElapsed()) * 1e-9;
    const double cpu = m_prevCpu >= 0 && wall > m_prevWall ? 100.0 * (u.cpu_seconds - m_prevCpu) / (wall - m_prevWall) : 0.0;
    m_prevCpu = u.cpu_seconds;
    m_prevWall = wall;
    addSample(wall, static_cast<double>(u.rss_bytes) / (1024.0 * 1024.0), std::max(0.0, cpu),
              u.gpu_bytes >= 0 ? static_cast<double>(u.gpu_bytes) / (1024.0 * 1024.0) : -1.0);
}

void ResourceView::addSample(double seconds, double rssMiB, double cpuPercent, double gpuMiB) {
    m_lastGpu = gpuMiB;
    if (gpuMiB >= 0) {
        if (m_plot->graph(2)->dataCount() == 0) m_plot->graph(2)->addToLegend();
        m_plot->graph(2)->addData(seconds, gpuMiB);
        m_peakGpu = std::max(m_peakGpu, gpuMiB);
    }
    m_lastRss = rssMiB;
    m_lastCpu = cpuPercent;
    m_peakRss = std::max(m_peakRss, rssMiB);
    m_plot->graph(0)->addData(seconds, rssMiB);
    m_plot->graph(1)->addData(seconds, cpuPercent);
    if (m_plot->graph(0)->dataCount() > 3600) {  // the last hour
        m_plot->graph(0)->data()->removeBefore(seconds - 3600);
        m_plot->graph(1)->data()->removeBefore(seconds - 3600);
        m_plot->graph(2)->data()->removeBefore(seconds - 3600);
    }
    m_plot->xAxis->setRange(std::max(0.0, seconds - 300), std::max(10.0, seconds));
    bool found = false;
    double top = 1;
    for (int g : {0, 2}) {
        const QCPRange r = m_plot->graph(g)->getValueRange(found);
        if (found) top = std::max(top, r.upper * 1.15 + 1);
    }
    m_plot->yAxis->setRange(0, top);
    m_plot->yAxis2->setRange(0, std::max(110.0, 100.0 * QThread::idealThreadCount() + 10));
    const QString gpu = gpuMiB >= 0 ? tr("GPU memory %1 MiB allocated (peak %2 MiB).").arg(gpuMiB, 0, 'f', 0).arg(m_peakGpu, 0, 'f', 0)
                                    : tr("GPU memory: not read (no CUDA device in use).");
    m_caption->setText(tr("Resident memory %1 MiB (peak %2 MiB), CPU %3% of one core (%4 cores). %5")
                           .arg(rssMiB, 0, 'f', 0)
                           .arg(m_peakRss, 0, 'f', 0)
                           .arg(cpuPercent, 0, 'f', 0)
                           .arg(QThread::idealThreadCount())
                           .arg(gpu));
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

int ResourceView::sampleCount() const { return m_plot->graph(0)->dataCount(); }
QString ResourceView::caption() const { return m_caption->text(); }
