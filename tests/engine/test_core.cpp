// Core: thread configuration and error formatting.
#include "test_registry.h"

#include "core/autocast.h"
#include "core/devices.h"
#include "core/error.h"
#include "core/threads.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <QTest>

class TestCore : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void deviceProbeAndParsing() {
        const dt::DeviceProbe p = dt::probe_devices();
        QCOMPARE(p.devices(), dt::available_devices());
        QCOMPARE(p.devices().front(), std::string("cpu"));
        QCOMPARE(p.threads, at::get_num_threads());
        QVERIFY(!p.blas.empty());
        QCOMPARE(p.torch_version, std::string(TORCH_VERSION));
        QCOMPARE(p.gpus.empty(), !p.cuda_reason.empty());  // a reason exactly when no GPU is offered
        for (const auto& d : p.devices()) QCOMPARE(dt::parse_device(d).str(), d);
        QCOMPARE(dt::parse_device("cpu"), c10::Device(c10::kCPU));
        for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda0", "CPU"}) {
            try {
                dt::parse_device(bad);
                QFAIL(bad);
            } catch (const dt::Error& e) {
                QVERIFY2(std::string(e.what()).find("unknown device") != std::string::npos, e.what());
            }
        }
        if (p.gpus.empty()) {
            try {
                dt::parse_device("cuda:0");
                QFAIL("cuda:0 accepted without a GPU");
            } catch (const dt::Error& e) {
                QVERIFY2(std::string(e.what()).find(p.cuda_reason) != std::string::npos, e.what());
            }
            QCOMPARE(dt::device_memory_peak(c10::Device(c10::kCPU)), std::int64_t(-1));
        }
    }

    void autocastScopeRestoresState() {
        QVERIFY(!dt::autocast_enabled(c10::DeviceType::CPU));
        {
            dt::AutocastScope on("bf16", c10::DeviceType::CPU);
            QVERIFY(dt::autocast_enabled(c10::DeviceType::CPU));
            const at::Tensor a = at::ones({4, 4}), b = at::ones({4, 4});
            QCOMPARE(at::matmul(a, b).scalar_type(), at::kBFloat16);
            {
                dt::AutocastScope off("fp32", c10::DeviceType::CPU);  // fp32 leaves the state alone
                QVERIFY(dt::autocast_enabled(c10::DeviceType::CPU));
            }
        }
        QVERIFY(!dt::autocast_enabled(c10::DeviceType::CPU));
        QCOMPARE(at::matmul(at::ones({4, 4}), at::ones({4, 4})).scalar_type(), at::kFloat);
    }

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
