// ModelPanel: the model's module tree with check boxes, a filter box and quick selections
// (PEFT-style patterns), plus a one-line summary of what is ticked.
#pragma once

#include <QWidget>

class QLabel;
class QLineEdit;
class QSortFilterProxyModel;
class QTreeView;
class QComboBox;
class ModuleTreeModel;

class ModelPanel : public QWidget {
    Q_OBJECT
public:
    explicit ModelPanel(QWidget* parent = nullptr);
    ModuleTreeModel* model() const { return m_model; }
    QTreeView* view() const { return m_view; }
    // Expands the tree to `depth` levels (blocks and their sub-modules visible).
    void expandToDepth(int depth);

Q_SIGNALS:
    void quickSelectionRequested(const QString& pattern);

private:
    void updateSummary();
    ModuleTreeModel* m_model;
    QSortFilterProxyModel* m_proxy;
    QTreeView* m_view;
    QLineEdit* m_filter;
    QComboBox* m_quick;
    QLabel* m_summary;
};
