// ResourceView: the process's resident memory (MiB, left axis) and CPU use (% of one core, right
// axis) over time, sampled once a second, plotted beside the training curves; the last values and
// the peak in a caption. Samples come from dt::process_usage() (sample()) or from a caller.
#pragma once

#include <QElapsedTimer>
#include <QWidget>

class QCustomPlot;
class QLabel;
class QTimer;

class ResourceView : public QWidget {
    Q_OBJECT
public:
    explicit ResourceView(QWidget* parent = nullptr);
    // Starts or stops the once-a-second sampling (the Training tab samples while it trains).
    void setSampling(bool on);
    bool isSampling() const;
    // Takes one sample now: CPU % is the CPU time since the previous sample over the wall time.
    void sample();
    // gpuMiB < 0: GPU memory not read (no CUDA device), said in the caption; else plotted.
    void addSample(double seconds, double rssMiB, double cpuPercent, double gpuMiB = -1);
    int sampleCount() const;
    double lastRssMiB() const { return m_lastRss; }
    double lastCpuPercent() const { return m_lastCpu; }
    double lastGpuMiB() const { return m_lastGpu; }
    QString caption() const;
    QCustomPlot* plot() const { return m_plot; }

private:
    QCustomPlot* m_plot;
    QLabel* m_caption;
    QTimer* m_timer;
    QElapsedTimer m_clock;
    double m_prevCpu = -1, m_prevWall = 0, m_lastRss = 0, m_lastCpu = 0, m_peakRss = 0, m_lastGpu = -1, m_peakGpu = 0;
};
