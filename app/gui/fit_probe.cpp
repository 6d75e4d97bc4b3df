#include "fit_probe.h"

#include <nlohmann/json.hpp>

#include <QCoreApplication>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QStandardPaths>

FitProbe::FitProbe(QObject* parent) : QObject(parent) {}

FitProbe::~FitProbe() { cancel(); }

QString FitProbe::cliPath() {
    const QString env = qEnvironmentVariable("DELTATUNE_CLI");
    if (!env.isEmpty()) return env;
    const QString dir = QCoreApplication::applicationDirPath();
    for (const QString& c : {dir + QStringLiteral("/deltatune"), dir + QStringLiteral("/../app/deltatune")})
        if (QFileInfo(c).isExecutable()) return QFileInfo(c).absoluteFilePath();
    return QStandardPaths::findExecutable(QStringLiteral("deltatune"));
}

qint64 FitProbe::availableBytes() {
    QFile f(QStringLiteral("/proc/meminfo"));
    if (!f.open(QIODevice::ReadOnly)) return 0;
    while (!f.atEnd()) {
        const QByteArray line = f.readLine();
        if (line.startsWith("MemAvailable:")) return line.mid(13).trimmed().split(' ').value(0).toLongLong() * 1024;
    }
    return 0;
}

bool FitProbe::isRunning() const { return m_proc != nullptr; }

void FitProbe::cancel() {
    if (!m_proc) return;
    QProcess* p = m_proc;
    m_proc = nullptr;
    p->disconnect(this);
    p->kill();
    p->waitForFinished(3000);
    p->deleteLater();
    m_probing = false;
}

bool FitProbe::measure(const QString& specPath, int batch) {
    if (m_proc || batch < 1) return false;
    m_spec = specPath;
    m_probing = false;
    runStep(batch);
    return true;
}

bool FitProbe::findLargest(const QString& specPath, int maxBatch, qint64 limitBytes) {
    if (m_proc || maxBatch < 1) return false;
    m_spec = specPath;
    m_probing = true;
    m_maxBatch = maxBatch;
    m_limit = limitBytes > 0 ? limitBytes : static_cast<qint64>(0.9 * static_cast<double>(availableBytes()));
    m_bestBatch = 0;
    m_bestPeak = 0;
    runStep(1);
    return true;
}

void FitProbe::runStep(int batch) {
    const QString cli = cliPath();
    if (cli.isEmpty()) {
        m_probing = false;
        Q_EMIT failed(tr("Cannot find the deltatune command to measure with (set DELTATUNE_CLI to its path)"));
        return;
    }
    m_batch = batch;
    m_proc = new QProcess(this);
    m_proc->setProgram(cli);
    m_proc->setArguments({QStringLiteral("bench"), QStringLiteral("memory"), QStringLiteral("--spec"), m_spec, QStringLiteral("--batch"),
                          QString::number(batch)});
    connect(m_proc, &QProcess::finished, this, [this](int code, QProcess::ExitStatus st) { onFinished(code, static_cast<int>(st)); });
    connect(m_proc, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
        if (e != QProcess::FailedToStart || !m_proc) return;
        const QString msg = tr("Could not start %1: %2").arg(m_proc->program(), m_proc->errorString());
        m_proc->deleteLater();
        m_proc = nullptr;
        m_probing = false;
        Q_EMIT failed(msg);
    });
    Q_EMIT progress(tr("Measuring one training step at batch %1…").arg(batch));
    m_proc->start();
}

void FitProbe::onFinished(int exitCode, int exitStatus) {
    if (!m_proc) return;
    const QByteArray out = m_proc->readAllStandardOutput(), err = m_proc->readAllStandardError();
    m_proc->deleteLater();
    m_proc = nullptr;
    const bool crashed = exitStatus != QProcess::NormalExit;
    nlohmann::json j;
    if (!crashed && exitCode == 0) {
        const QList<QByteArray> lines = out.trimmed().split('\n');
        j = nlohmann::json::parse(lines.value(lines.size() - 1).toStdString(), nullptr, false);
    }
    const bool ok = j.is_object() && j.contains("peak_rss_bytes");
    if (!m_probing) {
        if (ok) Q_EMIT measured(m_batch, j["peak_rss_bytes"].get<qint64>(), j.value("rss_after_load_bytes", qint64(0)));
        else Q_EMIT failed(crashed ? tr("The measurement at batch %1 was killed (out of memory?)").arg(m_batch)
                                   : tr("The measurement failed: %1").arg(QString::fromUtf8(err.trimmed().split('\n').last())));
        return;
    }
    if (!ok && !crashed) {  // an error in the spec, not a size: say it
        m_probing = false;
        Q_EMIT failed(tr("The measurement failed: %1").arg(QString::fromUtf8(err.trimmed().split('\n').last())));
        return;
    }
    const qint64 peak = ok ? j["peak_rss_bytes"].get<qint64>() : 0;
    if (ok) Q_EMIT measured(m_batch, peak, j.value("rss_after_load_bytes", qint64(0)));
    QString why;
    if (!ok) why = tr("batch %1 was killed (out of memory)").arg(m_batch);
    else if (peak > m_limit) why = tr("batch %1 needs %2 MiB, over the limit of %3 MiB").arg(m_batch).arg(peak >> 20).arg(m_limit >> 20);
    if (why.isEmpty()) {
        m_bestBatch = m_batch;
        m_bestPeak = peak;
        if (m_batch * 2 <= m_maxBatch) return runStep(m_batch * 2);
        why = tr("batch %1 is the largest probed").arg(m_maxBatch);
    }
    m_probing = false;
    Q_EMIT largest(m_bestBatch, m_bestPeak, why);
}
