// The workbench window: opens the built-in model and a HF folder, survives bad input, and renders
// (a PNG is written next to the tests for a person to look at).
#include "test_registry.h"

#include "main_window.h"
#include "model_panel.h"
#include "module_tree_model.h"

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
};

DT_REGISTER_TEST(TestWorkbench);
#include "test_workbench.moc"
