#include "run_history.h"

#include "class_metrics_view.h"
#include "plot_style.h"

#include "core/error.h"
#include "io/json_util.h"
#include "train/events.h"
#include "train/run_folder.h"
#include "train/tensorboard.h"

#include <QComboBox>
#include <QDateTime>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSlider>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <map>

namespace {

// The run's spec.json, or null.
nlohmann::json readSpec(const QString& runDir) {
    try {
        return dt::json::load_file(dt::run_folder::spec_path(runDir.toStdString()));
    } catch (const dt::Error&) {
        return nullptr;
    }
}

QString jsonText(const nlohmann::json& v) {
    if (v.is_string()) return QString::fromStdString(v.get<std::string>());
    return QString::fromStdString(v.dump());
}

// Method names and their size settings ("lora r 8 α 16"), from the spec's delta.
QPair<QString, QString> methodAndSettings(const nlohmann::json& spec) {
    if (!spec.is_object()) return {};
    QStringList methods, settings;
    const nlohmann::json delta = spec.value("delta", nlohmann::json());
    if (delta.is_string()) {
        methods << QFileInfo(QString::fromStdString(delta.get<std::string>())).fileName();
    } else if (delta.is_object()) {
        const nlohmann::json list = delta.contains("methods") ? delta["methods"] : nlohmann::json::array({delta});
        for (const auto& m : list) {
            if (!m.is_object()) continue;
            methods << QString::fromStdString(m.value("method", std::string("?")));
            for (const char* k : {"r", "lora_alpha", "size", "num_virtual_tokens", "init_r", "target_r", "layers"})
                if (m.contains(k)) settings << QStringLiteral("%1 %2").arg(QLatin1String(k), jsonText(m[k]));
        }
    }
    const nlohmann::json tr = spec.value("training", nlohmann::json::object());
    if (tr.is_object()) {
        if (tr.contains("lr")) settings << QStringLiteral("lr %1").arg(jsonText(tr["lr"]));
        if (tr.contains("batch_size")) settings << QStringLiteral("batch %1").arg(jsonText(tr["batch_size"]));
        if (tr.contains("max_steps")) settings << QStringLiteral("%1 steps").arg(jsonText(tr["max_steps"]));
    }
    return {methods.join(QStringLiteral(" + ")), settings.join(QStringLiteral(", "))};
}

// The task's name from the spec: the task file's folder, else the data file's name.
QString taskName(const nlohmann::json& spec) {
    if (!spec.is_object() || !spec.contains("task")) return {};
    const auto& t = spec["task"];
    if (t.is_string()) return QFileInfo(QString::fromStdString(t.get<std::string>())).dir().dirName();
    if (t.is_object() && t.contains("name") && t["name"].is_string()) return QString::fromStdString(t["name"].get<std::string>());
    if (t.is_object() && t.contains("train") && t["train"].is_string())
        return QFileInfo(QString::fromStdString(t["train"].get<std::string>())).completeBaseName();
    return {};
}

// Flattens a JSON document into "a.b[0].c" -> value text.
void flatten(const nlohmann::json& j, const QString& prefix, std::map<QString, QString>& out) {
    if (j.is_object() && !j.empty()) {
        for (auto it = j.begin(); it != j.end(); ++it)
            flatten(it.value(), prefix.isEmpty() ? QString::fromStdString(it.key()) : prefix + QLatin1Char('.') + QString::fromStdString(it.key()), out);
    } else if (j.is_array() && !j.empty() && (j[0].is_object() || j[0].is_array())) {
        for (std::size_t i = 0; i < j.size(); ++i) flatten(j[i], QStringLiteral("%1[%2]").arg(prefix).arg(i), out);
    } else {
        out[prefix] = jsonText(j);
    }
}

QString durationText(double s) {
    if (s <= 0) return {};
    if (s < 60) return QStringLiteral("%1 s").arg(s, 0, 'f', 1);
    if (s < 3600) return QStringLiteral("%1 min %2 s").arg(static_cast<int>(s) / 60).arg(static_cast<int>(s) % 60);
    return QStringLiteral("%1 h %2 min").arg(static_cast<int>(s) / 3600).arg(static_cast<int>(s) % 3600 / 60);
}

const QColor kSeriesColours[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(214, 39, 40),
                                 QColor(148, 103, 189), QColor(140, 86, 75),  QColor(227, 119, 194), QColor(127, 127, 127)};

}  // namespace

