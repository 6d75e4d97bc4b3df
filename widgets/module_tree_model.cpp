#include "module_tree_model.h"

#include <QLocale>

#include <algorithm>
#include <functional>

ModuleTreeModel::ModuleTreeModel(QObject* parent) : QAbstractItemModel(parent) {}

void ModuleTreeModel::setTree(dt::ModuleTree tree) {
    beginResetModel();
    m_tree = std::move(tree);
    m_checked.assign(m_tree.nodes().size(), 0);
    m_trainable.clear();
    computeFolding();
    m_ranks.clear();
    endResetModel();
    Q_EMIT treeChanged();
    Q_EMIT checkedChanged();
}

void ModuleTreeModel::setFolded(bool on) {
    if (on == m_fold) return;
    beginResetModel();
    m_fold = on;
    computeFolding();
    endResetModel();
}

void ModuleTreeModel::computeFolding() {
    const std::size_t n = m_tree.nodes().size();
    m_hidden.assign(n, 0);
    m_runMembers.assign(n, {});
    m_leaderOf.assign(n, -1);
    if (!m_fold || n == 0) return;
    for (const auto& line : m_tree.folded()) {
        if (line.count < 2) continue;
        const auto& siblings = m_tree.nodes()[static_cast<std::size_t>(m_tree.nodes()[static_cast<std::size_t>(line.node)].parent)].children;
        const auto start = std::find(siblings.begin(), siblings.end(), line.node);
        if (start == siblings.end() || siblings.end() - start < line.count) continue;
        std::vector<int> members(start, start + line.count);
        for (std::size_t k = 1; k < members.size(); ++k) m_hidden[static_cast<std::size_t>(members[k])] = 1;
        m_runMembers[static_cast<std::size_t>(line.node)] = members;
    }
    // Every node below a leader knows it (for its mirrors in the other layers).
    std::function<void(int, int)> mark = [&](int node, int leader) {
        for (int c : m_tree.nodes()[static_cast<std::size_t>(node)].children) {
            m_leaderOf[static_cast<std::size_t>(c)] = leader;
            mark(c, leader);
        }
    };
    for (std::size_t i = 0; i < n; ++i)
        if (!m_runMembers[i].empty()) mark(static_cast<int>(i), static_cast<int>(i));
}

std::vector<int> ModuleTreeModel::mirrors(int node) const {
    if (!m_fold) return {node};
    const std::size_t i = static_cast<std::size_t>(node);
    if (!m_runMembers[i].empty()) return m_runMembers[i];
    const int leader = m_leaderOf[i];
    if (leader < 0) return {node};
    const std::string& lp = m_tree.nodes()[static_cast<std::size_t>(leader)].path;
    const std::string suffix = m_tree.nodes()[i].path.substr(lp.size());
    std::vector<int> out;
    for (int m : m_runMembers[static_cast<std::size_t>(leader)]) {
        const int x = m_tree.find(m_tree.nodes()[static_cast<std::size_t>(m)].path + suffix);
        if (x > 0) out.push_back(x);
    }
    return out;
}

std::vector<int> ModuleTreeModel::visibleChildren(int node) const {
    std::vector<int> out;
    for (int c : m_tree.nodes()[static_cast<std::size_t>(node)].children)
        if (!m_hidden[static_cast<std::size_t>(c)]) out.push_back(c);
    return out;
}

int ModuleTreeModel::nodeOf(const QModelIndex& index) const {
    return index.isValid() ? static_cast<int>(index.internalId()) : 0;
}

QModelIndex ModuleTreeModel::indexOfNode(int node, int column) const {
    if (node <= 0 || node >= static_cast<int>(m_tree.nodes().size())) return {};
    if (m_hidden[static_cast<std::size_t>(node)]) return {};
    const int p = m_tree.nodes()[node].parent;
    const auto siblings = visibleChildren(p);
    for (int row = 0; row < static_cast<int>(siblings.size()); ++row)
        if (siblings[row] == node) return createIndex(row, column, static_cast<quintptr>(node));
    return {};
}

QModelIndex ModuleTreeModel::index(int row, int column, const QModelIndex& parent) const {
    if (m_tree.nodes().empty() || column < 0 || column >= ColumnCount || (parent.isValid() && parent.column() != 0))
        return {};
    const auto children = visibleChildren(nodeOf(parent));
    if (row < 0 || row >= static_cast<int>(children.size())) return {};
    return createIndex(row, column, static_cast<quintptr>(children[row]));
}

QModelIndex ModuleTreeModel::parent(const QModelIndex& child) const {
    if (!child.isValid()) return {};
    const int p = m_tree.nodes()[nodeOf(child)].parent;
    return p <= 0 ? QModelIndex() : indexOfNode(p);
}

int ModuleTreeModel::rowCount(const QModelIndex& parent) const {
    if (m_tree.nodes().empty() || (parent.isValid() && parent.column() != 0)) return 0;
    return static_cast<int>(visibleChildren(nodeOf(parent)).size());
}

