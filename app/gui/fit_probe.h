// FitProbe: "Will it fit". Runs `deltatune bench memory` in a child process (so each measurement has
// a fresh peak) for one real training step of a run spec at a batch size and reports the measured
// peak resident memory; findLargest() doubles the batch from 1 while the peak stays under a limit
// (by default 90% of the memory the system has available) and a child is not killed.
#pragma once

#include <QObject>
#include <QString>

class QProcess;

class FitProbe : public QObject {
    Q_OBJECT
public:
    explicit FitProbe(QObject* parent = nullptr);
    ~FitProbe() override;
    // The CLI: $DELTATUNE_CLI, else `deltatune` beside this program, in the build tree, or on PATH.
    static QString cliPath();
    static qint64 availableBytes();  // MemAvailable from /proc/meminfo (0 when unknown)

    bool measure(const QString& specPath, int batch);
    bool findLargest(const QString& specPath, int maxBatch, qint64 limitBytes);
    bool isRunning() const;
    void cancel();

Q_SIGNALS:
    void measured(int batch, qint64 peakBytes, qint64 loadedBytes);
    // The largest batch whose step stayed under the limit (0: not even batch 1), its peak, and why
    // probing stopped.
    void largest(int batch, qint64 peakBytes, QString why);
    void failed(QString message);
    void progress(QString text);

private:
    void runStep(int batch);
    void onFinished(int exitCode, int exitStatus);

    QProcess* m_proc = nullptr;
    QString m_spec;
    bool m_probing = false;
    int m_batch = 0, m_maxBatch = 0, m_bestBatch = 0;
    qint64 m_limit = 0, m_bestPeak = 0;
};