RunHistory::RunHistory(QWidget* parent) : QWidget(parent) {
    m_table = new QTreeWidget(this);
    m_table->setColumnCount(ColumnCount);
    m_table->setHeaderLabels({tr("Run"), tr("Method"), tr("Settings"), tr("Trainable"), tr("Best"), tr("Status"), tr("Duration")});
    m_table->setRootIsDecorated(false);
    m_table->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_table->setAlternatingRowColors(true);
    m_table->header()->setStretchLastSection(false);
    m_table->header()->setSectionResizeMode(QHeaderView::Interactive);
    m_table->setColumnWidth(Name, 230);
    m_table->setColumnWidth(Method, 90);
    m_table->setColumnWidth(Settings, 220);
    m_table->setColumnWidth(Trainable, 80);
    m_table->setColumnWidth(Best, 120);
    m_table->setColumnWidth(Status, 90);
    m_table->setColumnWidth(Duration, 80);
    m_table->setToolTip(tr("Every run in the work folder: tick to overlay, select one for its per-class metrics, two for a settings diff"));
    connect(m_table, &QTreeWidget::itemChanged, this, &RunHistory::onItemChanged);
    connect(m_table, &QTreeWidget::itemSelectionChanged, this, [this] {
        syncButtons();
        const QStringList sel = selectedRuns();
        if (sel.size() == 1) m_classes->loadRun(sel.first());
    });

    m_rename = new QPushButton(tr("Rename…"), this);
    m_delete = new QPushButton(tr("Delete…"), this);
    m_resume = new QPushButton(tr("Resume"), this);
    m_resume->setToolTip(tr("Continue a stopped run from its latest checkpoint, exactly"));
    m_export = new QPushButton(tr("Export…"), this);
    m_export->setToolTip(tr("Export the selected run's delta: pick its checkpoint (best, final, step-N) and the format"));
    m_diff = new QPushButton(tr("Compare Settings"), this);
    m_diff->setToolTip(tr("The run-spec fields that differ between the two selected runs"));
    m_tensorboard = new QPushButton(tr("TensorBoard Files"), this);
    m_tensorboard->setToolTip(tr("(Re)write the selected runs' TensorBoard event files; then: tensorboard --logdir <run folder>"));
    auto* buttons = new QHBoxLayout;
    for (QPushButton* b : {m_rename, m_delete, m_resume, m_export, m_diff, m_tensorboard}) buttons->addWidget(b);
    buttons->addStretch(1);
    connect(m_rename, &QPushButton::clicked, this, [this] {
        const QStringList sel = selectedRuns();
        if (sel.size() != 1) return;
        bool ok = false;
        const QString name = QInputDialog::getText(this, tr("Rename Run"), tr("Name of %1:").arg(QFileInfo(sel.first()).fileName()),
                                                   QLineEdit::Normal, displayName(sel.first()), &ok);
        if (ok && !renameRun(sel.first(), name)) Q_EMIT failed(m_error);
    });
    connect(m_delete, &QPushButton::clicked, this, [this] {
        const QStringList sel = selectedRuns();
        if (sel.isEmpty()) return;
        if (QMessageBox::question(this, tr("Delete Runs"), tr("Delete %n run folder(s) with their checkpoints?\n%1", nullptr, static_cast<int>(sel.size()))
                                                               .arg(sel.join(QLatin1Char('\n')))) != QMessageBox::Yes)
            return;
        for (const QString& r : sel)
            if (!deleteRun(r)) Q_EMIT failed(m_error);
    });
    connect(m_resume, &QPushButton::clicked, this, [this] {
        const QStringList sel = selectedRuns();
        if (sel.size() == 1) Q_EMIT resumeRequested(sel.first());
    });
    connect(m_diff, &QPushButton::clicked, this, &RunHistory::showDiff);
    connect(m_export, &QPushButton::clicked, this, [this] {
        const QStringList sel = selectedRuns();
        if (sel.size() == 1) Q_EMIT exportRequested(sel.first());
    });
    connect(m_tensorboard, &QPushButton::clicked, this, [this] {
        for (const QString& r : selectedRuns()) {
            try {
                const std::string path = dt::tensorboard::export_run(r.toStdString());
                Q_EMIT message(tr("Wrote %1 (tensorboard --logdir %2)").arg(QString::fromStdString(path), r));
            } catch (const dt::Error& e) {
                Q_EMIT failed(QString::fromUtf8(e.what()));
            }
        }
    });

    m_metric = new QComboBox(this);
    m_metric->addItems({QStringLiteral("training loss"), QStringLiteral("accuracy"), QStringLiteral("macro_f1"), QStringLiteral("loss"),
                        QStringLiteral("exact_match"), QStringLiteral("pearson"), QStringLiteral("perplexity")});
    m_metric->setToolTip(tr("What the comparison plot shows: the training loss of every step, or an evaluation metric"));
    m_x = new QComboBox(this);
    m_x->addItem(tr("step"), QStringLiteral("step"));
    m_x->addItem(tr("epoch"), QStringLiteral("epoch"));
    m_x->addItem(tr("tokens"), QStringLiteral("tokens"));
    m_x->addItem(tr("wall time (s)"), QStringLiteral("time"));
    m_smoothing = new QSlider(Qt::Horizontal, this);
    m_smoothing->setRange(0, 99);
    m_smoothing->setValue(90);
    m_smoothing->setMaximumWidth(160);
    m_smoothing->setToolTip(tr("Exponential moving average of the plotted values (0: none, 0.99: strong)"));
    auto* smoothingLabel = new QLabel(this);
    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Overlay:"), this));
    controls->addWidget(m_metric);
    controls->addWidget(new QLabel(tr("against"), this));
    controls->addWidget(m_x);
    controls->addWidget(new QLabel(tr("smoothing"), this));
    controls->addWidget(m_smoothing);
    controls->addWidget(smoothingLabel);
    controls->addStretch(1);
    auto updateSmoothingLabel = [this, smoothingLabel] { smoothingLabel->setText(QString::number(m_smoothing->value() / 100.0, 'f', 2)); };
    updateSmoothingLabel();
    connect(m_metric, &QComboBox::currentIndexChanged, this, &RunHistory::replotComparison);
    connect(m_x, &QComboBox::currentIndexChanged, this, &RunHistory::replotComparison);
    connect(m_smoothing, &QSlider::valueChanged, this, [this, updateSmoothingLabel] {
        updateSmoothingLabel();
        replotComparison();
    });

    m_plot = new QCustomPlot(this);
    stylePlot(m_plot);
    legendAbove(m_plot);
    m_plot->setMinimumHeight(140);
    m_classes = new ClassMetricsView(this);

    auto* top = new QWidget(this);
    auto* topLay = new QVBoxLayout(top);
    topLay->setContentsMargins(0, 0, 0, 0);
    topLay->addWidget(m_table, 1);
    topLay->addLayout(buttons);
    auto* plotBox = new QWidget(this);
    auto* plotLay = new QVBoxLayout(plotBox);
    plotLay->setContentsMargins(0, 0, 0, 0);
    plotLay->addLayout(controls);
    plotLay->addWidget(m_plot, 1);
    // Tabs rather than side by side: the Runs tab must not widen the window (1024 px screens).
    auto* bottom = new QTabWidget(this);
    bottom->addTab(plotBox, tr("Overlay of ticked runs"));
    bottom->addTab(m_classes, tr("Per-class metrics of the selected run"));
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(top);
    split->addWidget(bottom);
    split->setStretchFactor(0, 2);
    split->setStretchFactor(1, 3);
    m_table->setMinimumHeight(90);
    auto* lay = new QVBoxLayout(this);
    lay->addWidget(split);
    syncButtons();
    replotComparison();
}

