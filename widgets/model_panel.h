// ModelPanel: the model's module tree with check boxes, a filter box and quick selections
// (PEFT-style patterns), plus a one-line summary of what is ticked.
#pragma once

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
    // Returns how many modules matched (nothing changes when none did).
    int tickMatches(const QString& pattern);
    // A quick selection: a pattern as tickMatches takes, "all-linear", "-" (clear) or "biases"
    // (nothing ticked; the window switches the method to BitFit).
    void quickSelect(const QString& pattern);
    // Keeps only the ticked modules inside blocks first..last (PEFT's layers_to_transform).
    void limitToLayers(int first, int last);
    QLineEdit* filterBox() const { return m_filter; }

Q_SIGNALS:
    void quickSelectionRequested(const QString& pattern);

private:
    void updateSummary();
    ModuleTreeModel* m_model;
    QSortFilterProxyModel* m_proxy;
    QTreeView* m_view;
    QLineEdit* m_filter;
    QComboBox* m_quick;
    QSpinBox* m_fromLayer;
    QSpinBox* m_toLayer;
    QCheckBox* m_foldBox;
    QLabel* m_summary;
};
