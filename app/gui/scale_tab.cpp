#include "scale_tab.h"

#include "plot_style.h"
#include "save_text.h"
#include "experiment_panel.h"
#include "worker_thread.h"
#include "workbench.h"

#include "core/error.h"
#include "train/defaults.h"

#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPainter>
#include <QPdfWriter>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>

#include <cmath>
#include <tuple>

namespace {

QColor seriesColor(int i) {
    static const QColor colors[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(214, 39, 40),
                                    QColor(148, 103, 189), QColor(140, 86, 75), QColor(227, 119, 194), QColor(127, 127, 127)};
    return colors[i % 8];
}

std::pair<QString, QString> splitName(const QString& sizeAndMethod) {
    const auto at = sizeAndMethod.indexOf(QLatin1Char('/'));
    return {sizeAndMethod.left(at), sizeAndMethod.mid(at + 1)};
}

}  // namespace

void ScaleWorker::run() {
    QString error;
    try {
        dt::run_scale(m_spec, this, m_control);
    } catch (const std::exception& e) {
        error = QString::fromUtf8(e.what());
    }
    Q_EMIT finished(error);
}

void ScaleWorker::on_method(const dt::MethodResult& r) {
    QVector<double> steps, values;
    for (const auto& p : r.curve) steps << static_cast<double>(p.step), values << p.value;
    Q_EMIT result(QString::fromStdString(r.name), r.base_params, r.value, QString::fromStdString(r.metric), steps, values);
}

