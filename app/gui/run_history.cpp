#include "run_history.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>

#include <algorithm>

RunHistory::RunHistory(QWidget* parent) : QListWidget(parent) {
    setToolTip(tr("Earlier runs: tick one to overlay its smoothed training loss"));
    connect(this, &QListWidget::itemChanged, this, [this](QListWidgetItem* item) {
        const QString dir = item->data(Qt::UserRole).toString();
        if (item->checkState() != Qt::Checked) {
            Q_EMIT overlayRemoved(item->text());
            return;
        }
        QVector<double> steps, losses;
        if (readCurve(dir, steps, losses)) Q_EMIT overlay(item->text(), steps, losses);
    });
}

void RunHistory::addRun(const QString& runDir, const QString& label) {
    const QString dir = QFileInfo(runDir).absoluteFilePath();
    if (runDirs().contains(dir)) return;
    auto* item = new QListWidgetItem(label.isEmpty() ? QFileInfo(dir).fileName() : label);
    item->setData(Qt::UserRole, dir);
    item->setToolTip(dir);
    item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
    item->setCheckState(Qt::Unchecked);
    insertItem(0, item);
}

void RunHistory::scan(const QString& folder, int limit) {
    QFileInfoList runs;
    for (const QFileInfo& f : QDir(folder).entryInfoList(QDir::Dirs | QDir::NoDotAndDotDot))
        if (QFile::exists(f.absoluteFilePath() + QStringLiteral("/events.jsonl"))) runs << f;
    std::sort(runs.begin(), runs.end(), [](const QFileInfo& a, const QFileInfo& b) { return a.lastModified() < b.lastModified(); });
    if (runs.size() > limit) runs = runs.mid(runs.size() - limit);
    for (const QFileInfo& f : runs) addRun(f.absoluteFilePath());
}

QStringList RunHistory::runDirs() const {
    QStringList out;
    for (int i = 0; i < count(); ++i) out << item(i)->data(Qt::UserRole).toString();
    return out;
}

bool RunHistory::readCurve(const QString& runDir, QVector<double>& steps, QVector<double>& smoothed) {
    QFile f(runDir + QStringLiteral("/events.jsonl"));
    if (!f.open(QIODevice::ReadOnly)) return false;
    steps.clear();
    smoothed.clear();
    double ema = 0;
    while (!f.atEnd()) {
        const QJsonObject o = QJsonDocument::fromJson(f.readLine()).object();
        if (o.value(QStringLiteral("event")).toString() != QLatin1String("step") || !o.value(QStringLiteral("loss")).isDouble()) continue;
        const double loss = o.value(QStringLiteral("loss")).toDouble();
        const double step = o.value(QStringLiteral("step")).toDouble();
        // A resumed run repeats steps after its checkpoint: keep the later ones.
        while (!steps.isEmpty() && steps.last() >= step) steps.removeLast(), smoothed.removeLast();
        ema = smoothed.isEmpty() ? loss : 0.9 * smoothed.last() + 0.1 * loss;
        steps << step;
        smoothed << ema;
    }
    return !steps.isEmpty();
}
