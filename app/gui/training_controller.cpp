#include "training_controller.h"

#include "core/error.h"
#include "experiments/inspection.h"
#include "models/model.h"
#include "train/run.h"
#include "train/run_folder.h"

#include <torch/torch.h>

#include "worker_thread.h"

#include <QCoreApplication>
#include <QFileInfo>
#include <QProcess>
#include <QStandardPaths>
#include <QThread>

#include <nlohmann/json.hpp>

#include <csignal>

TrainingWorker::TrainingWorker(QString specPath, QString runDir, dt::TrainControl* control)
    : m_spec(std::move(specPath)), m_runDir(std::move(runDir)), m_control(control) {}

void TrainingWorker::run() {
    try {
        const std::string dir = m_runDir.toStdString();
        const bool resuming = m_spec.isEmpty();
        dt::TrainRunOptions options;
        if (resuming) {
            const std::string name = dt::run_folder::latest_name(dir);
            if (name.empty()) throw dt::Error("no checkpoint to resume from", dt::run_folder::latest_path(dir), "start the run again");
            if (name == dt::run_folder::kFinal) throw dt::Error("the run already finished", dir);
            options.resume_from = dt::run_folder::checkpoint_path(dir, name);
        } else if (dt::run_folder::holds_run(dir)) {
            throw dt::Error("the run folder already holds a run", dir, "choose another folder");
        }
        dt::RunSpec spec = dt::RunSpec::load(resuming ? dt::run_folder::spec_path(dir) : m_spec.toStdString());
        Q_EMIT status(resuming ? tr("Resuming %1 from %2").arg(m_runDir, QString::fromStdString(options.resume_from))
                               : tr("Loading %1").arg(QString::fromStdString(spec.model)));
        dt::PreparedRun p = dt::prepare_run(spec);
        if (!resuming) dt::create_run_folder(dir, p.spec);
        m_maxSteps = p.spec.training.max_steps;
        m_model = p.model.model.get();
        m_deltas = &p.deltas;
        m_start = dt::snapshot_trainable(*p.model.model);
        Q_EMIT status(QString::fromStdString(p.deltas.accounting(*p.model.model).summary()));
        // Inspection about 50 times per run (at least every 5 steps): gradient norms per tensor
        // from the trainer, delta magnitudes computed here between steps.
        options.grad_norms_every = std::max<std::int64_t>(5, m_maxSteps / 50);
        const dt::TrainResult res = dt::train_run(p, dir, this, m_control, options);
        m_model = nullptr;
        m_deltas = nullptr;
        Q_EMIT finished(QString::fromStdString(res.status), res.steps);
    } catch (const dt::Error& e) {
        m_model = nullptr;
        m_deltas = nullptr;
        Q_EMIT failed(QString::fromStdString(e.what()));
    } catch (const std::exception& e) {
        m_model = nullptr;
        m_deltas = nullptr;
        Q_EMIT failed(tr("Internal error: %1").arg(QString::fromUtf8(e.what())));
    }
}

namespace {
void emitGrid(TrainingWorker* w, qint64 step, const dt::ResultMatrix& g,
              void (TrainingWorker::*sig)(qint64, QString, QStringList, QStringList, QVector<double>)) {
    QStringList rows, cols;
    for (const auto& r : g.rows) rows << QString::fromStdString(r);
    for (const auto& c : g.cols) cols << QString::fromStdString(c);
    QVector<double> v;
    for (const auto& row : g.value) v += QVector<double>(row.begin(), row.end());
    Q_EMIT(w->*sig)(step, QString::fromStdString(g.kind), rows, cols, v);
}
}  // namespace

void TrainingWorker::on_step(const dt::StepEvent& e) {
    Q_EMIT step(e.step, m_maxSteps, e.loss, e.lr, e.tokens_per_s, e.elapsed_s);
    if (m_deltas)  // AdaLoRA: the live rank allocation (read here, on the training thread)
        for (const auto& meth : m_deltas->methods()) {
            const nlohmann::json st = meth->status();
            if (!st.is_object() || !st.contains("ranks") || st["ranks"] == m_lastRanks) continue;
            m_lastRanks = st["ranks"];
            QVariantMap r;
            for (const auto& [path, kept] : st["ranks"].items()) r.insert(QString::fromStdString(path), kept.get<int>());
            Q_EMIT ranks(e.step, r);
        }
    if (e.grad_norms.empty() || !m_model) return;
    std::vector<dt::NamedValue> grads;
    for (const auto& [name, n] : e.grad_norms) grads.push_back({name, n});
    const std::int64_t layers = m_model->num_layers();
    emitGrid(this, e.step, dt::layer_module_grid(grads, layers, "grad_norm", "gradient norm"), &TrainingWorker::inspected);
    emitGrid(this, e.step, dt::layer_module_grid(dt::delta_magnitudes(*m_model, *m_deltas, m_start), layers, "delta_magnitude", "relative change"),
             &TrainingWorker::inspected);
}

