#include "model_panel.h"

#include "module_tree_model.h"
#include "tree/selection.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QSortFilterProxyModel>
#include <QTreeView>
#include <QVBoxLayout>

ModelPanel::ModelPanel(QWidget* parent) : QWidget(parent), m_model(new ModuleTreeModel(this)) {
    m_proxy = new QSortFilterProxyModel(this);
    m_proxy->setSourceModel(m_model);
    m_proxy->setRecursiveFilteringEnabled(true);
    m_proxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
    m_proxy->setFilterRole(ModuleTreeModel::PathRole);

    m_filter = new QLineEdit(this);
    m_filter->setPlaceholderText(tr("Filter modules (e.g. query, layer.3)"));
    m_filter->setClearButtonEnabled(true);
    m_filter->setToolTip(tr("Show only modules whose dotted path contains this text"));
    connect(m_filter, &QLineEdit::textChanged, m_proxy, &QSortFilterProxyModel::setFilterFixedString);

    m_quick = new QComboBox(this);
    m_quick->setToolTip(tr("Tick modules by a PEFT-style target list"));
    m_quick->addItem(tr("Quick select…"), QString());
    m_quick->addItem(tr("Attention query + value"), QStringLiteral("query,value"));
    m_quick->addItem(tr("All attention projections"), QStringLiteral("query,key,value,attention.output.dense"));
    m_quick->addItem(tr("All linear layers"), QStringLiteral("all-linear"));
    m_quick->addItem(tr("Clear"), QStringLiteral("-"));
    connect(m_quick, &QComboBox::activated, this, [this](int i) {
        const QString pattern = m_quick->itemData(i).toString();
        m_quick->setCurrentIndex(0);
        if (pattern.isEmpty()) return;
        if (pattern == QLatin1String("-")) {
            m_model->setCheckedPaths({});
            return;
        }
        dt::SelectionSpec spec;
        if (pattern == QLatin1String("all-linear")) spec.all_linear = true;
        else
            for (const auto& t : pattern.split(QLatin1Char(','))) spec.targets.push_back(t.toStdString());
        QStringList paths;
        for (const auto& p : dt::select_modules(m_model->tree(), spec)) paths << QString::fromStdString(p);
        m_model->setCheckedPaths(paths);
        Q_EMIT quickSelectionRequested(pattern);
    });

    m_view = new QTreeView(this);
    m_view->setModel(m_proxy);
    m_view->setUniformRowHeights(true);
    m_view->setAlternatingRowColors(true);
    m_view->header()->setSectionResizeMode(ModuleTreeModel::NameColumn, QHeaderView::ResizeToContents);
    m_view->header()->setStretchLastSection(true);

    m_summary = new QLabel(this);
    m_summary->setWordWrap(true);

    auto* top = new QHBoxLayout;
    top->addWidget(m_filter, 1);
    top->addWidget(m_quick);
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(4, 4, 4, 4);
    lay->addLayout(top);
    lay->addWidget(m_view, 1);
    lay->addWidget(m_summary);
    connect(m_model, &ModuleTreeModel::checkedChanged, this, &ModelPanel::updateSummary);
    connect(m_model, &QAbstractItemModel::modelReset, this, [this] { expandToDepth(2); });
    updateSummary();
}

void ModelPanel::expandToDepth(int depth) { m_view->expandToDepth(depth); }

void ModelPanel::updateSummary() {
    const auto& tree = m_model->tree();
    if (tree.nodes().empty()) {
        m_summary->setText(tr("No model loaded"));
        return;
    }
    const QLocale loc;
    const qint64 total = tree.total_params();
    const qint64 ticked = m_model->checkedParams();
    m_summary->setText(tr("%1 · %2 parameters · ticked: %3 modules, %4 parameters (%5%)")
                           .arg(QString::fromStdString(tree.architecture()))
                           .arg(loc.toString(total))
                           .arg(m_model->checkedPaths().size())
                           .arg(loc.toString(ticked))
                           .arg(total ? 100.0 * ticked / total : 0.0, 0, 'f', 2));
}