int ModuleTreeModel::columnCount(const QModelIndex&) const { return ColumnCount; }

Qt::CheckState ModuleTreeModel::stateOf(int node) const {
    const auto& n = m_tree.nodes()[node];
    if (n.children.empty()) {
        // A leaf inside a folded run stands for its counterparts in every layer of the run.
        int on = 0;
        const auto ms = mirrors(node);
        for (int m : ms) on += m_checked[static_cast<std::size_t>(m)] ? 1 : 0;
        return on == 0 ? Qt::Unchecked : on == static_cast<int>(ms.size()) ? Qt::Checked : Qt::PartiallyChecked;
    }
    bool any = false, all = true;
    for (int c : n.children) {
        const auto s = stateOf(c);
        any |= s != Qt::Unchecked;
        all &= s == Qt::Checked;
    }
    return all ? Qt::Checked : (any ? Qt::PartiallyChecked : Qt::Unchecked);
}

static QString shapeText(const dt::ModuleNode& n) {
    QStringList parts;
    for (const auto& p : n.params) {
        QStringList dims;
        for (auto d : p.shape) dims << QString::number(d);
        QString s = QStringLiteral("%1 [%2] %3").arg(QString::fromStdString(p.name), dims.join(QLatin1Char('x')),
                                                       QString::fromStdString(p.dtype));
        if (!p.tied_to.empty()) s += QStringLiteral(" (tied)");
        parts << s;
    }
    return parts.join(QStringLiteral(", "));
}

QVariant ModuleTreeModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid()) return {};
    const int node = nodeOf(index);
    const auto& n = m_tree.nodes()[node];
    switch (role) {
        case Qt::DisplayRole:
            switch (index.column()) {
                case NameColumn:
                    if (m_fold && !m_runMembers[static_cast<std::size_t>(node)].empty())
                        return QStringLiteral("%1-%2").arg(QString::fromStdString(n.name),
                                                           QString::fromStdString(m_tree.nodes()[static_cast<std::size_t>(m_runMembers[static_cast<std::size_t>(node)].back())].name));
                    if (const auto r = m_ranks.constFind(QString::fromStdString(n.path)); r != m_ranks.constEnd())
                        return tr("%1  [rank %2]").arg(QString::fromStdString(n.name)).arg(r.value());  // AdaLoRA, live
                    return QString::fromStdString(n.name);
                case TypeColumn:
                    if (m_fold && !m_runMembers[static_cast<std::size_t>(node)].empty())
                        return QStringLiteral("%1 ×%2").arg(QString::fromStdString(n.type)).arg(m_runMembers[static_cast<std::size_t>(node)].size());
                    return QString::fromStdString(n.type);
                case ParamsColumn: {
                    // A folded line and everything in it count all the layers of its run.
                    std::int64_t total = 0;
                    for (int m : mirrors(node)) total += m_tree.nodes()[static_cast<std::size_t>(m)].total_params;
                    return total ? QLocale().toString(static_cast<qlonglong>(total)) : QString();
                }
                case TrainableColumn: {
                    std::int64_t t = 0;
                    for (int m : mirrors(node))
                        if (static_cast<std::size_t>(m) < m_trainable.size()) t += m_trainable[static_cast<std::size_t>(m)];
                    return t ? QLocale().toString(static_cast<qlonglong>(t)) : QString();
                }
                case ShapeColumn: return shapeText(n);
            }
            break;
        case Qt::CheckStateRole:
            if (index.column() == NameColumn) return stateOf(node);
            break;
        case Qt::ToolTipRole:
            return QStringLiteral("%1\n%2 · %3 parameters (%4 own)")
                .arg(QString::fromStdString(n.path), QString::fromStdString(n.type),
                     QLocale().toString(static_cast<qlonglong>(n.total_params)),
                     QLocale().toString(static_cast<qlonglong>(n.own_params)));
        case Qt::TextAlignmentRole:
            if (index.column() == ParamsColumn || index.column() == TrainableColumn) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
            break;
        case PathRole: return QString::fromStdString(n.path);
        case TotalParamsRole: return static_cast<qlonglong>(n.total_params);
        case IsLinearRole: return n.is_linear();
    }
    return {};
}

void ModuleTreeModel::setSubtree(int node, bool on) {
    m_checked[node] = on;
    for (int c : m_tree.nodes()[node].children) setSubtree(c, on);
}

void ModuleTreeModel::emitSubtreeChanged(int node) {
    const auto children = visibleChildren(node);
    if (children.empty()) return;
    const QModelIndex first = indexOfNode(children.front()), last = indexOfNode(children.back());
    Q_EMIT dataChanged(first, last, {Qt::CheckStateRole});
    for (int c : children) emitSubtreeChanged(c);
}

