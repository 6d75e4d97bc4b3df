#include "experiment_controller.h"

#include "core/error.h"

#include "worker_thread.h"

#include <QThread>

namespace {
QStringList toList(const std::vector<std::string>& v) {
    QStringList out;
    for (const auto& s : v) out << QString::fromStdString(s);
    return out;
}
}  // namespace

void ExperimentWorker::run() {
    try {
        m_job(this);
        Q_EMIT finished();
    } catch (const dt::Error& e) {
        Q_EMIT failed(QString::fromStdString(e.what()));
    } catch (const std::exception& e) {
        Q_EMIT failed(tr("Internal error: %1").arg(QString::fromUtf8(e.what())));
    }
}

void ExperimentWorker::on_status(const std::string& s) { Q_EMIT status(QString::fromStdString(s)); }

void ExperimentWorker::on_matrix(const dt::ResultMatrix& m) {
    Q_EMIT matrix(toList(m.rows), toList(m.cols), toList(m.row_categories), toList(m.col_categories), QString::fromStdString(m.metric));
}

void ExperimentWorker::on_cell(std::size_t row, std::size_t col, double value, const std::string& note) {
    Q_EMIT cell(static_cast<int>(row), static_cast<int>(col), value, QString::fromStdString(note));
}

void ExperimentWorker::on_train_step(const std::string& task, const dt::StepEvent& e) {
    if (e.step % 5 == 0) Q_EMIT trainStep(QString::fromStdString(task), e.step, e.elapsed_s);  // the tab words the progress
}

ExperimentController::ExperimentController(QObject* parent) : QObject(parent) {}

ExperimentController::~ExperimentController() {
    if (m_thread) {
        m_control.cancel = true;
        m_thread->quit();
        m_thread->wait();
    }
}

bool ExperimentController::startTransfer(const dt::TransferSpec& spec) {
    return start([spec, this](dt::ExperimentObserver* obs) { dt::run_transfer(spec, obs, &m_control); });
}

bool ExperimentController::startAblation(const QString& runSpec, const QString& checkpoint, const QString& outDir) {
    const std::string s = runSpec.toStdString(), c = checkpoint.toStdString(), o = outDir.toStdString();
    return start([s, c, o, this](dt::ExperimentObserver* obs) { dt::run_layer_ablation(s, c, o, 0, obs, &m_control); });
}

void ExperimentController::stop() { m_control.cancel = true; }

bool ExperimentController::start(std::function<void(dt::ExperimentObserver*)> job) {
    if (m_thread) return false;
    m_control.cancel = false;
    auto* worker = new ExperimentWorker(std::move(job));
    connect(worker, &ExperimentWorker::matrix, this, &ExperimentController::matrix);
    connect(worker, &ExperimentWorker::cell, this, &ExperimentController::cell);
    connect(worker, &ExperimentWorker::status, this, &ExperimentController::status);
    connect(worker, &ExperimentWorker::trainStep, this, &ExperimentController::trainStep);
    auto done = [this] {
        if (gui::endWorker(m_thread)) Q_EMIT runningChanged(false);
    };
    connect(worker, &ExperimentWorker::finished, this, [this, done] {
        done();
        Q_EMIT finished(m_control.cancel.load());
    });
    connect(worker, &ExperimentWorker::failed, this, [this, done](const QString& m) {
        done();
        Q_EMIT failed(m);
    });
    m_thread = gui::startWorker(this, worker, [worker] { worker->run(); });
    Q_EMIT runningChanged(true);
    return true;
}