void TrainingWorker::on_eval(const dt::EvalEvent& e) {
    QVariantMap m;
    for (const auto& [k, v] : e.metrics) m.insert(QString::fromStdString(k), v);
    Q_EMIT evaluated(e.step, m);
    if (!e.confusion.empty()) Q_EMIT confusion(e.step, e.confusion);
}

void TrainingWorker::on_status(const std::string& s) { Q_EMIT status(QString::fromStdString(s)); }
void TrainingWorker::on_error(const std::string& s) { Q_EMIT status(QString::fromStdString(s)); }

TrainingController::TrainingController(QObject* parent) : QObject(parent) { qRegisterMetaType<dt::ConfusionMatrix>(); }

bool TrainingController::resume(const QString& runDir) { return start(QString(), runDir); }

void TrainingController::inspectProcessRun(const QString& runDir, qint64 step) {
    auto grid = std::make_shared<dt::ResultMatrix>();
    gui::runJob(this, m_inspectThread, [grid, dir = runDir.toStdString()] { *grid = dt::inspect_run_delta(dir, ""); },
                [this, grid, step](const QString& error) {
                    if (!error.isEmpty()) {
                        Q_EMIT status(tr("Delta tab: the run's delta could not be read: %1").arg(error));
                        return;
                    }
                    QStringList rows, cols;
                    for (const auto& r : grid->rows) rows << QString::fromStdString(r);
                    for (const auto& c : grid->cols) cols << QString::fromStdString(c);
                    QVector<double> v;
                    for (const auto& row : grid->value) v += QVector<double>(row.begin(), row.end());
                    Q_EMIT inspected(step, QString::fromStdString(grid->kind), rows, cols, v);
                });
}

TrainingController::~TrainingController() {
    gui::endWorker(m_inspectThread);  // an inspection of a finished run: a model load, not cancellable
    if (m_proc) {  // the launcher stops its workers on SIGTERM
        m_proc->disconnect(this);
        m_proc->terminate();
        if (!m_proc->waitForFinished(15000)) m_proc->kill();
        m_proc->waitForFinished();
    }
    if (m_thread) {
        m_control.cancel = true;
        m_control.pause = false;
        m_thread->quit();
        m_thread->wait();
    }
}

bool TrainingController::start(const QString& specPath, const QString& runDir) {
    if (isRunning()) return false;
    if (m_processes > 1) return startProcesses(specPath, runDir);
    m_control.cancel = false;
    m_control.pause = false;
    auto* worker = new TrainingWorker(specPath, runDir, &m_control);
    connect(worker, &TrainingWorker::step, this, &TrainingController::step);
    connect(worker, &TrainingWorker::evaluated, this, &TrainingController::evaluated);
    connect(worker, &TrainingWorker::confusion, this, &TrainingController::confusion);
    connect(worker, &TrainingWorker::inspected, this, &TrainingController::inspected);
    connect(worker, &TrainingWorker::ranks, this, &TrainingController::ranks);
    connect(worker, &TrainingWorker::status, this, &TrainingController::status);
    auto done = [this] {
        if (gui::endWorker(m_thread)) Q_EMIT runningChanged(false);
    };
    connect(worker, &TrainingWorker::finished, this, [this, done](const QString& s, qint64 n) {
        done();
        Q_EMIT finished(s, n);
    });
    connect(worker, &TrainingWorker::failed, this, [this, done](const QString& m) {
        done();
        Q_EMIT failed(m);
    });
    m_thread = gui::startWorker(this, worker, [worker] { worker->run(); });
    Q_EMIT runningChanged(true);
    return true;
}

void TrainingController::setPaused(bool paused) { m_control.pause = paused; }

void TrainingController::stop() {
    m_control.pause = false;
    m_control.cancel = true;
    if (m_proc && m_proc->processId() > 0) ::kill(static_cast<pid_t>(m_proc->processId()), SIGINT);  // the launcher passes it on
}

QString TrainingController::cliPath() const {
    if (!m_cli.isEmpty()) return m_cli;
    const QString beside = QCoreApplication::applicationDirPath() + QStringLiteral("/deltatune");
    if (QFileInfo(beside).isExecutable()) return beside;
    return QStandardPaths::findExecutable(QStringLiteral("deltatune"));
}