QTreeWidgetItem* RunHistory::item(int row) const { return m_table->topLevelItem(row); }

QStringList RunHistory::runDirs() const {
    QStringList out;
    for (int i = 0; i < m_table->topLevelItemCount(); ++i) out << m_table->topLevelItem(i)->data(Name, Qt::UserRole).toString();
    return out;
}

QStringList RunHistory::selectedRuns() const {
    QStringList out;
    for (QTreeWidgetItem* it : m_table->selectedItems()) out << it->data(Name, Qt::UserRole).toString();
    return out;
}

QString RunHistory::displayName(const QString& runDir) const {
    const QString dir = QFileInfo(runDir).absoluteFilePath();
    for (int i = 0; i < m_table->topLevelItemCount(); ++i)
        if (m_table->topLevelItem(i)->data(Name, Qt::UserRole).toString() == dir) return m_table->topLevelItem(i)->text(Name);
    return QFileInfo(dir).fileName();
}

void RunHistory::addRun(const QString& runDir, const QString& label) {
    const QString dir = QFileInfo(runDir).absoluteFilePath();
    QTreeWidgetItem* item = nullptr;
    for (int i = 0; i < m_table->topLevelItemCount() && !item; ++i)
        if (m_table->topLevelItem(i)->data(Name, Qt::UserRole).toString() == dir) item = m_table->topLevelItem(i);
    m_filling = true;
    if (!item) {
        item = new QTreeWidgetItem;
        item->setData(Name, Qt::UserRole, dir);
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        item->setCheckState(Name, Qt::Unchecked);
        m_table->insertTopLevelItem(0, item);
    }
    if (!label.isEmpty()) item->setData(Name, Qt::UserRole + 1, label);
    m_filling = false;
    fillRow(item);
}

