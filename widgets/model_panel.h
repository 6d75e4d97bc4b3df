// ModelPanel: the model's module tree with check boxes, a filter box and quick selections
// (PEFT-style patterns), plus a one-line summary of what is ticked.
#pragma once

#include <QList>
#include <QStringList>
#include <QWidget>

class QLabel;
class QLineEdit;
class QSortFilterProxyModel;
class QTreeView;
class QComboBox;
class QSpinBox;
class QCheckBox;
class ModuleTreeModel;

class ModelPanel : public QWidget {
    Q_OBJECT
public:
    explicit ModelPanel(QWidget* parent = nullptr);
    ModuleTreeModel* model() const { return m_model; }
    QTreeView* view() const { return m_view; }
    // Expands the tree to `depth` levels (blocks and their sub-modules visible).
    void expandToDepth(int depth);
    // Ticks every module a PEFT-style pattern selects: a single string with regex characters is a
    // full-match regex, otherwise a comma/space separated target list (whole name or dot suffix).
    // Returns how many modules matched (nothing changes when none did). `add`: the matches join the
    // ticked modules ("Add matches"); otherwise they replace them ("Only matches"). A layer range
    // narrower than the model's blocks stays applied.
    int tickMatches(const QString& pattern, bool add = false);
    // Every tick change can be undone and redone (Ctrl+Z / Ctrl+Shift+Z); false when there is none.
    bool undo();
    bool redo();
    bool canUndo() const { return !m_undo.isEmpty(); }
    bool canRedo() const { return !m_redo.isEmpty(); }
    // A quick selection: a pattern as tickMatches takes, "all-linear", "-" (clear) or "biases"
    // (nothing ticked; the window switches the method to BitFit).
    void quickSelect(const QString& pattern);
    // Keeps only the ticked modules inside blocks first..last (PEFT's layers_to_transform).
    void limitToLayers(int first, int last);
    // A note after "ticked: N modules" in the summary, e.g. "not used by bitfit" (empty: none).
    void setTickNote(const QString& note);
    QString summaryText() const;
    QLineEdit* filterBox() const { return m_filter; }

Q_SIGNALS:
    void quickSelectionRequested(const QString& pattern);

private:
    void updateSummary();
    // Ticks exactly `paths`, cut to the layer range when one is set.
    void applySelection(QStringList paths);
    void recordTicks();  // after every checkedChanged: the undo history
    bool replay(QList<QStringList>& from, QList<QStringList>& to);
    QList<QStringList> m_undo, m_redo;
    QStringList m_current;
    bool m_replaying = false;
    ModuleTreeModel* m_model;
    QSortFilterProxyModel* m_proxy;
    QTreeView* m_view;
    QLineEdit* m_filter;
    QComboBox* m_quick;
    QSpinBox* m_fromLayer;
    QSpinBox* m_toLayer;
    QCheckBox* m_foldBox;
    QLabel* m_summary;
    QString m_tickNote;
};
