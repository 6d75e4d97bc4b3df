// Workbench: the session facts the tabs share (see workbench.h).
#include "workbench.h"
#include <QSettings>

#include <nlohmann/json.hpp>

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>

Workbench::Workbench(QObject* parent) : QObject(parent) {}

void Workbench::setModel(std::shared_ptr<dt::TransformerModel> model, const QString& source) {
    m_model = std::move(model);
    m_modelSource = source;
    m_importedDelta.clear();
    m_lastError.clear();
}

std::string Workbench::modelForSpec() const {
    const QFileInfo f(m_modelSource);
    return f.exists() ? f.absoluteFilePath().toStdString() : m_modelSource.toStdString();  // a folder, or a built-in name
}

void Workbench::setDeltaSpec(const std::string& spec, const QString& problem) {
    m_deltaSpec = spec;
    m_deltaProblem = problem;
}

void Workbench::setImportedDelta(const QString& folder) { m_importedDelta = folder; }

nlohmann::json Workbench::runDelta() const {
    return m_importedDelta.isEmpty() ? nlohmann::json::parse(m_deltaSpec) : nlohmann::json(m_importedDelta.toStdString());
}

bool Workbench::deltaReady() {
    if (m_modelSource.isEmpty()) {
        fail(tr("Open a model first"));
        return false;
    }
    Q_EMIT deltaNeeded();
    if (!m_deltaSpec.empty() || !m_importedDelta.isEmpty()) return true;
    fail(tr("The method panel's delta is not valid: %1").arg(m_deltaProblem));
    return false;
}

void Workbench::fail(const QString& message) {
    m_lastError = message;
    log(message);
    Q_EMIT statusMessage(message, 0);
}

QString Workbench::workFolder(const QString& kind, const QString& name) {
    QString base = qEnvironmentVariable("DELTATUNE_WORK_DIR");
    if (base.isEmpty()) base = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    return base + QLatin1Char('/') + kind + QLatin1Char('/') + name + QLatin1Char('-') +
           QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss-zzz"));
}

QString Workbench::demoDir() {
    const QStringList candidates = {qEnvironmentVariable("DELTATUNE_DEMO_DIR"),
                                    QCoreApplication::applicationDirPath() + QStringLiteral("/../share/deltatune/demo"),
                                    QStringLiteral(DT_SOURCE_DIR "/resources/demo")};
    for (const QString& c : candidates)
        if (!c.isEmpty() && QFileInfo::exists(c + QStringLiteral("/tasks"))) return QDir(c).absolutePath();
    return {};
}

QString Workbench::demoModel() {
    const QString d = demoDir();
    const QString m = d + QStringLiteral("/models/synth-bert-small");
    return !d.isEmpty() && QFileInfo::exists(m + QStringLiteral("/config.json")) ? m : QString();
}

QStringList Workbench::demoGenerativeTasks() {
    QStringList out;
    const QString d = demoDir();
    for (const QString& t : {QStringLiteral("answer"), QStringLiteral("summary")}) {
        const QString f = d + QStringLiteral("/tasks/") + t + QStringLiteral("/task.json");
        if (!d.isEmpty() && QFileInfo::exists(f)) out << f;
    }
    return out;
}

QStringList Workbench::demoTasks() {
    QStringList out;
    const QString d = demoDir();
    if (d.isEmpty()) return out;
    // The order of docs/demo.md: categories together.
    const QStringList order = {QStringLiteral("reviews"),    QStringLiteral("opinions"),
                               QStringLiteral("negation"),   QStringLiteral("news"),
                               QStringLiteral("questions"),  QStringLiteral("adjective-entailment"),
                               QStringLiteral("opinion-entailment"), QStringLiteral("review-pairs"),
                               QStringLiteral("agreement")};
    for (const QString& t : order) {
        const QString f = d + QStringLiteral("/tasks/") + t + QStringLiteral("/task.json");
        if (QFileInfo::exists(f)) out << f;
    }
    return out;
}

QString Workbench::dialogStart(const QString& kind, const QString& fileName) {
    QString dir = QSettings().value(QStringLiteral("dialogs/") + kind).toString();
    if (dir.isEmpty() || !QFileInfo(dir).isDir()) dir = QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation);
    if (dir.isEmpty() || !QFileInfo(dir).isDir()) dir = QDir::homePath();
    return fileName.isEmpty() ? dir : dir + QLatin1Char('/') + fileName;
}

void Workbench::remember(const QString& kind, const QString& chosen, bool isFolder) {
    if (chosen.isEmpty()) return;
    const QFileInfo f(chosen);
    QSettings().setValue(QStringLiteral("dialogs/") + kind, isFolder ? f.absolutePath() : f.absoluteDir().absolutePath());
}