void RunHistory::fillRow(QTreeWidgetItem* item) {
    m_filling = true;
    const QString dir = item->data(Name, Qt::UserRole).toString();
    const dt::run_folder::RunSummary s = dt::run_folder::summarize_run(dir.toStdString());
    const nlohmann::json spec = readSpec(dir);
    const auto [method, settings] = methodAndSettings(spec);
    // The name: the user's label, else task · method · start time (not a truncated timestamp).
    QString name = QString::fromStdString(s.label);
    if (name.isEmpty()) name = item->data(Name, Qt::UserRole + 1).toString();
    if (name.isEmpty()) {
        const QFileInfo specFile(QString::fromStdString(dt::run_folder::spec_path(dir.toStdString())));
        const QDateTime when = specFile.exists() ? specFile.lastModified() : QFileInfo(dir).lastModified();
        QStringList parts;
        const QString task = taskName(spec);
        if (!task.isEmpty()) parts << task;
        if (!method.isEmpty()) parts << method;
        parts << when.toString(QStringLiteral("MMM d, HH:mm:ss"));
        name = parts.join(QStringLiteral(" · "));
    }
    item->setText(Name, name);
    item->setToolTip(Name, dir);
    item->setText(Method, method);
    item->setText(Settings, settings);
    item->setToolTip(Settings, settings);
    item->setText(Trainable, s.trainable >= 0 ? QLocale().toString(static_cast<qlonglong>(s.trainable)) : QString());
    if (s.trainable >= 0 && s.total > 0)
        item->setToolTip(Trainable, tr("%1 of %2 parameters (%3%)")
                                        .arg(QLocale().toString(static_cast<qlonglong>(s.trainable)), QLocale().toString(static_cast<qlonglong>(s.total)))
                                        .arg(100.0 * static_cast<double>(s.trainable) / static_cast<double>(s.total), 0, 'f', 4));
    item->setText(Best, s.best_metric.empty() ? QString() : QStringLiteral("%1 %2").arg(QString::fromStdString(s.best_metric)).arg(s.best, 0, 'f', 4));
    QString status = QString::fromStdString(s.status);
    if (status.isEmpty()) status = dir == m_active ? tr("training") : tr("stopped");  // killed: resumable from its latest checkpoint
    item->setText(Status, QStringLiteral("%1 (%2)").arg(status).arg(s.steps));
    item->setToolTip(Status, tr("%1 after %2 steps; checkpoints: %3")
                                 .arg(status)
                                 .arg(s.steps)
                                 .arg(QStringList([&] {
                                          QStringList c;
                                          for (const auto& n : s.checkpoints) c << QString::fromStdString(n);
                                          return c;
                                      }())
                                          .join(QStringLiteral(", "))));
    item->setText(Duration, durationText(s.elapsed_s));
    m_filling = false;
}

