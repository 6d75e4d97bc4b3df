// ModuleTreeModel: a Qt item model over dt::ModuleTree (plain data, no tensors). Column 0 is
// checkable; a parent's state (checked / partial / unchecked) is computed from its leaves.
// Folding (on by default): a run of structurally identical numbered siblings (BERT's layer.0-11)
// shows as one expandable line "0-11" of type "BertLayer ×12"; ticking a module inside it ticks the
// same module in every layer of the run, and its state is partial when only some layers have it.
#pragma once

#include "tree/module_tree.h"

#include <QAbstractItemModel>
#include <QStringList>

#include <vector>

class ModuleTreeModel : public QAbstractItemModel {
    Q_OBJECT
public:
    enum Column { NameColumn, TypeColumn, ParamsColumn, TrainableColumn, ShapeColumn, ColumnCount };
    enum Role { PathRole = Qt::UserRole + 1, TotalParamsRole, IsLinearRole };

    explicit ModuleTreeModel(QObject* parent = nullptr);

    void setTree(dt::ModuleTree tree);
    const dt::ModuleTree& tree() const { return m_tree; }

    // Checked leaf modules, in tree order.
    QStringList checkedPaths() const;
    // Checks exactly these modules (and everything under them); unknown paths are ignored.
    void setCheckedPaths(const QStringList& paths);
    // Parameters of every checked leaf, counted once.
    qint64 checkedParams() const;
    QModelIndex indexForPath(const QString& path) const;
    void setFolded(bool on);
    bool folded() const { return m_fold; }
    // Trainable parameters in each node's subtree under the current delta (indexed by node; empty:
    // none shown). Only the Trainable column changes.
    void setTrainable(std::vector<std::int64_t> perNode);
    qint64 trainable(const QString& path) const;
    // A live rank per module path (AdaLoRA while it trains), shown after the module's name as
    // "[rank N]"; empty: none.
    void setRanks(const QMap<QString, int>& ranks);
    int rank(const QString& path) const { return m_ranks.value(path, -1); }

    QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

Q_SIGNALS:
    void checkedChanged();
    void treeChanged();  // setTree: another model (emitted before checkedChanged)

private:
    int nodeOf(const QModelIndex& index) const;
    QModelIndex indexOfNode(int node, int column = 0) const;
    Qt::CheckState stateOf(int node) const;
    void setSubtree(int node, bool on);
    void emitSubtreeChanged(int node);

    dt::ModuleTree m_tree;
    QMap<QString, int> m_ranks;
    std::vector<char> m_checked;  // per node; meaningful for leaves
    std::vector<std::int64_t> m_trainable;  // per node, subtree
    // Folding: the first node of a run stands for it; the others are hidden.
    bool m_fold = true;
    std::vector<char> m_hidden;                 // per node
    std::vector<std::vector<int>> m_runMembers; // per node: the run it leads (empty: not a leader)
    std::vector<int> m_leaderOf;                // per node: the run leader above it (-1: none)
    void computeFolding();
    std::vector<int> mirrors(int node) const;   // the node and its counterparts in the other layers of its run
    std::vector<int> visibleChildren(int node) const;
};