bool ModuleTreeModel::setData(const QModelIndex& index, const QVariant& value, int role) {
    if (!index.isValid() || role != Qt::CheckStateRole || index.column() != NameColumn) return false;
    const int node = nodeOf(index);
    const bool on = value.value<Qt::CheckState>() != Qt::Unchecked;
    for (int m : mirrors(node)) setSubtree(m, on);  // a folded line: every layer of its run
    Q_EMIT dataChanged(index, index, {Qt::CheckStateRole});
    emitSubtreeChanged(node);
    for (QModelIndex p = index.parent(); p.isValid(); p = p.parent()) Q_EMIT dataChanged(p, p, {Qt::CheckStateRole});
    Q_EMIT checkedChanged();
    return true;
}

Qt::ItemFlags ModuleTreeModel::flags(const QModelIndex& index) const {
    if (!index.isValid()) return Qt::NoItemFlags;
    Qt::ItemFlags f = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
    if (index.column() == NameColumn) f |= Qt::ItemIsUserCheckable;
    return f;
}

QVariant ModuleTreeModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
        case NameColumn: return tr("Module");
        case TypeColumn: return tr("Type");
        case ParamsColumn: return tr("Parameters");
        case TrainableColumn: return tr("Trainable");
        case ShapeColumn: return tr("Tensors");
    }
    return {};
}

void ModuleTreeModel::setTrainable(std::vector<std::int64_t> perNode) {
    if (perNode == m_trainable) return;
    m_trainable = std::move(perNode);
    if (m_tree.nodes().size() > 1)
        for (int node = 0; node < static_cast<int>(m_tree.nodes().size()); ++node) {
            const auto children = visibleChildren(node);
            if (children.empty() || m_hidden[static_cast<std::size_t>(node)]) continue;
            Q_EMIT dataChanged(indexOfNode(children.front(), TrainableColumn), indexOfNode(children.back(), TrainableColumn), {Qt::DisplayRole});
        }
}

void ModuleTreeModel::setRanks(const QMap<QString, int>& ranks) {
    if (ranks == m_ranks) return;
    m_ranks = ranks;
    if (m_tree.nodes().size() > 1)
        for (int node = 0; node < static_cast<int>(m_tree.nodes().size()); ++node) {
            const auto children = visibleChildren(node);
            if (children.empty() || m_hidden[static_cast<std::size_t>(node)]) continue;
            Q_EMIT dataChanged(indexOfNode(children.front(), NameColumn), indexOfNode(children.back(), NameColumn), {Qt::DisplayRole});
        }
}

qint64 ModuleTreeModel::trainable(const QString& path) const {
    const int n = m_tree.find(path.toStdString());
    return n >= 0 && static_cast<std::size_t>(n) < m_trainable.size() ? m_trainable[static_cast<std::size_t>(n)] : 0;
}

QStringList ModuleTreeModel::checkedPaths() const {
    QStringList out;
    for (std::size_t i = 1; i < m_tree.nodes().size(); ++i)
        if (m_tree.nodes()[i].children.empty() && m_checked[i]) out << QString::fromStdString(m_tree.nodes()[i].path);
    return out;
}

qint64 ModuleTreeModel::checkedParams() const {
    qint64 total = 0;
    for (std::size_t i = 1; i < m_tree.nodes().size(); ++i)
        if (m_tree.nodes()[i].children.empty() && m_checked[i]) total += m_tree.nodes()[i].own_params;
    return total;
}

void ModuleTreeModel::setCheckedPaths(const QStringList& paths) {
    std::fill(m_checked.begin(), m_checked.end(), 0);
    for (const auto& p : paths) {
        const int node = m_tree.find(p.toStdString());
        if (node > 0) setSubtree(node, true);
    }
    if (!m_tree.nodes().empty()) {
        emitSubtreeChanged(0);
    }
    Q_EMIT checkedChanged();
}

QModelIndex ModuleTreeModel::indexForPath(const QString& path) const {
    int node = m_tree.find(path.toStdString());
    if (node <= 0) return {};
    // A module in a hidden layer of a folded run shows as its counterpart in the run's first layer.
    for (int a = node; a > 0; a = m_tree.nodes()[static_cast<std::size_t>(a)].parent)
        if (m_hidden[static_cast<std::size_t>(a)]) {
            const auto& siblings = m_tree.nodes()[static_cast<std::size_t>(m_tree.nodes()[static_cast<std::size_t>(a)].parent)].children;
            for (int leader : siblings)
                if (!m_runMembers[static_cast<std::size_t>(leader)].empty() &&
                    std::find(m_runMembers[static_cast<std::size_t>(leader)].begin(), m_runMembers[static_cast<std::size_t>(leader)].end(), a) !=
                        m_runMembers[static_cast<std::size_t>(leader)].end()) {
                    const std::string suffix = m_tree.nodes()[static_cast<std::size_t>(node)].path.substr(m_tree.nodes()[static_cast<std::size_t>(a)].path.size());
                    node = m_tree.find(m_tree.nodes()[static_cast<std::size_t>(leader)].path + suffix);
                    break;
                }
            break;
        }
    return indexOfNode(node);
}