void RunHistory::scan(const QString& folder, int limit) {
    QFileInfoList runs;
    for (const QFileInfo& f : QDir(folder).entryInfoList(QDir::Dirs | QDir::NoDotAndDotDot))
        if (QFile::exists(QString::fromStdString(dt::run_folder::events_path(f.absoluteFilePath().toStdString())))) runs << f;
    std::sort(runs.begin(), runs.end(), [](const QFileInfo& a, const QFileInfo& b) { return a.lastModified() < b.lastModified(); });
    if (runs.size() > limit) runs = runs.mid(runs.size() - limit);
    for (const QFileInfo& f : runs) addRun(f.absoluteFilePath());
}

void RunHistory::setChecked(const QString& runDir, bool on) {
    const QString dir = QFileInfo(runDir).absoluteFilePath();
    for (int i = 0; i < m_table->topLevelItemCount(); ++i)
        if (m_table->topLevelItem(i)->data(Name, Qt::UserRole).toString() == dir)
            m_table->topLevelItem(i)->setCheckState(Name, on ? Qt::Checked : Qt::Unchecked);
}

void RunHistory::onItemChanged(QTreeWidgetItem* item, int column) {
    if (m_filling || column != Name) return;
    const QString dir = item->data(Name, Qt::UserRole).toString();
    const QString name = item->text(Name);
    if (item->checkState(Name) != Qt::Checked) {
        Q_EMIT overlayRemoved(name);
    } else {
        QVector<double> steps, losses;  // the live plot's axes: training loss against steps
        if (readCurve(dir, steps, losses)) Q_EMIT overlay(name, steps, losses);
    }
    replotComparison();
}

void RunHistory::syncButtons() {
    const QStringList sel = selectedRuns();
    m_rename->setEnabled(sel.size() == 1);
    m_delete->setEnabled(!sel.isEmpty() && !sel.contains(m_active));
    bool resumable = false;
    if (sel.size() == 1 && sel.first() != m_active) {
        const auto s = dt::run_folder::summarize_run(sel.first().toStdString());
        resumable = !s.finished() && !s.checkpoints.empty();
    }
    m_resume->setEnabled(resumable);
    m_export->setEnabled(sel.size() == 1);
    m_diff->setEnabled(sel.size() == 2);
    m_tensorboard->setEnabled(!sel.isEmpty());
}

bool RunHistory::renameRun(const QString& runDir, const QString& label) {
    try {
        dt::run_folder::set_label(QFileInfo(runDir).absoluteFilePath().toStdString(), label.trimmed().toStdString());
    } catch (const dt::Error& e) {
        m_error = QString::fromUtf8(e.what());
        return false;
    }
    const QString old = displayName(runDir);
    addRun(runDir);  // refreshes the row
    if (old != displayName(runDir)) {
        setChecked(runDir, false);  // an overlay under the old name goes
        Q_EMIT overlayRemoved(old);
    }
    return true;
}

bool RunHistory::deleteRun(const QString& runDir) {
    const QString dir = QFileInfo(runDir).absoluteFilePath();
    if (dir == QFileInfo(m_active).absoluteFilePath()) {
        m_error = tr("%1 is training: stop it before deleting it").arg(dir);
        return false;
    }
    if (!QFile::exists(QString::fromStdString(dt::run_folder::events_path(dir.toStdString())))) {
        m_error = tr("%1 is not a run folder (no events.jsonl): not deleted").arg(dir);
        return false;
    }
    setChecked(dir, false);
    if (!QDir(dir).removeRecursively()) {
        m_error = tr("Could not delete all of %1 (permissions?)").arg(dir);
        return false;
    }
    for (int i = 0; i < m_table->topLevelItemCount(); ++i)
        if (m_table->topLevelItem(i)->data(Name, Qt::UserRole).toString() == dir) delete m_table->takeTopLevelItem(i);
    m_classes->clear();
    replotComparison();
    Q_EMIT message(tr("Deleted %1").arg(dir));
    return true;
}

