// MethodPanel builds its form from the engine's option declarations: every in-form option has a
// widget with the declared default, range and help; the spec it produces parses with the engine's
// resolve_options and round-trips (spec -> resolved options -> same values); unset options are left
// to the engine.
#include "test_registry.h"

#include "method_panel.h"

#include "delta/method.h"

#include <nlohmann/json.hpp>

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTest>

namespace {

QWidget* field(MethodPanel& p, const std::string& name) { return p.findChild<QWidget*>(QString::fromStdString(name)); }

}  // namespace

class TestMethodPanel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void formFollowsTheDeclarations() {
        MethodPanel p;
        for (const auto& m : dt::method_table()) {
            p.setMethod(QString::fromStdString(m.name));
            QCOMPARE(p.method().toStdString(), m.name);
            QCOMPARE(p.usesTargets(), m.has_option("target_modules"));
            const nlohmann::json spec = p.spec();
            // What the panel writes is what the engine accepts, and means the declared defaults.
            const nlohmann::json resolved = dt::resolve_options(m.name, spec, "panel");
            for (const auto& o : m.options) {
                QWidget* w = field(p, o.name);
                QCOMPARE(w != nullptr, o.in_form);
                if (!w) continue;
                QVERIFY2(w->toolTip().startsWith(QString::fromStdString(o.help)), o.name.c_str());
                if (o.default_value.is_null()) {
                    QVERIFY2(!spec.contains(o.name), o.name.c_str());  // left to the engine (auto / off / all)
                    continue;
                }
                QVERIFY2(spec.contains(o.name), o.name.c_str());
                QVERIFY2(resolved[o.name] == spec[o.name], o.name.c_str());  // the engine reads back what the panel wrote
                if (o.kind == "int" || o.kind == "number") QCOMPARE(spec[o.name].get<double>(), o.default_value.get<double>());
                else QCOMPARE(spec[o.name], o.default_value);
                if (auto* s = qobject_cast<QSpinBox*>(w)) QCOMPARE(static_cast<double>(s->maximum()), std::min(o.max, 1e9));
                if (auto* d = qobject_cast<QDoubleSpinBox*>(w)) QCOMPARE(d->maximum(), o.max);
            }
        }
    }

    void loraAlphaDefaultIsPefts() {
        // PEFT's lora_alpha is 8 whatever r is; the engine, the panel and a CLI spec agree.
        MethodPanel p;
        p.setMethod(QStringLiteral("lora"));
        auto* r = qobject_cast<QSpinBox*>(field(p, "r"));
        QVERIFY(r);
        r->setValue(16);
        QCOMPARE(p.spec()["r"].get<int>(), 16);
        QCOMPARE(p.spec()["lora_alpha"].get<double>(), 8.0);
        const nlohmann::json cli = dt::resolve_options("lora", {{"method", "lora"}, {"r", 16}}, "cli");
        QCOMPARE(cli["lora_alpha"].get<double>(), 8.0);
        QCOMPARE(cli["r"].get<int>(), 16);
    }

    void eachMethodKeepsItsSettings() {
        // LoRA r 17 -> adapter (size 12) -> LoRA shows r 17 again, and the adapter its size 12;
        // a method never shown starts from its declared defaults.
        MethodPanel p;
        p.setMethod(QStringLiteral("lora"));
        qobject_cast<QSpinBox*>(field(p, "r"))->setValue(17);
        qobject_cast<QCheckBox*>(field(p, "use_rslora"))->setChecked(true);
        p.setMethod(QStringLiteral("adapter"));
        QCOMPARE(p.spec()["method"], nlohmann::json("adapter"));
        qobject_cast<QSpinBox*>(field(p, "size"))->setValue(12);
        p.setMethod(QStringLiteral("lora"));
        QCOMPARE(p.spec()["r"].get<int>(), 17);
        QCOMPARE(p.spec()["use_rslora"].get<bool>(), true);
        p.setMethod(QStringLiteral("adapter"));
        QCOMPARE(p.spec()["size"].get<int>(), 12);
        p.setMethod(QStringLiteral("loha"));
        QCOMPARE(p.spec()["r"].get<int>(), 8);  // LoHa's own default, not LoRA's 17
    }

    void editsReachTheSpecAndRoundTrip() {
        MethodPanel p;
        QSignalSpy changed(&p, &MethodPanel::specChanged);
        p.setMethod(QStringLiteral("adapter"));
        QVERIFY(!p.spec().contains("size"));  // auto: hidden size / reduction_factor
        auto* size = qobject_cast<QSpinBox*>(field(p, "size"));
        QVERIFY(size);
        QCOMPARE(size->text(), QStringLiteral("auto"));
        size->setValue(32);
        auto* placement = qobject_cast<QComboBox*>(field(p, "placement"));
        placement->setCurrentIndex(placement->findText(QStringLiteral("parallel")));
        nlohmann::json spec = p.spec();
        QCOMPARE(spec["size"].get<int>(), 32);
        QCOMPARE(spec["placement"].get<std::string>(), std::string("parallel"));
        QVERIFY(changed.count() >= 3);
        const nlohmann::json o = dt::resolve_options("adapter", spec, "panel");
        for (auto it = spec.begin(); it != spec.end(); ++it)
            if (it.key() != "method") QCOMPARE(o[it.key()], it.value());

        p.setMethod(QStringLiteral("bitfit"));
        QVERIFY(!p.spec().contains("groups"));  // all biases
        auto* groups = qobject_cast<QComboBox*>(field(p, "groups"));
        groups->setCurrentIndex(groups->findText(QStringLiteral("value")));
        QCOMPARE(p.spec()["groups"], nlohmann::json::array({"value"}));
        QCOMPARE(dt::resolve_options("bitfit", p.spec(), "panel")["groups"], nlohmann::json::array({"value"}));
    }

    void declarationsRejectWhatThePanelCannotWrite() {
        // The declared ranges and choices bind JSON specs too, with the field named.
        const auto fails = [](const nlohmann::json& spec, const char* needle) {
            try {
                dt::resolve_options(spec["method"].get<std::string>(), spec, "spec");
            } catch (const std::exception& e) {
                return QString::fromUtf8(e.what()).contains(QLatin1String(needle));
            }
            return false;
        };
        QVERIFY(fails({{"method", "lora"}, {"r", 0}}, "'r' must be at least 1"));
        QVERIFY(fails({{"method", "lora"}, {"r", 5000}}, "'r' must be at most 4096"));
        QVERIFY(fails({{"method", "lora"}, {"lora_dropout", 1.5}}, "lora_dropout"));
        QVERIFY(fails({{"method", "adapter"}, {"placement", "sideways"}}, "placement"));
        QVERIFY(fails({{"method", "bitfit"}, {"groups", {"queries"}}}, "queries"));
        QVERIFY(fails({{"method", "prompt"}, {"num_virtual_tokens", 1000}}, "num_virtual_tokens"));
    }
};

DT_REGISTER_TEST(TestMethodPanel);
#include "test_method_panel.moc"
