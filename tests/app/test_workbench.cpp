// The workbench window: opens the built-in model and a HF folder, survives bad input, and renders
// (a PNG is written next to the tests for a person to look at).
#include "test_registry.h"

#include "main_window.h"
#include "method_panel.h"
#include "model_panel.h"
#include "module_tree_model.h"

#include <QFormLayout>
#include <QSpinBox>
#include <QTest>
#include <QTreeView>

class TestWorkbench : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void opensModelsAndKeepsRunningOnBadInput() {
        MainWindow w;
        QVERIFY(w.openModel(QStringLiteral("tiny-bert")));
        QCOMPARE(QString::fromStdString(w.modelPanel()->model()->tree().architecture()), QStringLiteral("BertForMaskedLM"));
        QVERIFY(!w.openModel(QStringLiteral("/no/such/model")));
        QVERIFY(w.lastError().contains("/no/such/model"));
        // the previous model is still there
        QCOMPARE(QString::fromStdString(w.modelPanel()->model()->tree().architecture()), QStringLiteral("BertForMaskedLM"));
        QVERIFY(w.openModel(dttest::dataDir() + "/hf/roberta-mlm"));
        QCOMPARE(QString::fromStdString(w.modelPanel()->model()->tree().architecture()), QStringLiteral("RobertaForMaskedLM"));
        w.modelPanel()->model()->setCheckedPaths({"roberta.encoder.layer.0.attention.self.query"});
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QVERIFY(w.grab().save(QStringLiteral(DT_BUILD_DIR "/workbench.png")));
    }

    void budgetFollowsTicksAndMethod() {
        MainWindow w;
        QVERIFY(w.openModel(QStringLiteral("tiny-bert")));
        w.methodPanel()->setMethod(QStringLiteral("lora"));
        QStringList queries;
        for (int l = 0; l < 4; ++l) queries << QStringLiteral("bert.encoder.layer.%1.attention.self.query").arg(l);
        w.modelPanel()->model()->setCheckedPaths(queries);
        QTRY_COMPARE(w.budgetText(), QStringLiteral("4096 trainable"));  // 4 x r (64 + 64), r = 8
        w.modelPanel()->model()->setCheckedPaths({});
        QTRY_COMPARE(w.budgetText(), QStringLiteral("8192 trainable"));  // defaults: query and value
        w.methodPanel()->setMethod(QStringLiteral("bitfit"));
        QTRY_COMPARE(w.budgetText(), QStringLiteral("4032 trainable"));
        w.methodPanel()->setMethod(QStringLiteral("last_layers"));
        auto* spin = w.methodPanel()->findChild<QSpinBox*>();
        QVERIFY(spin);
        spin->setValue(9);
        QTRY_VERIFY(w.budgetText().contains("num_layers"));  // 4 blocks only: the engine's message, inline
        w.methodPanel()->setMethod(QStringLiteral("lora"));
        w.modelPanel()->model()->setCheckedPaths(queries);
        w.resize(1280, 800);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QTest::qWait(50);
        QVERIFY(w.grab().save(QStringLiteral(DT_BUILD_DIR "/workbench_budget.png")));
    }
};

DT_REGISTER_TEST(TestWorkbench);
#include "test_workbench.moc"