QVector<QPair<QString, QPair<QString, QString>>> RunHistory::specDiff(const QString& a, const QString& b) {
    std::map<QString, QString> fa, fb;
    flatten(readSpec(a), {}, fa);
    flatten(readSpec(b), {}, fb);
    for (const char* k : {"output_dir"}) fa.erase(QLatin1String(k)), fb.erase(QLatin1String(k));  // always differs
    QVector<QPair<QString, QPair<QString, QString>>> out;
    std::map<QString, int> keys;
    for (const auto& [k, v] : fa) keys[k] = 1;
    for (const auto& [k, v] : fb) keys[k] = 1;
    for (const auto& [k, one] : keys) {
        const QString va = fa.count(k) ? fa[k] : tr("(not set)"), vb = fb.count(k) ? fb[k] : tr("(not set)");
        if (va != vb) out.push_back({k, {va, vb}});
    }
    return out;
}

void RunHistory::showDiff() {
    const QStringList sel = selectedRuns();
    if (sel.size() != 2) return;
    const auto diff = specDiff(sel[0], sel[1]);
    QDialog dlg(this);
    dlg.setWindowTitle(tr("Settings Diff"));
    auto* table = new QTableWidget(static_cast<int>(diff.size()), 3, &dlg);
    table->setHorizontalHeaderLabels({tr("Field"), displayName(sel[0]), displayName(sel[1])});
    for (int i = 0; i < diff.size(); ++i) {
        table->setItem(i, 0, new QTableWidgetItem(diff[i].first));
        table->setItem(i, 1, new QTableWidgetItem(diff[i].second.first));
        table->setItem(i, 2, new QTableWidgetItem(diff[i].second.second));
    }
    table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    auto* lay = new QVBoxLayout(&dlg);
    lay->addWidget(new QLabel(diff.isEmpty() ? tr("The two runs have the same settings.") : tr("%n field(s) differ:", nullptr, static_cast<int>(diff.size())), &dlg));
    lay->addWidget(table);
    auto* box = new QDialogButtonBox(QDialogButtonBox::Close, &dlg);
    connect(box, &QDialogButtonBox::rejected, &dlg, &QDialog::reject);
    lay->addWidget(box);
    dlg.resize(760, 420);
    dlg.exec();
}

void RunHistory::setMetric(const QString& metric) {
    if (m_metric->findText(metric) < 0) m_metric->addItem(metric);
    m_metric->setCurrentText(metric);
}
void RunHistory::setXAxis(const QString& x) { m_x->setCurrentIndex(std::max(0, m_x->findData(x))); }
void RunHistory::setSmoothing(double factor) { m_smoothing->setValue(static_cast<int>(std::lround(std::clamp(factor, 0.0, 0.99) * 100))); }
QStringList RunHistory::metricChoices() const {
    QStringList out;
    for (int i = 0; i < m_metric->count(); ++i) out << m_metric->itemText(i);
    return out;
}

QStringList RunHistory::comparedRuns() const {
    QStringList out;
    for (int i = 0; i < m_plot->graphCount(); ++i) out << m_plot->graph(i)->name();
    return out;
}

