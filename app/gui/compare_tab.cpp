#include "compare_tab.h"

#include "core/error.h"
#include "train/defaults.h"
#include "method_comparison_view.h"
#include "experiment_panel.h"
#include "worker_thread.h"

#include <QComboBox>
#include <QFileInfo>
#include <QDir>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>

#include <cmath>

void ComparisonWorker::run() {
    try {
        dt::run_method_comparison(m_spec, this, m_control);
        Q_EMIT finished();
    } catch (const dt::Error& e) {
        Q_EMIT failed(QString::fromStdString(e.what()));
    } catch (const std::exception& e) {
        Q_EMIT failed(tr("Internal error: %1").arg(QString::fromUtf8(e.what())));
    }
}

void ComparisonWorker::on_status(const std::string& s) { Q_EMIT status(QString::fromStdString(s)); }
void ComparisonWorker::on_point(const std::string& m, const dt::CurvePoint& p) {
    Q_EMIT point(QString::fromStdString(m), p.step, p.elapsed_s, p.value);
}
void ComparisonWorker::on_method(const dt::MethodResult& r) {
    QVector<double> steps, seconds, values;
    for (const auto& p : r.curve) steps << static_cast<double>(p.step), seconds << p.elapsed_s, values << p.value;
    Q_EMIT method(QString::fromStdString(r.name), r.trainable_params, r.value, QString::fromStdString(r.metric), steps, seconds, values);
}

CompareTab::CompareTab(std::function<std::string()> model, std::function<QString(QString)> workFolder, QWidget* parent)
    : QWidget(parent), m_model(std::move(model)), m_workFolder(std::move(workFolder)) {
    m_view = new MethodComparisonView(this);
    m_task = new QComboBox(this);
    m_task->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_task->setMinimumContentsLength(12);
    m_task->setToolTip(tr("The task every method is trained and evaluated on"));
    m_methods = new QListWidget(this);
    m_methods->setToolTip(tr("Methods to compare, trained one after another with their defaults or at the budget"));
    for (const char* m : {"lora", "adapter", "bitfit", "ia3", "prefix", "prompt", "layernorm", "last_layers"}) {
        auto* item = new QListWidgetItem(QString::fromLatin1(m), m_methods);
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        const QString s = QString::fromLatin1(m);
        item->setCheckState(s == QLatin1String("lora") || s == QLatin1String("adapter") || s == QLatin1String("bitfit") || s == QLatin1String("ia3") ||
                                    s == QLatin1String("prefix")
                                ? Qt::Checked
                                : Qt::Unchecked);
    }
    m_budget = new QSpinBox(this);
    m_budget->setRange(0, 100000000);
    m_budget->setValue(6000);
    m_budget->setSpecialValueText(tr("method defaults"));
    m_budget->setToolTip(tr("Trainable parameters to match: each method's size (LoRA r, adapter size, prompt and prefix length, "
                            "last layers) is chosen to come closest; 0 keeps every method's defaults"));
    m_steps = new QSpinBox(this);
    m_steps->setRange(1, 100000);
    m_steps->setValue(150);
    m_steps->setToolTip(tr("Training steps per method (batch 16), with an evaluation every tenth of them"));
    m_run = new QPushButton(tr("Compare Methods"), this);
    m_run->setToolTip(tr("Train the ticked methods one after another in the background"));
    m_stop = new QPushButton(tr("Stop"), this);
    m_stop->setEnabled(false);
    m_stop->setToolTip(tr("Stop after the current step; Compare Methods again keeps the finished methods"));
    m_status = new QLabel(this);
    m_status->setWordWrap(true);

    auto* side = new QWidget(this);
    auto* form = new QVBoxLayout(side);
    form->addWidget(new QLabel(tr("Task:"), side));
    form->addWidget(m_task);
    form->addWidget(new QLabel(tr("Methods:"), side));
    form->addWidget(m_methods, 1);
    auto* budgetRow = new QHBoxLayout;
    budgetRow->addWidget(new QLabel(tr("Budget:"), side));
    budgetRow->addWidget(m_budget);
    form->addLayout(budgetRow);
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
        this, form, tr("Export Comparison"), QStringLiteral("comparison"),
        [this](const QString& ext, const QString& f) {
            return ext == QLatin1String("csv") ? m_view->saveCsv(f) : ext == QLatin1String("pdf") ? m_view->savePdf(f) : m_view->savePng(f);
        },
        [this](const QString& line) { Q_EMIT logLine(line); });
    auto* split = new QSplitter(this);
    split->addWidget(side);
    split->addWidget(m_view);
    split->setStretchFactor(1, 1);
    split->setSizes({220, 900});
    auto* lay = new QVBoxLayout(this);
    lay->addWidget(split);

    connect(m_run, &QPushButton::clicked, this, [this] {
        if (!start(m_task->currentData().toString(), gui::checkedTexts(m_methods), m_budget->value(), m_steps->value()))
            m_status->setText(m_lastError);
    });
    connect(m_stop, &QPushButton::clicked, this, &CompareTab::stop);
}

