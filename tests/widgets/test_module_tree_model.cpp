// ModuleTreeModel: model invariants (QAbstractItemModelTester), the flattened tree, and check
// propagation (children follow a parent; a parent is partial when some leaves are ticked).
#include "test_registry.h"

#include "module_tree_model.h"
#include "model_panel.h"
#include "theme.h"

#include "models/loader.h"
#include "tree/module_tree.h"

#include <QAbstractItemModelTester>
#include <QLineEdit>
#include <QSignalSpy>
#include <QTest>
#include <QTreeView>
#include <QStyleFactory>
#include <QTreeWidget>

#include <memory>

namespace {

dt::ModuleTree tinyTree() {
    auto m = dt::create_model(dt::builtin_config("tiny-bert"), 0);
    return dt::ModuleTree::build(*m);
}

void flatten(const QAbstractItemModel& m, const QModelIndex& parent, int depth, QStringList& out) {
    for (int r = 0; r < m.rowCount(parent); ++r) {
        const QModelIndex i = m.index(r, 0, parent);
        out << QString(depth * 2, QLatin1Char(' ')) + i.data().toString() + " " +
                   m.index(r, ModuleTreeModel::TypeColumn, parent).data().toString();
        flatten(m, i, depth + 1, out);
    }
}

}  // namespace

