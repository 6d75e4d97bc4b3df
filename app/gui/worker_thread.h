// The thread plumbing every background job of the GUI shares (training, experiments, comparisons,
// export, import): a worker object moved to its own QThread, started with `entry`, and a thread that
// is quit, joined and deleted once the worker reports the end. runJob() does all of it for a plain
// function.
#pragma once

#include <QObject>
#include <QString>
#include <QThread>

#include <exception>

#include <functional>

namespace gui {

// Moves `worker` to a new thread owned by `owner`, calls `entry` on that thread when it starts, and
// deletes the worker when the thread ends. Returns the running thread.
inline QThread* startWorker(QObject* owner, QObject* worker, std::function<void()> entry) {
    auto* thread = new QThread(owner);
    worker->moveToThread(thread);
    QObject::connect(thread, &QThread::started, worker, std::move(entry));
    QObject::connect(thread, &QThread::finished, worker, &QObject::deleteLater);
    thread->start();
    return thread;
}

// Quits and joins `thread` and schedules its deletion; false when there was none.
inline bool endWorker(QThread*& thread) {
    if (!thread) return false;
    thread->quit();
    thread->wait();
    thread->deleteLater();
    thread = nullptr;
    return true;
}

// The worker of runJob(): calls the job and reports done(error), empty on success; every exception
// stops at the thread boundary.
class JobWorker : public QObject {
    Q_OBJECT
public:
    explicit JobWorker(std::function<void()> job) : m_job(std::move(job)) {}
    void run() {
        QString error;
        try {
            m_job();
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what());
        } catch (...) {
            error = QStringLiteral("Internal error: an unknown exception");
        }
        Q_EMIT done(error);
    }

Q_SIGNALS:
    void done(QString error);

private:
    std::function<void()> m_job;
};

// Runs `job` on a new thread owned by `owner` and kept in `thread` (which must outlive the job, e.g.
// a member of owner); then, on owner's thread with the thread joined, `finished(error)` (empty:
// success). False, starting nothing, while `thread` still holds a job. The owner's destructor waits
// with endWorker(thread).
inline bool runJob(QObject* owner, QThread*& thread, std::function<void()> job, std::function<void(const QString&)> finished) {
    if (thread) return false;
    auto* worker = new JobWorker(std::move(job));
    QObject::connect(worker, &JobWorker::done, owner, [&thread, finished = std::move(finished)](const QString& error) {
        endWorker(thread);
        finished(error);
    });
    thread = startWorker(owner, worker, [worker] { worker->run(); });
    return true;
}

}  // namespace gui