ScaleTab::ScaleTab(const QStringList& tasks, std::function<QString(QString)> workFolder, QWidget* parent)
    : QWidget(parent), m_workFolder(std::move(workFolder)) {
    m_family = new QComboBox(this);
    m_family->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_family->setMinimumContentsLength(12);
    m_family->setToolTip(tr("The model sizes compared: the demo's two T5s (span-corruption pretrained) or its two BERTs"));
    const QString models = Workbench::demoDir() + QStringLiteral("/models/");
    m_family->addItem(tr("Demo T5: small, base"), QStringList{models + QStringLiteral("synth-t5-small"), models + QStringLiteral("synth-t5-base")});
    m_family->addItem(tr("Demo BERT: small, base"),
                      QStringList{models + QStringLiteral("synth-bert-small"), models + QStringLiteral("synth-bert-base")});
    m_task = new QComboBox(this);
    m_task->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_task->setMinimumContentsLength(12);
    m_task->setToolTip(tr("The one task every size and method is trained and evaluated on"));
    for (const QString& t : tasks) m_task->addItem(QFileInfo(t).dir().dirName(), t);
    m_methods = new QListWidget(this);
    m_methods->setToolTip(tr("Methods trained on every size"));
    for (const char* m : {"lora", "adapter", "prompt", "prefix", "bitfit", "ia3"}) {
        auto* item = new QListWidgetItem(QString::fromLatin1(m), m_methods);
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        const QString s = QString::fromLatin1(m);
        item->setCheckState(s == QLatin1String("lora") || s == QLatin1String("prompt") || s == QLatin1String("adapter") ? Qt::Checked : Qt::Unchecked);
    }
    m_steps = new QSpinBox(this);
    m_steps->setRange(1, 100000);
    m_steps->setValue(200);
    m_steps->setToolTip(tr("Training steps per size and method, with an evaluation every tenth of them"));
    m_run = new QPushButton(tr("Run Scale"), this);
    m_run->setToolTip(tr("Train every ticked method on every size in the background"));
    m_stop = new QPushButton(tr("Stop"), this);
    m_stop->setEnabled(false);
    m_stop->setToolTip(tr("Stop after the current step; Run Scale again keeps the finished pairs"));
    m_status = new QLabel(tr("No results yet: pick sizes, a task and methods, then Run Scale."), this);
    m_status->setWordWrap(true);

    m_sizePlot = new QCustomPlot(this);
    m_curvePlot = new QCustomPlot(this);
    for (auto [p, title, xlabel] : {std::tuple<QCustomPlot*, QString, QString>{m_sizePlot, tr("Power of scale: metric per model size"),
                                                                                tr("base model parameters (log scale)")},
                                    {m_curvePlot, tr("Convergence per size (solid: smallest)"), tr("step")}}) {
        stylePlot(p);
        p->xAxis->setLabel(xlabel);
        legendAbove(p);
        p->plotLayout()->insertRow(0);
        auto* t = new QCPTextElement(p, title);
        t->setTextColor(p->palette().text().color());
        p->plotLayout()->addElement(0, 0, t);
    }
    m_sizePlot->xAxis->setScaleType(QCPAxis::stLogarithmic);

    auto* side = new QWidget(this);
    auto* form = new QVBoxLayout(side);
    form->addWidget(new QLabel(tr("Sizes:"), side));
    form->addWidget(m_family);
    form->addWidget(new QLabel(tr("Task:"), side));
    form->addWidget(m_task);
    form->addWidget(new QLabel(tr("Methods:"), side));
    form->addWidget(m_methods, 1);
    auto* stepsRow = new QHBoxLayout;
    stepsRow->addWidget(new QLabel(tr("Steps:"), side));
    stepsRow->addWidget(m_steps);
    form->addLayout(stepsRow);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_run);
    buttons->addWidget(m_stop);
    form->addLayout(buttons);
    form->addWidget(m_status);
    gui::addExportRow(
        this, form, tr("Export Scale"), QStringLiteral("scale"),
        [this](const QString& ext, const QString& f) { return ext == QLatin1String("csv") ? saveTextFile(f, toCsv()) : ext == QLatin1String("pdf") ? savePdf(f) : savePng(f); },
        [this](const QString& line) { Q_EMIT logLine(line); });
    auto* plots = new QWidget(this);
    auto* pl = new QVBoxLayout(plots);
    pl->setContentsMargins(0, 0, 0, 0);
    pl->addWidget(m_sizePlot, 1);
    pl->addWidget(m_curvePlot, 1);
    auto* split = new QSplitter(this);
    split->addWidget(side);
    split->addWidget(plots);
    split->setStretchFactor(1, 1);
    split->setSizes({220, 900});
    auto* lay = new QVBoxLayout(this);
    lay->addWidget(split);

    connect(m_run, &QPushButton::clicked, this, [this] {
        if (!start(m_task->currentData().toString(), m_family->currentData().toStringList(), gui::checkedTexts(m_methods), m_steps->value()))
            m_status->setText(m_lastError);
    });
    connect(m_stop, &QPushButton::clicked, this, &ScaleTab::stop);
    redraw();
}

ScaleTab::~ScaleTab() {
    m_control.cancel = true;
    gui::endWorker(m_thread);
}