void RunHistory::replotComparison() {
    m_plot->clearGraphs();
    const QString metric = m_metric->currentText(), x = m_x->currentData().toString();
    int n = 0;
    for (int i = m_table->topLevelItemCount() - 1; i >= 0; --i) {  // oldest first: stable colours
        QTreeWidgetItem* it = m_table->topLevelItem(i);
        if (it->checkState(Name) != Qt::Checked) continue;
        QVector<double> xs, ys;
        if (!readSeries(it->data(Name, Qt::UserRole).toString(), metric, x, m_smoothing->value() / 100.0, xs, ys)) continue;
        QCPGraph* g = m_plot->addGraph();
        g->setName(it->text(Name));
        g->setPen(QPen(kSeriesColours[n++ % 8], 1.8));
        if (xs.size() < 30) g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
        g->setData(xs, ys, true);
    }
    m_plot->xAxis->setLabel(m_x->currentText());
    m_plot->yAxis->setLabel(metric);
    if (m_plot->graphCount() > 0) m_plot->rescaleAxes();
    else m_plot->xAxis->setRange(0, 1), m_plot->yAxis->setRange(0, 1);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

bool RunHistory::readCurve(const QString& runDir, QVector<double>& steps, QVector<double>& smoothed) {
    return readSeries(runDir, QStringLiteral("training loss"), QStringLiteral("step"), 0.9, steps, smoothed);
}

bool RunHistory::readSeries(const QString& runDir, const QString& metric, const QString& x, double smoothing, QVector<double>& xs,
                            QVector<double>& ys) {
    QFile f(QString::fromStdString(dt::run_folder::events_path(runDir.toStdString())));
    if (!f.open(QIODevice::ReadOnly)) return false;
    xs.clear();
    ys.clear();
    // Epochs from run_info.json: optimizer steps x examples per step (batch x accumulation x ranks) /
    // training examples.
    double perStep = 0;
    if (x == QLatin1String("epoch")) {
        const dt::run_folder::RunInfo info = dt::run_folder::read_info(runDir.toStdString());
        const nlohmann::json spec = readSpec(runDir);
        const nlohmann::json tr = spec.is_object() ? spec.value("training", nlohmann::json::object()) : nlohmann::json::object();
        const double batch = tr.is_object() ? tr.value("batch_size", 8.0) * tr.value("grad_accum", 1.0) : 8.0;
        if (info.train_examples <= 0) return false;  // a run from before run_info.json: no epochs
        perStep = batch * static_cast<double>(info.world_size) / static_cast<double>(info.train_examples);
    }
    const bool training = metric == QLatin1String("training loss");
    std::map<std::int64_t, double> tokensAt, timeAt;  // per step, for evaluations
    double tokens = 0, lastElapsed = 0;
    auto xOf = [&](std::int64_t step) {
        if (x == QLatin1String("epoch")) return static_cast<double>(step) * perStep;
        if (x == QLatin1String("tokens")) return tokensAt.count(step) ? tokensAt[step] : tokens;
        if (x == QLatin1String("time")) return timeAt.count(step) ? timeAt[step] : lastElapsed;
        return static_cast<double>(step);
    };
    QVector<double> raw;
    while (!f.atEnd()) {
        const QByteArray line = f.readLine();
        dt::EventLine ev;
        if (!dt::parse_event_line(line.constData(), line.constData() + line.size(), ev)) continue;  // a torn last line of a killed run
        double value = 0;
        std::int64_t step = 0;
        if (ev.kind == "step") {
            const dt::StepEvent& e = ev.step;
            // A resumed run repeats steps after its checkpoint: the tokens restart from there.
            if (!tokensAt.empty() && e.step <= tokensAt.rbegin()->first) {
                tokensAt.erase(tokensAt.lower_bound(e.step), tokensAt.end());
                timeAt.erase(timeAt.lower_bound(e.step), timeAt.end());
                tokens = tokensAt.empty() ? 0 : tokensAt.rbegin()->second;
                lastElapsed = timeAt.empty() ? 0 : timeAt.rbegin()->second;
            }
            if (std::isfinite(e.elapsed_s) && std::isfinite(e.tokens_per_s)) {
                tokens += e.tokens_per_s * std::max(0.0, e.elapsed_s - lastElapsed);
                lastElapsed = e.elapsed_s;
            }
            tokensAt[e.step] = tokens;
            timeAt[e.step] = lastElapsed;
            if (!training || e.skipped || !std::isfinite(e.loss)) continue;
            value = e.loss;
            step = e.step;
        } else if (ev.kind == "eval" && !training) {
            const auto it = ev.eval.metrics.find(metric.toStdString());
            if (it == ev.eval.metrics.end() || !std::isfinite(it->second)) continue;
            value = it->second;
            step = ev.eval.step;
        } else {
            continue;
        }
        const double px = xOf(step);
        while (!xs.isEmpty() && xs.last() >= px) xs.removeLast(), raw.removeLast();  // resumed: keep the later ones
        xs << px;
        raw << value;
    }
    for (int i = 0; i < raw.size(); ++i) ys << (i == 0 ? raw[0] : smoothing * ys.last() + (1 - smoothing) * raw[i]);
    return !xs.isEmpty();
}