CompareTab::~CompareTab() {
    if (m_thread) {
        m_control.cancel = true;
        m_thread->quit();
        m_thread->wait();
    }
}

void CompareTab::setTasks(const QStringList& taskFiles) {
    m_task->clear();
    for (const QString& t : taskFiles) m_task->addItem(QFileInfo(t).dir().dirName(), t);
    const int negation = m_task->findText(QStringLiteral("negation"));  // methods differ most there
    if (negation >= 0) m_task->setCurrentIndex(negation);
}

bool CompareTab::start(const QString& taskFile, const QStringList& methods, qint64 budget, int steps, const QString& outDir) {
    if (m_thread) return false;
    if (taskFile.isEmpty() || methods.isEmpty()) {
        m_lastError = tr("Choose a task and tick at least one method");
        return false;
    }
    // The same task, methods, budget and steps continue the last (stopped) comparison.
    const QString key = taskFile + QLatin1Char('|') + methods.join(QLatin1Char(',')) + QLatin1Char('|') + QString::number(budget) +
                        QLatin1Char('|') + QString::number(steps);
    if (!outDir.isEmpty()) m_outDir = outDir;
    else if (key != m_lastKey || m_outDir.isEmpty()) m_outDir = m_workFolder(QStringLiteral("compare-") + QFileInfo(taskFile).dir().dirName());
    m_lastKey = key;
    nlohmann::json j = {{"model", m_model()},
                        {"task", QFileInfo(taskFile).absoluteFilePath().toStdString()},
                        {"methods", nlohmann::json::array()},
                        {"budget", budget},
                        {"training",
                         {{"max_steps", steps},
                          {"batch_size", dt::TrainingDefaults::batch_size},
                          {"lr", dt::TrainingDefaults::lr},
                          {"eval_every", dt::TrainingDefaults::eval_every(steps)}}},
                        {"output_dir", m_outDir.toStdString()}};
    for (const QString& m : methods) j["methods"].push_back(m.toStdString());
    dt::CompareSpec spec;
    try {
        spec = dt::CompareSpec::from_json(j, "workbench", "");
    } catch (const dt::Error& e) {
        m_lastError = QString::fromStdString(e.what());
        return false;
    }
    m_view->clear(tr("accuracy"));
    m_control.cancel = false;
    auto* worker = new ComparisonWorker(spec, &m_control);
    connect(worker, &ComparisonWorker::status, this, [this](const QString& s) {
        m_status->setText(s);
        Q_EMIT logLine(s);
    });
    connect(worker, &ComparisonWorker::point, this,
            [this](const QString& m, qint64 step, double t, double v) { m_view->addCurvePoint(m, step, t, v); });
    connect(worker, &ComparisonWorker::method, this,
            [this](const QString& m, qint64 n, double v, const QString& metric, const QVector<double>& steps, const QVector<double>& secs,
                   const QVector<double>& values) {
        m_view->setCurve(m, steps, secs, values);
        m_view->setMethodResult(m, n, v);
        Q_EMIT logLine(tr("%1: %2 trainable parameters, %3 %4").arg(m).arg(n).arg(metric).arg(v, 0, 'f', 4));
    });
    auto done = [this] {
        if (gui::endWorker(m_thread)) setRunning(false);
    };
    connect(worker, &ComparisonWorker::finished, this, [this, done] {
        done();
        const bool stopped = m_control.cancel.load();
        m_status->setText(stopped ? tr("Stopped; Compare Methods continues with the methods left") : tr("Done: %1").arg(m_outDir));
        Q_EMIT finished(stopped);
    });
    connect(worker, &ComparisonWorker::failed, this, [this, done](const QString& msg) {
        done();
        m_lastError = msg;
        m_status->setText(msg);
        Q_EMIT failed(msg);
    });
    m_thread = gui::startWorker(this, worker, [worker] { worker->run(); });
    setRunning(true);
    Q_EMIT logLine(tr("Comparing %1 on %2 into %3").arg(methods.join(QStringLiteral(", ")), QFileInfo(taskFile).dir().dirName(), m_outDir));
    return true;
}

void CompareTab::stop() { m_control.cancel = true; }

void CompareTab::setRunning(bool running) {
    m_run->setEnabled(!running);
    m_stop->setEnabled(running);
}
