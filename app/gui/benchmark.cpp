#include "benchmark.h"

#include "main_window.h"
#include "model_controller.h"
#include "training_tab.h"
#include "transfer_tab.h"
#include "workbench.h"
#include "model_panel.h"
#include "module_tree_model.h"
#include "training_controller.h"
#include "training_plot.h"

#include "train/defaults.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QTemporaryDir>
#include <QTimer>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace {

double quantile(std::vector<double> v, double q) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(std::min<double>(static_cast<double>(v.size() - 1), std::floor(q * static_cast<double>(v.size()))))];
}

}  // namespace

int runWorkbenchBenchmark(MainWindow& w) {
    // 1. Tick every Linear of a BERT-base-sized tree; the time until the budget shows the new count.
    if (!w.openModel(QStringLiteral("bert-base-shape"))) {
        std::fprintf(stderr, "error: %s\n", qPrintable(w.lastError()));
        return 2;
    }
    ModuleTreeModel* tree = w.modelPanel()->model();
    QStringList linear;
    for (const auto& n : tree->tree().nodes())
        if (n.is_linear() && n.path.find("encoder") != std::string::npos) linear << QString::fromStdString(n.path);
    std::vector<double> tick;
    for (int rep = 0; rep < 7; ++rep) {
        tree->setCheckedPaths({});
        QCoreApplication::processEvents();
        const QString before = w.models()->budgetText();
        QElapsedTimer t;
        t.start();
        tree->setCheckedPaths(linear);
        while (w.models()->budgetText() == before) QCoreApplication::processEvents();
        tick.push_back(static_cast<double>(t.nsecsElapsed()) / 1e6);
    }
    std::printf("{\"benchmark\":\"tick_all_linear_budget\",\"model\":\"bert-base-shape\",\"modules\":%lld,\"budget\":\"%s\",\"median_ms\":%.1f,\"max_ms\":%.1f}\n",
                static_cast<long long>(linear.size()), qPrintable(w.models()->budgetText()), quantile(tick, 0.5), quantile(tick, 1.0));
    std::fflush(stdout);

    // 2. Repaint of a loss curve with a million points.
    {
        TrainingPlot plot;
        plot.resize(900, 500);
        plot.show();
        for (int i = 1; i <= 1000000; ++i) plot.addStep(i, 2.0 / std::sqrt(static_cast<double>(i)) + 0.01 * (i % 7), 1e-3, 1000.0);
        std::vector<double> ms;
        for (int rep = 0; rep < 7; ++rep) ms.push_back(plot.replotMilliseconds());
        std::printf("{\"benchmark\":\"replot_1m_points\",\"points\":1000000,\"median_ms\":%.1f,\"max_ms\":%.1f}\n", quantile(ms, 0.5), quantile(ms, 1.0));
        std::fflush(stdout);
    }

    // 3. Main-thread event latency while the demo model trains in the worker thread: a 10 ms timer's
    // lateness, measured over the whole run.
    const QStringList tasks = Workbench::demoTasks();
    if (Workbench::demoModel().isEmpty() || tasks.isEmpty() || !w.openModel(Workbench::demoModel())) {
        std::fprintf(stderr, "error: the demo model is missing; no latency measurement\n");
        return 1;
    }
    QTemporaryDir dir;
    std::vector<double> late;
    QElapsedTimer clock;
    QTimer tickTimer;
    tickTimer.setTimerType(Qt::PreciseTimer);
    tickTimer.setInterval(10);
    qint64 last = 0;
    QObject::connect(&tickTimer, &QTimer::timeout, [&] {
        const qint64 now = clock.nsecsElapsed();
        if (last) late.push_back(std::max(0.0, static_cast<double>(now - last) / 1e6 - 10.0));
        last = now;
    });
    QEventLoop loop;
    QObject::connect(w.trainingTab()->controller(), &TrainingController::finished, &loop, &QEventLoop::quit);
    QObject::connect(w.trainingTab()->controller(), &TrainingController::failed, &loop, &QEventLoop::quit);
    if (!w.trainingTab()->startTaskTraining(tasks.first(), 400, dt::TrainingDefaults::lr, dir.filePath(QStringLiteral("run")))) return 1;
    clock.start();
    tickTimer.start();
    QElapsedTimer wall;
    wall.start();
    loop.exec();
    tickTimer.stop();
    std::printf("{\"benchmark\":\"event_latency_while_training\",\"steps\":400,\"seconds\":%.1f,\"samples\":%zu,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f}\n",
                static_cast<double>(wall.elapsed()) / 1000.0, late.size(), quantile(late, 0.5), quantile(late, 0.99), quantile(late, 1.0));
    return 0;
}