bool TrainingController::startProcesses(const QString& specPath, const QString& runDir) {
    const QString cli = cliPath();
    if (cli.isEmpty()) {
        Q_EMIT failed(tr("Several processes run through the deltatune command, which is neither beside the workbench nor on PATH"));
        return false;
    }
    try {  // the run's length, for the progress; the CLI checks everything else
        const std::string spec = specPath.isEmpty() ? dt::run_folder::spec_path(runDir.toStdString()) : specPath.toStdString();
        m_procMaxSteps = dt::RunSpec::load(spec).training.max_steps;
    } catch (const dt::Error& e) {
        Q_EMIT failed(QString::fromStdString(e.what()));
        return false;
    }
    const QString n = QString::number(m_processes);
    const QStringList args = specPath.isEmpty()
                                 ? QStringList{QStringLiteral("resume"), runDir, QStringLiteral("--json"), QStringLiteral("--nproc"), n}
                                 : QStringList{QStringLiteral("train"), QStringLiteral("--spec"), specPath, QStringLiteral("--out"), runDir,
                                               QStringLiteral("--json"), QStringLiteral("--nproc"), n};
    m_proc = new QProcess(this);
    m_outBuffer.clear();
    m_errTail.clear();
    m_doneStatus.clear();
    m_doneSteps = 0;
    connect(m_proc, &QProcess::readyReadStandardOutput, this, &TrainingController::readProcessOutput);
    connect(m_proc, &QProcess::readyReadStandardError, this, [this] {
        for (const QString& line : QString::fromUtf8(m_proc->readAllStandardError()).split('\n', Qt::SkipEmptyParts)) {
            if (line.startsWith(QLatin1String("error: ")) || line.contains(QLatin1String("] error: "))) m_errTail = line;
            else if (line.startsWith(QLatin1String("[launcher]")) || line.contains(QLatin1String("joined gloo"))) Q_EMIT status(line);
        }
    });
    connect(m_proc, &QProcess::finished, this, [this, runDir](int code, QProcess::ExitStatus how) {
        readProcessOutput();
        m_proc->deleteLater();
        m_proc = nullptr;
        Q_EMIT runningChanged(false);
        if (how == QProcess::NormalExit && code == 0) {
            Q_EMIT finished(m_doneStatus.isEmpty() ? QStringLiteral("finished") : m_doneStatus, m_doneSteps);
            inspectProcessRun(runDir, m_doneSteps);
        } else {
            Q_EMIT failed(m_errTail.isEmpty() ? tr("The training processes ended with exit code %1").arg(code) : m_errTail);
        }
    });
    m_proc->start(cli, args);
    Q_EMIT runningChanged(true);
    Q_EMIT status(tr("Starting %1 processes: %2 %3").arg(m_processes).arg(cli, args.join(QLatin1Char(' '))));
    return true;
}

// Rank 0's --json lines: step and eval events as a thread-run's signals, then the summary.
void TrainingController::readProcessOutput() {
    if (!m_proc) return;
    m_outBuffer += m_proc->readAllStandardOutput();
    int nl;
    while ((nl = m_outBuffer.indexOf('\n')) >= 0) {
        const QByteArray line = m_outBuffer.left(nl);
        m_outBuffer.remove(0, nl + 1);
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line.toStdString());
        } catch (const std::exception&) {
            continue;  // not an event line
        }
        if (!j.is_object() || !j.contains("event")) continue;
        try {
            const std::string kind = j["event"].get<std::string>();
            if (kind == "step") {
                const dt::StepEvent e = dt::StepEvent::from_json(j);
                Q_EMIT step(e.step, m_procMaxSteps, e.loss, e.lr, e.tokens_per_s, e.elapsed_s);
            } else if (kind == "eval") {
                const dt::EvalEvent e = dt::EvalEvent::from_json(j);
                QVariantMap m;
                for (const auto& [k, v] : e.metrics) m.insert(QString::fromStdString(k), v);
                Q_EMIT evaluated(e.step, m);
                if (!e.confusion.empty()) Q_EMIT confusion(e.step, e.confusion);
            } else if (kind == "done") {
                m_doneStatus = QString::fromStdString(j.value("status", std::string("finished")));
                m_doneSteps = j.value("steps", static_cast<qint64>(0));
                if (j.contains("allreduce_ms_per_step"))
                    Q_EMIT status(tr("%1 processes: all-reduce of %2 KiB took %3 ms a step")
                                      .arg(j.value("world_size", 0))
                                      .arg(j.value("allreduce_bytes_per_step", 0.0) / 1024.0, 0, 'f', 1)
                                      .arg(j.value("allreduce_ms_per_step", 0.0), 0, 'f', 2));
            }
        } catch (const std::exception&) {
        }
    }
}