bool ScaleTab::start(const QString& taskFile, const QStringList& models, const QStringList& methods, int steps, const QString& outDir) {
    if (m_thread) return false;
    m_lastError.clear();
    if (taskFile.isEmpty() || methods.isEmpty() || models.size() < 2) {
        m_lastError = tr("Choose two or more sizes, a task and at least one method");
        return false;
    }
    for (const QString& m : models)
        if (!QFileInfo::exists(m + QStringLiteral("/config.json"))) {
            m_lastError = tr("%1 is not a model folder (needs config.json and model.safetensors); tools/make_demo.sh makes the demo's").arg(m);
            return false;
        }
    const QString key = taskFile + QLatin1Char('|') + models.join(QLatin1Char(',')) + QLatin1Char('|') + methods.join(QLatin1Char(',')) +
                        QLatin1Char('|') + QString::number(steps);
    if (!outDir.isEmpty()) m_outDir = outDir;
    else if (key != m_lastKey || m_outDir.isEmpty()) m_outDir = m_workFolder(QStringLiteral("scale-") + QFileInfo(taskFile).dir().dirName());
    m_lastKey = key;
    nlohmann::json j = {{"models", nlohmann::json::array()},
                        {"task", QFileInfo(taskFile).absoluteFilePath().toStdString()},
                        {"methods", nlohmann::json::array()},
                        {"training",
                         {{"max_steps", steps},
                          {"batch_size", dt::TrainingDefaults::batch_size},
                          {"lr", dt::TrainingDefaults::lr},
                          {"eval_every", dt::TrainingDefaults::eval_every(steps)}}},
                        {"output_dir", m_outDir.toStdString()}};
    for (const QString& m : models) j["models"].push_back(QFileInfo(m).absoluteFilePath().toStdString());
    for (const QString& m : methods) j["methods"].push_back(m.toStdString());
    dt::ScaleSpec spec;
    try {
        spec = dt::ScaleSpec::from_json(j, "workbench", "");
    } catch (const dt::Error& e) {
        m_lastError = QString::fromStdString(e.what());
        return false;
    }
    m_curves.clear();
    m_final.clear();
    m_sizeOrder.clear();
    m_methodOrder.clear();
    for (const auto& m : spec.models) m_sizeOrder << QString::fromStdString(m.name);
    for (const auto& m : spec.compare.methods) m_methodOrder << QString::fromStdString(m.name);
    redraw();
    m_control.cancel = false;
    auto* worker = new ScaleWorker(spec, &m_control);
    connect(worker, &ScaleWorker::status, this, [this](const QString& s) {
        m_status->setText(s);
        Q_EMIT logLine(s);
    });
    connect(worker, &ScaleWorker::point, this, [this](const QString& name, qint64 step, double v) {
        m_curves[name].steps << static_cast<double>(step);
        m_curves[name].values << v;
        redraw();
    });
    connect(worker, &ScaleWorker::result, this,
            [this](const QString& name, qint64 params, double v, const QString& metric, const QVector<double>& steps, const QVector<double>& values) {
        m_metric = metric;
        m_curves[name] = {steps, values};
        m_final[name] = {params, v};
        redraw();
        Q_EMIT logLine(tr("%1: %2 %3").arg(name, metric).arg(v, 0, 'f', 4));
    });
    connect(worker, &ScaleWorker::finished, this, [this](const QString& error) {
        gui::endWorker(m_thread);
        m_run->setEnabled(true);
        m_stop->setEnabled(false);
        if (!error.isEmpty()) {
            m_lastError = error;
            m_status->setText(error);
            Q_EMIT failed(error);
            return;
        }
        const bool stopped = m_control.cancel.load();
        m_status->setText(stopped ? tr("Stopped; Run Scale continues with the pairs left") : tr("Done: %1").arg(m_outDir));
        Q_EMIT finished(stopped);
    });
    m_run->setEnabled(false);
    m_stop->setEnabled(true);
    m_status->setText(tr("Starting..."));
    m_thread = gui::startWorker(this, worker, [worker] { worker->run(); });
    return true;
}

void ScaleTab::stop() { m_control.cancel = true; }

