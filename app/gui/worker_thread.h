// The thread plumbing the GUI's controllers share: a worker object moved to its own QThread, started
// with `entry`, and a thread that is quit, joined and deleted once the worker reports the end.
#pragma once

#include <QObject>
#include <QThread>

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

}  // namespace gui