class TestModuleTreeModel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void invariantsAndShape() {
        ModuleTreeModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setTree(tinyTree());
        // The Trainable column, set and cleared under the tester.
        std::vector<std::int64_t> counts(model.tree().nodes().size(), 0);
        counts[1] = 42;
        model.setTrainable(counts);
        QCOMPARE(model.data(model.index(0, ModuleTreeModel::TrainableColumn)).toString(), QStringLiteral("42"));
        model.setTrainable({});
        QVERIFY(model.data(model.index(0, ModuleTreeModel::TrainableColumn)).toString().isEmpty());
        // Folded (the default): the four identical layers are one line standing for all of them.
        QStringList folded;
        flatten(model, {}, 0, folded);
        QVERIFY2(folded.contains("      0-3 BertLayer ×4"), qPrintable(folded.join('\n')));
        QVERIFY(folded.size() < static_cast<int>(model.tree().nodes().size()) - 1);
        const QModelIndex foldedQuery = model.indexForPath("bert.encoder.layer.2.attention.self.query");  // a hidden layer
        QCOMPARE(foldedQuery.data(ModuleTreeModel::PathRole).toString(), QStringLiteral("bert.encoder.layer.0.attention.self.query"));
        QCOMPARE(model.index(foldedQuery.row(), ModuleTreeModel::ParamsColumn, foldedQuery.parent()).data().toString(), QLocale().toString(4 * 4160));
        model.setFolded(false);
        QStringList lines;
        flatten(model, {}, 0, lines);
        QCOMPARE(lines.mid(0, 4), (QStringList{"bert BertModel", "  embeddings BertEmbeddings",
                                                "    word_embeddings Embedding", "    position_embeddings Embedding"}));
        QVERIFY(lines.contains("            query Linear"));
        QCOMPARE(static_cast<size_t>(lines.size()), model.tree().nodes().size() - 1);
        const QModelIndex q = model.indexForPath("bert.encoder.layer.1.attention.self.query");
        QVERIFY(q.isValid());
        QCOMPARE(q.data(ModuleTreeModel::PathRole).toString(), QStringLiteral("bert.encoder.layer.1.attention.self.query"));
        QCOMPARE(model.index(q.row(), ModuleTreeModel::ParamsColumn, q.parent()).data().toString(), QLocale().toString(4160));
        QVERIFY(model.flags(q) & Qt::ItemIsUserCheckable);
        QVERIFY(!(model.flags(model.index(q.row(), 1, q.parent())) & Qt::ItemIsUserCheckable));
    }

    void foldedTickingReachesEveryLayer() {
        ModuleTreeModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setTree(tinyTree());
        QVERIFY(model.folded());
        const QModelIndex q = model.indexForPath("bert.encoder.layer.0.attention.self.query");
        QVERIFY(model.setData(q, Qt::Checked, Qt::CheckStateRole));
        QStringList want;
        for (int l = 0; l < 4; ++l) want << QStringLiteral("bert.encoder.layer.%1.attention.self.query").arg(l);
        QCOMPARE(model.checkedPaths(), want);
        QCOMPARE(q.data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::Checked);
        // One layer's query unticked (e.g. by a layer range): the folded line says partial.
        want.removeAt(2);
        model.setCheckedPaths(want);
        QCOMPARE(q.data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::PartiallyChecked);
        QCOMPARE(model.indexForPath("bert.encoder.layer.0").data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::PartiallyChecked);
        // Unfolded, each layer is its own line again.
        model.setFolded(false);
        QCOMPARE(model.indexForPath("bert.encoder.layer.2.attention.self.query").data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::Unchecked);
        QCOMPARE(model.indexForPath("bert.encoder.layer.0.attention.self.query").data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::Checked);
    }

    void checkPropagation() {
        ModuleTreeModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setTree(tinyTree());
        model.setFolded(false);
        QSignalSpy spy(&model, &ModuleTreeModel::checkedChanged);
        const QModelIndex self = model.indexForPath("bert.encoder.layer.0.attention.self");
        QVERIFY(model.setData(self, Qt::Checked, Qt::CheckStateRole));
        QCOMPARE(spy.count(), 1);
        QCOMPARE(model.checkedPaths(), (QStringList{"bert.encoder.layer.0.attention.self.query",
                                                    "bert.encoder.layer.0.attention.self.key",
                                                    "bert.encoder.layer.0.attention.self.value",
                                                    "bert.encoder.layer.0.attention.self.dropout"}));
        QCOMPARE(model.checkedParams(), 3 * 4160);
        QCOMPARE(self.data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::Checked);
        QCOMPARE(model.indexForPath("bert.encoder.layer.0.attention").data(Qt::CheckStateRole).value<Qt::CheckState>(),
                 Qt::PartiallyChecked);
        QCOMPARE(model.indexForPath("bert.encoder.layer.1").data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::Unchecked);
        // Unticking one leaf makes its parent partial.
        model.setData(model.indexForPath("bert.encoder.layer.0.attention.self.key"), Qt::Unchecked, Qt::CheckStateRole);
        QCOMPARE(self.data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::PartiallyChecked);
        model.setCheckedPaths({"bert.encoder.layer.3.output.dense"});
        QCOMPARE(model.checkedPaths(), QStringList{"bert.encoder.layer.3.output.dense"});
        QCOMPARE(model.checkedParams(), 256 * 64 + 64);
    }

    void panelQuickSelectionAndScreenshot() {
        ModelPanel panel;
        panel.resize(700, 800);
        panel.model()->setTree(tinyTree());
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        QVERIFY(panel.view()->model()->rowCount() >= 2);
        // PEFT-style ticking: a target list (whole name or dot suffix), a regex, a layer range.
        QCOMPARE(panel.tickMatches(QStringLiteral("query, value")), 8);
        for (const QString& p : panel.model()->checkedPaths()) QVERIFY(p.endsWith(QStringLiteral(".query")) || p.endsWith(QStringLiteral(".value")));
        QCOMPARE(panel.tickMatches(QStringLiteral(".*(\\.intermediate\\.dense|\\.layer\\.\\d+\\.output\\.dense|\\.mlp\\.\\w+_proj)")), 8);
        for (const QString& p : panel.model()->checkedPaths()) QVERIFY2(!p.contains(QStringLiteral("attention")), qPrintable(p));
        panel.limitToLayers(1, 2);
        QCOMPARE(panel.model()->checkedPaths().size(), 4);
        for (const QString& p : panel.model()->checkedPaths())
            QVERIFY(p.contains(QStringLiteral("layer.1.")) || p.contains(QStringLiteral("layer.2.")));
        const QStringList before = panel.model()->checkedPaths();
        QCOMPARE(panel.tickMatches(QStringLiteral("(")), 0);             // a bad regex changes nothing
        QCOMPARE(panel.tickMatches(QStringLiteral("no_such_module")), 0);
        QCOMPARE(panel.model()->checkedPaths(), before);
        // The filter box: text filters by substring, a pattern by full-match regex.
        panel.filterBox()->setText(QStringLiteral(".*layer\\.3\\.attention\\.self\\.key"));
        QVERIFY(panel.view()->model()->rowCount() == 1);
        panel.filterBox()->clear();
        const QString out = QStringLiteral(DT_BUILD_DIR "/model_panel.png");
        QVERIFY(panel.grab().save(out));
    }

    // Dark theme: an unticked check box in an item view has a visible frame. Plain Fusion frames it
    // with the window colour darkened, the same as the dark base (the defect: invisible boxes in the
    // tree and the run table); ContrastStyle draws a frame in the text colour.
    void darkThemeCheckBoxesAreVisible() {
        auto brightPixels = [](QStyle* style) {
            QTreeWidget tree;
            tree.setStyle(style);
            tree.setPalette(darkPalette());
            tree.setRootIsDecorated(false);
            tree.setHeaderHidden(true);
            auto* item = new QTreeWidgetItem(&tree);
            item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
            item->setCheckState(0, Qt::Unchecked);
            tree.resize(200, 80);
            const QImage img = tree.grab().toImage();
            const QRect row = tree.visualItemRect(item).translated(tree.viewport()->pos());
            int bright = 0;
            for (int y = row.top(); y <= row.bottom(); ++y)
                for (int x = row.left(); x < row.left() + 30 && x < img.width(); ++x) bright += img.pixelColor(x, y).lightness() > 90;
            return bright;
        };
        std::unique_ptr<QStyle> fusion(QStyleFactory::create(QStringLiteral("Fusion")));
        ContrastStyle contrast;
        QCOMPARE(brightPixels(fusion.get()), 0);   // the defect, reproduced
        QVERIFY(brightPixels(&contrast) >= 20);    // a frame of about 4 x 10 pixels
    }
};

DT_REGISTER_TEST(TestModuleTreeModel);
#include "test_module_tree_model.moc"