void ScaleTab::redraw() {
    m_sizePlot->clearGraphs();
    m_curvePlot->clearGraphs();
    m_sizePlot->yAxis->setLabel(m_metric);
    m_curvePlot->yAxis->setLabel(m_metric);
    double lo = INFINITY, hi = -INFINITY, pmin = INFINITY, pmax = -INFINITY, smax = 1;
    for (int mi = 0; mi < m_methodOrder.size(); ++mi) {
        QVector<double> x, y;
        for (const QString& size : m_sizeOrder) {
            const auto it = m_final.constFind(size + QLatin1Char('/') + m_methodOrder[mi]);
            if (it == m_final.constEnd() || !std::isfinite(it->second) || it->first <= 0) continue;
            x << static_cast<double>(it->first);
            y << it->second;
            lo = std::min(lo, it->second), hi = std::max(hi, it->second);
            pmin = std::min(pmin, static_cast<double>(it->first)), pmax = std::max(pmax, static_cast<double>(it->first));
        }
        if (x.isEmpty()) continue;
        auto* g = m_sizePlot->addGraph();
        g->setName(m_methodOrder[mi]);
        g->setPen(QPen(seriesColor(mi), 2));
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 7));
        g->setData(x, y);
    }
    for (auto it = m_curves.constBegin(); it != m_curves.constEnd(); ++it) {
        const auto [size, method] = splitName(it.key());
        auto* g = m_curvePlot->addGraph();
        g->setName(it.key());
        const int si = static_cast<int>(m_sizeOrder.indexOf(size));
        g->setPen(QPen(seriesColor(static_cast<int>(m_methodOrder.indexOf(method))), 2, si <= 0 ? Qt::SolidLine : si == 1 ? Qt::DashLine : Qt::DotLine));
        g->setData(it->steps, it->values);
        for (int i = 0; i < it->values.size(); ++i) {
            lo = std::min(lo, it->values[i]), hi = std::max(hi, it->values[i]);
            smax = std::max(smax, it->steps[i]);
        }
    }
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    const double pad = std::max(0.02, (hi - lo) * 0.1);
    for (QCustomPlot* p : {m_sizePlot, m_curvePlot}) p->yAxis->setRange(lo - pad, hi + pad);
    if (std::isfinite(pmin)) m_sizePlot->xAxis->setRange(pmin / 2, pmax * 2);
    else m_sizePlot->xAxis->setRange(1e4, 1e7);
    // One tick per size, at its parameter count, named: "synth-t5-small / 0.37M".
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    QMap<QString, qint64> sizeParams;
    for (auto it = m_final.constBegin(); it != m_final.constEnd(); ++it) {
        const QString size = splitName(it.key()).first;
        sizeParams[size] = std::max(sizeParams.value(size), it->first);
    }
    for (auto it = sizeParams.constBegin(); it != sizeParams.constEnd(); ++it)
        if (it.value() > 0)
            ticks->addTick(static_cast<double>(it.value()),
                           QStringLiteral("%1\n%2M").arg(it.key()).arg(static_cast<double>(it.value()) / 1e6, 0, 'f', 2));
    m_sizePlot->xAxis->setTicker(ticks);
    m_curvePlot->xAxis->setRange(0, smax);
    m_sizePlot->replot();
    m_curvePlot->replot();
}

QString ScaleTab::toCsv() const {
    QString s = QStringLiteral("model,parameters,method,%1\n").arg(m_metric);
    for (auto it = m_final.constBegin(); it != m_final.constEnd(); ++it) {
        const auto [size, method] = splitName(it.key());
        s += QStringLiteral("%1,%2,%3,%4\n").arg(size).arg(it->first).arg(method).arg(it->second, 0, 'g', 10);
    }
    s += QStringLiteral("\nmodel,method,step,%1\n").arg(m_metric);
    for (auto it = m_curves.constBegin(); it != m_curves.constEnd(); ++it) {
        const auto [size, method] = splitName(it.key());
        for (int i = 0; i < it->steps.size(); ++i)
            s += QStringLiteral("%1,%2,%3,%4\n").arg(size, method).arg(it->steps[i]).arg(it->values[i], 0, 'g', 10);
    }
    return s;
}

bool ScaleTab::savePdf(const QString& path) {
    QPdfWriter w(path);
    w.setPageSize(QPageSize(QSizeF(m_sizePlot->width(), m_sizePlot->height() + m_curvePlot->height()), QPageSize::Point));
    w.setPageMargins(QMarginsF(0, 0, 0, 0));
    QPainter painter(&w);
    if (!painter.isActive()) return false;
    const double s = w.width() / static_cast<double>(m_sizePlot->width());
    painter.scale(s, s);
    m_sizePlot->render(&painter);
    painter.translate(0, m_sizePlot->height());
    m_curvePlot->render(&painter);
    return true;
}

bool ScaleTab::savePng(const QString& path) {
    QPixmap pm(std::max(m_sizePlot->width(), m_curvePlot->width()), m_sizePlot->height() + m_curvePlot->height());
    pm.fill(palette().base().color());
    QPainter painter(&pm);
    m_sizePlot->render(&painter);
    painter.translate(0, m_sizePlot->height());
    m_curvePlot->render(&painter);
    painter.end();
    return pm.save(path, "PNG");
}
