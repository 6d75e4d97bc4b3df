// ModelPanel over tiny-bert: the summary line follows the ticks, every quick selection ticks what its
// PEFT pattern selects (and asks the window for BitFit / a method where it should), bad patterns
// explain themselves and change nothing, the filter box (substring or regex, case-insensitive)
// unfolds the tree while set, Enter and "Tick matches" tick the filter's matches, the layer range
// keeps only ticks inside it, and ticking through the view's (filtered) model reaches the tree.
#include "test_registry.h"

#include "model_panel.h"
#include "module_tree_model.h"

#include "models/loader.h"
#include "tree/module_tree.h"

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTest>
#include <QTreeView>

namespace {

dt::ModuleTree tinyTree() {
    const auto m = dt::load_model("tiny-bert");
    return dt::ModuleTree::build(*m.model);
}

QLabel* summary(ModelPanel& p) {
    for (QLabel* l : p.findChildren<QLabel*>())
        if (l->wordWrap()) return l;
    return nullptr;
}

QPushButton* button(ModelPanel& p, const QString& text) {
    for (QPushButton* b : p.findChildren<QPushButton*>())
        if (b->text() == text) return b;
    return nullptr;
}

// Paths of the leaves the view shows (through the filter).
void visibleLeaves(const QAbstractItemModel& m, const QModelIndex& parent, QStringList& out) {
    for (int r = 0; r < m.rowCount(parent); ++r) {
        const QModelIndex i = m.index(r, 0, parent);
        if (m.rowCount(i) == 0) out << i.data(ModuleTreeModel::PathRole).toString();
        visibleLeaves(m, i, out);
    }
}

QModelIndex findPath(const QAbstractItemModel& m, const QModelIndex& parent, const QString& path) {
    for (int r = 0; r < m.rowCount(parent); ++r) {
        const QModelIndex i = m.index(r, 0, parent);
        if (i.data(ModuleTreeModel::PathRole).toString() == path) return i;
        const QModelIndex found = findPath(m, i, path);
        if (found.isValid()) return found;
    }
    return {};
}

bool allEndWith(const QStringList& paths, const QStringList& suffixes) {
    for (const QString& p : paths) {
        bool ok = false;
        for (const QString& s : suffixes) ok = ok || p.endsWith(s);
        if (!ok) return false;
    }
    return true;
}

}  // namespace

