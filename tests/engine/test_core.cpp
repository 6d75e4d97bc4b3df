// Core: thread configuration and error formatting.
#include "test_registry.h"

#include "core/error.h"
#include "core/threads.h"

#include <ATen/Parallel.h>

#include <QTest>

class TestCore : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void threadsFromRequestEnvOrCores() {
        const QByteArray saved = qgetenv("DELTATUNE_THREADS");
        qunsetenv("DELTATUNE_THREADS");
        QCOMPARE(dt::configure_threads(3), 3);
        QCOMPARE(at::get_num_threads(), 3);
        qputenv("DELTATUNE_THREADS", "2");
        QCOMPARE(dt::configure_threads(), 2);
        QCOMPARE(at::get_num_threads(), 2);
        QCOMPARE(dt::configure_threads(1), 1);  // an explicit request beats the variable
        qunsetenv("DELTATUNE_THREADS");
        QCOMPARE(dt::configure_threads(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
        qputenv("DELTATUNE_THREADS", "many");
        try {
            dt::configure_threads();
            QFAIL("accepted DELTATUNE_THREADS=many");
        } catch (const dt::Error& e) {
            QVERIFY(QString::fromStdString(e.what()).contains("DELTATUNE_THREADS"));
        }
        if (saved.isNull()) qunsetenv("DELTATUNE_THREADS");
        else qputenv("DELTATUNE_THREADS", saved);
    }

    void errorFormat() {
        dt::Error e("bad shape", "model.safetensors: tensor 'w'", "check config.json");
        QCOMPARE(QString::fromStdString(e.what()), QStringLiteral("model.safetensors: tensor 'w': bad shape (check config.json)"));
        QCOMPARE(QString::fromStdString(e.within("/m").what()),
                 QStringLiteral("/m: model.safetensors: tensor 'w': bad shape (check config.json)"));
    }
};

DT_REGISTER_TEST(TestCore);
#include "test_core.moc"
