#include "run_history.h"

#include "train/events.h"
#include "train/run_folder.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <algorithm>
#include <cmath>

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
        if (QFile::exists(QString::fromStdString(dt::run_folder::events_path(f.absoluteFilePath().toStdString())))) runs << f;
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
    QFile f(QString::fromStdString(dt::run_folder::events_path(runDir.toStdString())));
    if (!f.open(QIODevice::ReadOnly)) return false;
    steps.clear();
    smoothed.clear();
    double ema = 0;
    while (!f.atEnd()) {
        const QByteArray line = f.readLine();
        const nlohmann::json j = nlohmann::json::parse(line.constData(), line.constData() + line.size(), nullptr, false);
        if (dt::event_kind(j) != "step") continue;  // also a torn last line of a killed run
        dt::StepEvent e;
        try {
            e = dt::StepEvent::from_json(j);
        } catch (const nlohmann::json::exception&) {
            continue;
        }
        if (e.skipped || !std::isfinite(e.loss)) continue;
        const double loss = e.loss;
        const double step = static_cast<double>(e.step);
        // A resumed run repeats steps after its checkpoint: keep the later ones.
        while (!steps.isEmpty() && steps.last() >= step) steps.removeLast(), smoothed.removeLast();
        ema = smoothed.isEmpty() ? loss : 0.9 * smoothed.last() + 0.1 * loss;
        steps << step;
        smoothed << ema;
    }
    return !steps.isEmpty();
}