class TestModelPanel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void summaryFollowsTheTicks() {
        ModelPanel p;
        QVERIFY(summary(p));
        QCOMPARE(summary(p)->text(), QStringLiteral("No model loaded"));
        p.model()->setTree(tinyTree());
        const auto& tree = p.model()->tree();
        const QLocale loc;
        QVERIFY(summary(p)->text().startsWith(QString::fromStdString(tree.architecture())));
        QVERIFY(summary(p)->text().contains(loc.toString(static_cast<qint64>(tree.total_params()))));
        QVERIFY2(summary(p)->text().contains(QStringLiteral("ticked: 0 modules, 0 parameters (0.00%)")), qPrintable(summary(p)->text()));
        QCOMPARE(p.tickMatches(QStringLiteral("query")), 4);
        const qint64 ticked = 4 * 4160;
        QCOMPARE(p.model()->checkedParams(), ticked);
        const QString pct = QString::number(100.0 * ticked / tree.total_params(), 'f', 2);
        QVERIFY2(summary(p)->text().endsWith(QStringLiteral("ticked: 4 modules, %1 parameters (%2%)").arg(loc.toString(ticked), pct)),
                 qPrintable(summary(p)->text()));
        p.model()->setCheckedPaths({});
        QVERIFY(summary(p)->text().contains(QStringLiteral("ticked: 0 modules")));
    }

    void badPatternsChangeNothing() {
        ModelPanel p;
        p.model()->setTree(tinyTree());
        QCOMPARE(p.tickMatches(QStringLiteral("value")), 4);
        const QStringList before = p.model()->checkedPaths();
        QCOMPARE(p.tickMatches(QStringLiteral("(")), 0);
        QVERIFY2(summary(p)->text().startsWith(QStringLiteral("Pattern: ")), qPrintable(summary(p)->text()));
        QCOMPARE(p.model()->checkedPaths(), before);
        QCOMPARE(p.tickMatches(QStringLiteral("no_such_module")), 0);
        QCOMPARE(summary(p)->text(), QStringLiteral("No module matches no_such_module"));
        QCOMPARE(p.model()->checkedPaths(), before);
        QCOMPARE(p.tickMatches(QStringLiteral("   ")), 0);
        QCOMPARE(p.model()->checkedPaths(), before);
        // A partial name is no PEFT target: "quer" matches nothing ("query" would).
        QCOMPARE(p.tickMatches(QStringLiteral("quer")), 0);
        QCOMPARE(p.model()->checkedPaths(), before);
        // A target list with spaces and commas; a dot-suffix target.
        QCOMPARE(p.tickMatches(QStringLiteral(" key,  attention.output.dense ")), 8);
        QVERIFY(allEndWith(p.model()->checkedPaths(), {".key", ".attention.output.dense"}));
    }

    void quickSelections() {
        ModelPanel p;
        p.model()->setTree(tinyTree());
        auto* combo = p.findChild<QComboBox*>();
        QVERIFY(combo);
        QSignalSpy asked(&p, &ModelPanel::quickSelectionRequested);
        auto pick = [&](const QString& label) {
            const int i = combo->findText(label);
            QVERIFY2(i > 0, qPrintable(label));
            combo->setCurrentIndex(i);
            Q_EMIT combo->activated(i);
            QCOMPARE(combo->currentIndex(), 0);  // back to "Quick select…", ready for the next pick
        };
        pick(QStringLiteral("Attention query + value"));
        QCOMPARE(p.model()->checkedPaths().size(), 8);
        QVERIFY(allEndWith(p.model()->checkedPaths(), {".query", ".value"}));
        QCOMPARE(asked.takeLast().at(0).toString(), QStringLiteral("query,value"));

        pick(QStringLiteral("All attention projections"));
        QCOMPARE(p.model()->checkedPaths().size(), 16);
        QVERIFY(allEndWith(p.model()->checkedPaths(), {".query", ".key", ".value", ".attention.output.dense"}));

        pick(QStringLiteral("Attention output"));
        QCOMPARE(p.model()->checkedPaths().size(), 4);
        QVERIFY(allEndWith(p.model()->checkedPaths(), {".attention.output.dense"}));

        pick(QStringLiteral("Feed-forward (FFN)"));
        QCOMPARE(p.model()->checkedPaths().size(), 8);
        for (const QString& path : p.model()->checkedPaths()) {
            QVERIFY2(!path.contains(QStringLiteral("attention")), qPrintable(path));
            QVERIFY(path.endsWith(QStringLiteral(".intermediate.dense")) || path.endsWith(QStringLiteral(".output.dense")));
        }

        pick(QStringLiteral("LayerNorms"));
        QVERIFY(p.model()->checkedPaths().size() >= 9);  // the embeddings' and two per layer
        for (const QString& path : p.model()->checkedPaths()) QVERIFY2(path.endsWith(QStringLiteral("LayerNorm")), qPrintable(path));

        // All linear layers: every Linear of the blocks (six per layer), never the output layer.
        pick(QStringLiteral("All linear layers"));
        QCOMPARE(asked.takeLast().at(0).toString(), QStringLiteral("all-linear"));
        const QStringList linear = p.model()->checkedPaths();
        QVERIFY2(linear.size() >= 24, qPrintable(linear.join('\n')));
        for (const QString& path : linear) {
            QVERIFY2(p.model()->indexForPath(path).data(ModuleTreeModel::IsLinearRole).toBool(), qPrintable(path));
            QVERIFY2(path != QStringLiteral("cls.predictions.decoder"), qPrintable(path));  // the output layer, as PEFT
        }
        for (int l = 0; l < 4; ++l)
            for (const char* m : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                                  "intermediate.dense", "output.dense"})
                QVERIFY(linear.contains(QStringLiteral("bert.encoder.layer.%1.%2").arg(l).arg(QLatin1String(m))));

        // Biases are parameters, not modules: ticks cleared, and the window is asked for BitFit.
        pick(QStringLiteral("All biases (BitFit)"));
        QVERIFY(p.model()->checkedPaths().isEmpty());
        QCOMPARE(asked.takeLast().at(0).toString(), QStringLiteral("biases"));

        // Clear: nothing ticked, nothing asked of the window.
        p.tickMatches(QStringLiteral("query"));
        const int before = asked.count();
        pick(QStringLiteral("Clear"));
        QVERIFY(p.model()->checkedPaths().isEmpty());
        QCOMPARE(asked.count(), before);
        // The placeholder entry does nothing.
        p.tickMatches(QStringLiteral("query"));
        Q_EMIT combo->activated(0);
        QCOMPARE(p.model()->checkedPaths().size(), 4);
        QCOMPARE(asked.count(), before);
    }

    void filterBox() {
        ModelPanel p;
        p.model()->setTree(tinyTree());
        QVERIFY(p.model()->folded());
        QAbstractItemModel* shown = p.view()->model();
        // Text: a case-insensitive substring of the path; the tree unfolds so every layer is searched.
        p.filterBox()->setText(QStringLiteral("VALUE"));
        QVERIFY(!p.model()->folded());
        QStringList leaves;
        visibleLeaves(*shown, {}, leaves);
        QCOMPARE(leaves.size(), 4);
        for (int l = 0; l < 4; ++l) QVERIFY(leaves.contains(QStringLiteral("bert.encoder.layer.%1.attention.self.value").arg(l)));
        // A pattern: a full-match regex.
        p.filterBox()->setText(QStringLiteral(".*layer\\.[12]\\.output\\.dense"));
        leaves.clear();
        visibleLeaves(*shown, {}, leaves);
        QCOMPARE(leaves, (QStringList{"bert.encoder.layer.1.output.dense", "bert.encoder.layer.2.output.dense"}));
        // Cleared: everything back, folded again.
        p.filterBox()->clear();
        QVERIFY(p.model()->folded());
        leaves.clear();
        visibleLeaves(*shown, {}, leaves);
        QVERIFY(leaves.size() > 10);
        // With "Fold layers" off, clearing the filter leaves the tree unfolded; while a filter is set,
        // the box does not fold it.
        auto* fold = p.findChild<QCheckBox*>();
        QVERIFY(fold);
        fold->setChecked(false);
        QVERIFY(!p.model()->folded());
        p.filterBox()->setText(QStringLiteral("key"));
        p.filterBox()->clear();
        QVERIFY(!p.model()->folded());
        p.filterBox()->setText(QStringLiteral("key"));
        fold->setChecked(true);
        QVERIFY(!p.model()->folded());
        p.filterBox()->clear();
        QVERIFY(p.model()->folded());
    }

    void enterAndButtonTickTheFilter() {
        ModelPanel p;
        p.model()->setTree(tinyTree());
        p.show();
        QVERIFY(QTest::qWaitForWindowExposed(&p));
        p.filterBox()->setText(QStringLiteral("key"));
        QTest::keyClick(p.filterBox(), Qt::Key_Return);
        QCOMPARE(p.model()->checkedPaths().size(), 4);
        QVERIFY(allEndWith(p.model()->checkedPaths(), {".key"}));
        p.filterBox()->setText(QStringLiteral(".*layer\\.0\\.attention\\.self\\.(query|value)"));
        QPushButton* tick = button(p, QStringLiteral("Only matches"));
        QVERIFY(tick);
        QTest::mouseClick(tick, Qt::LeftButton);
        QCOMPARE(p.model()->checkedPaths(),
                 (QStringList{"bert.encoder.layer.0.attention.self.query", "bert.encoder.layer.0.attention.self.value"}));
    }

    void layerRangeKeepsTicksInside() {
        ModelPanel p;
        p.model()->setTree(tinyTree());
        const auto spins = p.findChildren<QSpinBox*>();
        QCOMPARE(spins.size(), 2);
        // The range runs over tiny-bert's four blocks (0-3), all of them at first, not to 9999.
        QCOMPARE(spins[1]->maximum(), 3);
        QCOMPARE(spins[1]->value(), 3);
        QCOMPARE(spins[0]->maximum(), 3);
        QPushButton* keep = button(p, QStringLiteral("Keep"));
        QVERIFY(keep);
        QCOMPARE(p.tickMatches(QStringLiteral("query")), 4);
        spins[0]->setValue(1);
        spins[1]->setValue(2);
        keep->click();
        QCOMPARE(p.model()->checkedPaths(),
                 (QStringList{"bert.encoder.layer.1.attention.self.query", "bert.encoder.layer.2.attention.self.query"}));
        // The range stays applied to later selections: matches outside it are not ticked.
        QCOMPARE(p.tickMatches(QStringLiteral("value")), 4);
        QCOMPARE(p.model()->checkedPaths(),
                 (QStringList{"bert.encoder.layer.1.attention.self.value", "bert.encoder.layer.2.attention.self.value"}));
        p.quickSelect(QStringLiteral("all-linear"));
        for (const QString& path : p.model()->checkedPaths())
            QVERIFY2(path.contains(QStringLiteral(".layer.1.")) || path.contains(QStringLiteral(".layer.2.")) || !path.contains(QStringLiteral(".layer.")),
                     qPrintable(path));
        spins[0]->setValue(0);
        spins[1]->setValue(3);
        // Modules outside any block (the embeddings' LayerNorm) are kept.
        const int norms = p.tickMatches(QStringLiteral(".*LayerNorm"));
        QVERIFY(norms >= 9);
        p.limitToLayers(3, 3);
        const QStringList kept = p.model()->checkedPaths();
        QVERIFY2(kept.contains(QStringLiteral("bert.embeddings.LayerNorm")), qPrintable(kept.join('\n')));
        for (const QString& path : kept)
            QVERIFY2(!path.contains(QStringLiteral(".layer.")) || path.contains(QStringLiteral(".layer.3.")), qPrintable(path));
        QCOMPARE(kept.size(), norms - 6);  // layers 0-2 lost their two each
        // A range holding no block unticks every block module.
        p.limitToLayers(7, 9);
        for (const QString& path : p.model()->checkedPaths()) QVERIFY(!path.contains(QStringLiteral(".layer.")));
    }

    void addOrOnlyMatchesAndUndo() {
        // "Add matches" joins the ticked modules, "Only matches" replaces them; every change can be
        // undone and redone, and a new model starts a new history.
        ModelPanel p;
        p.model()->setTree(tinyTree());
        QVERIFY(!p.canUndo());
        QCOMPARE(p.tickMatches(QStringLiteral("query")), 4);
        QCOMPARE(p.tickMatches(QStringLiteral("value"), true), 4);
        QCOMPARE(p.model()->checkedPaths().size(), 8);
        QVERIFY(allEndWith(p.model()->checkedPaths(), {".query", ".value"}));
        p.filterBox()->setText(QStringLiteral("key"));
        button(p, QStringLiteral("Add matches"))->click();
        QCOMPARE(p.model()->checkedPaths().size(), 12);
        button(p, QStringLiteral("Only matches"))->click();
        QCOMPARE(p.model()->checkedPaths().size(), 4);
        QVERIFY(allEndWith(p.model()->checkedPaths(), {".key"}));
        QVERIFY(p.undo());
        QCOMPARE(p.model()->checkedPaths().size(), 12);
        QVERIFY(p.undo());
        QCOMPARE(p.model()->checkedPaths().size(), 8);
        QVERIFY(p.redo());
        QCOMPARE(p.model()->checkedPaths().size(), 12);
        QVERIFY(p.undo() && p.undo() && p.undo());
        QVERIFY(p.model()->checkedPaths().isEmpty());
        QVERIFY(!p.undo());
        QVERIFY(p.redo());
        QCOMPARE(p.model()->checkedPaths().size(), 4);  // query
        p.tickMatches(QStringLiteral("value"), true);  // a new change drops what could be redone
        QVERIFY(!p.canRedo());
        // Ctrl+Z on the panel.
        p.show();
        QVERIFY(QTest::qWaitForWindowExposed(&p));
        p.view()->setFocus();
        QTest::keyClick(p.view(), Qt::Key_Z, Qt::ControlModifier);
        QCOMPARE(p.model()->checkedPaths().size(), 4);
        p.model()->setTree(tinyTree());
        QVERIFY(!p.canUndo() && !p.canRedo());
    }

    void tickingThroughTheFilteredView() {
        ModelPanel p;
        p.model()->setTree(tinyTree());
        QSignalSpy changed(p.model(), &ModuleTreeModel::checkedChanged);
        p.filterBox()->setText(QStringLiteral("attention.self"));
        QAbstractItemModel* shown = p.view()->model();
        const QPersistentModelIndex self = findPath(*shown, {}, QStringLiteral("bert.encoder.layer.1.attention.self"));
        QVERIFY(self.isValid());
        QVERIFY(shown->flags(self) & Qt::ItemIsUserCheckable);
        QVERIFY(shown->setData(self, Qt::Checked, Qt::CheckStateRole));
        QCOMPARE(changed.count(), 1);
        // The tree behind the filter got the ticks; parents through the proxy say partial.
        const QStringList ticked = p.model()->checkedPaths();
        QVERIFY(ticked.contains(QStringLiteral("bert.encoder.layer.1.attention.self.query")));
        QVERIFY(ticked.contains(QStringLiteral("bert.encoder.layer.1.attention.self.value")));
        for (const QString& path : ticked) QVERIFY(path.startsWith(QStringLiteral("bert.encoder.layer.1.attention.self.")));
        QCOMPARE(p.model()->checkedParams(), 3 * 4160);
        QCOMPARE(self.data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::Checked);
        QCOMPARE(self.parent().data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::PartiallyChecked);
        const QModelIndex other = findPath(*shown, {}, QStringLiteral("bert.encoder.layer.2.attention.self"));
        QCOMPARE(other.data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::Unchecked);
        QVERIFY(summary(p)->text().contains(QStringLiteral("ticked: %1 modules").arg(ticked.size())));
        // One leaf unticked through the view: its parent goes partial.
        const QModelIndex key = findPath(*shown, {}, QStringLiteral("bert.encoder.layer.1.attention.self.key"));
        QVERIFY(shown->setData(key, Qt::Unchecked, Qt::CheckStateRole));
        QCOMPARE(self.data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::PartiallyChecked);
        QCOMPARE(p.model()->checkedParams(), 2 * 4160);
        // The ticks survive the filter being cleared (and the tree folding again).
        p.filterBox()->clear();
        QCOMPARE(p.model()->checkedParams(), 2 * 4160);
        QVERIFY(p.model()->checkedPaths().contains(QStringLiteral("bert.encoder.layer.1.attention.self.value")));
    }
};

DT_REGISTER_TEST(TestModelPanel);
#include "test_model_panel.moc"
