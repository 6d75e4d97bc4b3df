// RunHistory: the runs of this and earlier sessions (run folders with events.jsonl), newest first.
// Ticking one overlays its smoothed training loss on the Training tab's plot; unticking removes it.
#pragma once

#include <QListWidget>
#include <QVector>

class RunHistory : public QListWidget {
    Q_OBJECT
public:
    explicit RunHistory(QWidget* parent = nullptr);
    // Adds a run folder at the top (once); label defaults to the folder name.
    void addRun(const QString& runDir, const QString& label = QString());
    // Lists the run folders under `folder` (each holding events.jsonl), newest first, at most `limit`.
    void scan(const QString& folder, int limit = 20);
    QStringList runDirs() const;

    // The step numbers and the smoothed (EMA 0.9) training loss from a run's events.jsonl; lines that
    // do not parse (a run killed mid-write) are skipped.
    static bool readCurve(const QString& runDir, QVector<double>& steps, QVector<double>& smoothed);

Q_SIGNALS:
    void overlay(QString name, QVector<double> steps, QVector<double> losses);
    void overlayRemoved(QString name);
};
