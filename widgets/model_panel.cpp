#include "model_panel.h"

#include "module_tree_model.h"
#include "tree/selection.h"

#include <QCheckBox>

#include <algorithm>
#include <QComboBox>
#include <QPushButton>
#include <QRegularExpression>
#include <QShortcut>
#include <QSpinBox>
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
    m_filter->setPlaceholderText(tr("Filter: text or PEFT pattern (query, .*\\.value)"));
    m_filter->setClearButtonEnabled(true);
    m_filter->setToolTip(tr("Show only modules whose path contains this text, or matches it as a regular expression; "
                            "Enter or 'Tick matches' ticks what a PEFT target_modules of this value would select"));
    m_foldBox = new QCheckBox(tr("Fold layers"), this);
    m_foldBox->setChecked(true);
    m_foldBox->setToolTip(tr("Show identical repeated layers as one line; a tick there ticks every layer of the run"));
    connect(m_foldBox, &QCheckBox::toggled, this, [this](bool on) {
        if (m_filter->text().isEmpty()) {
            m_model->setFolded(on);
            expandToDepth(2);
        }
    });
    connect(m_filter, &QLineEdit::textChanged, this, [this](const QString& t) {
        // Filtering searches every layer, so the tree unfolds while the filter is set.
        const bool fold = t.isEmpty() && m_foldBox->isChecked();
        if (m_model->folded() != fold) {
            m_model->setFolded(fold);
            expandToDepth(2);
        }
        const bool regex = t.contains(QRegularExpression(QStringLiteral("[\\\\*+?()\\[\\]|^$]")));
        if (regex) m_proxy->setFilterRegularExpression(QRegularExpression(QStringLiteral("^(?:%1)$").arg(t), QRegularExpression::CaseInsensitiveOption));
        else m_proxy->setFilterFixedString(t);
        if (!t.isEmpty()) m_view->expandAll();  // the matches are the leaves: show them
    });
    auto* tick = new QPushButton(tr("Add matches"), this);
    tick->setToolTip(tr("Also tick every module the filter selects as a PEFT target_modules value (Enter)"));
    connect(tick, &QPushButton::clicked, this, [this] { tickMatches(m_filter->text(), true); });
    auto* only = new QPushButton(tr("Only matches"), this);
    only->setToolTip(tr("Tick exactly the modules the filter selects, unticking the others (Ctrl+Z undoes it)"));
    connect(only, &QPushButton::clicked, this, [this] { tickMatches(m_filter->text(), false); });
    connect(m_filter, &QLineEdit::returnPressed, this, [this] { tickMatches(m_filter->text(), true); });
    auto* undoKey = new QShortcut(QKeySequence::Undo, this, [this] { undo(); }, Qt::WidgetWithChildrenShortcut);
    auto* redoKey = new QShortcut(QKeySequence::Redo, this, [this] { redo(); }, Qt::WidgetWithChildrenShortcut);
    (void)undoKey;
    (void)redoKey;

    m_quick = new QComboBox(this);
    m_quick->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_quick->setMinimumContentsLength(10);
    m_quick->setToolTip(tr("Tick modules by a PEFT-style target list"));
    m_quick->addItem(tr("Quick select…"), QString());
    m_quick->addItem(tr("Attention query + value"), QStringLiteral("query,value"));
    m_quick->addItem(tr("All attention projections"), QStringLiteral("query,key,value,attention.output.dense"));
    m_quick->addItem(tr("Attention output"), QStringLiteral("attention.output.dense,o_proj"));
    m_quick->addItem(tr("Feed-forward (FFN)"), QStringLiteral(".*(\\.intermediate\\.dense|\\.layer\\.\\d+\\.output\\.dense|\\.mlp\\.\\w+_proj)"));
    m_quick->addItem(tr("All linear layers"), QStringLiteral("all-linear"));
    m_quick->addItem(tr("LayerNorms"), QStringLiteral(".*([Ll]ayer[Nn]orm|_norm)"));
    // Biases are parameters, not modules: this one switches the method to BitFit (all biases).
    m_quick->addItem(tr("All biases (BitFit)"), QStringLiteral("biases"));
    m_quick->addItem(tr("Clear"), QStringLiteral("-"));
    connect(m_quick, &QComboBox::activated, this, [this](int i) {
        const QString pattern = m_quick->itemData(i).toString();
        m_quick->setCurrentIndex(0);
        quickSelect(pattern);
    });


    m_view = new QTreeView(this);
    m_view->setModel(m_proxy);
    m_view->setUniformRowHeights(true);
    m_view->setAlternatingRowColors(true);
    m_view->header()->setSectionResizeMode(ModuleTreeModel::NameColumn, QHeaderView::ResizeToContents);
    // The numbers and the tensor shapes are never cut: each column is as wide as its longest entry
    // and the view scrolls sideways (a stretched last column elided the shapes).
    for (int c : {ModuleTreeModel::ParamsColumn, ModuleTreeModel::TrainableColumn, ModuleTreeModel::ShapeColumn})
        m_view->header()->setSectionResizeMode(c, QHeaderView::ResizeToContents);
    m_view->header()->setStretchLastSection(false);

    m_summary = new QLabel(this);
    m_summary->setWordWrap(true);
    m_fromLayer = new QSpinBox(this);
    m_toLayer = new QSpinBox(this);
    for (QSpinBox* b : {m_fromLayer, m_toLayer}) b->setRange(0, 9999);
    m_toLayer->setValue(9999);
    auto* limit = new QPushButton(tr("Keep"), this);
    limit->setToolTip(tr("Untick every ticked module outside these blocks (PEFT's layers_to_transform)"));
    connect(limit, &QPushButton::clicked, this, [this] { limitToLayers(m_fromLayer->value(), m_toLayer->value()); });

    auto* top = new QHBoxLayout;
    top->addWidget(m_filter, 1);
    top->addWidget(tick);
    top->addWidget(only);
    auto* second = new QHBoxLayout;
    second->addWidget(m_quick, 1);
    second->addWidget(m_foldBox);
    auto* third = new QHBoxLayout;  // its own row, so the dock stays narrow enough for a 1280 px screen
    third->addWidget(new QLabel(tr("Layers"), this));
    third->addWidget(m_fromLayer);
    third->addWidget(new QLabel(QStringLiteral("–"), this));
    third->addWidget(m_toLayer);
    third->addWidget(limit);
    third->addStretch(1);
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(4, 4, 4, 4);
    lay->addLayout(top);
    lay->addLayout(second);
    lay->addLayout(third);
    lay->addWidget(m_view, 1);
    lay->addWidget(m_summary);
    connect(m_model, &ModuleTreeModel::checkedChanged, this, &ModelPanel::updateSummary);
    connect(m_model, &ModuleTreeModel::checkedChanged, this, &ModelPanel::recordTicks);
    connect(m_model, &ModuleTreeModel::treeChanged, this, [this] {
        m_undo.clear();  // another model: its ticks have no history
        m_redo.clear();
        m_current.clear();
        m_replaying = true;  // the checkedChanged that follows is no user change
    });
    connect(m_model, &QAbstractItemModel::modelReset, this, [this] {
        expandToDepth(2);
        // The layer range runs over the model's own blocks (PEFT's layer index rule), not to 9999.
        int last = -1;
        for (const auto& n : m_model->tree().nodes()) last = std::max(last, dt::layer_index_of(n.path, {}));
        const int top = std::max(last, 0);
        const bool wasAll = m_toLayer->value() >= m_toLayer->maximum();
        for (QSpinBox* b : {m_fromLayer, m_toLayer}) b->setRange(0, top);
        if (wasAll || m_toLayer->value() > top) m_toLayer->setValue(top);
    });
    updateSummary();
}

void ModelPanel::expandToDepth(int depth) { m_view->expandToDepth(depth); }

void ModelPanel::quickSelect(const QString& pattern) {
    if (pattern.isEmpty()) return;
    if (pattern == QLatin1String("-") || pattern == QLatin1String("biases")) {
        m_model->setCheckedPaths({});
    } else if (pattern == QLatin1String("all-linear")) {
        dt::SelectionSpec spec;
        spec.all_linear = true;
        QStringList paths;
        for (const auto& p : dt::select_modules(m_model->tree(), spec)) paths << QString::fromStdString(p);
        applySelection(paths);
    } else {
        tickMatches(pattern);
    }
    if (pattern != QLatin1String("-")) Q_EMIT quickSelectionRequested(pattern);
}

void ModelPanel::applySelection(QStringList paths) {
    const bool ranged = m_fromLayer->value() > m_fromLayer->minimum() || m_toLayer->value() < m_toLayer->maximum();
    if (ranged) {
        QStringList kept;
        for (const QString& p : paths) {
            const int layer = dt::layer_index_of(p.toStdString(), {});
            if (layer < 0 || (layer >= m_fromLayer->value() && layer <= m_toLayer->value())) kept << p;
        }
        paths = kept;
    }
    m_model->setCheckedPaths(paths);
}

void ModelPanel::recordTicks() {
    const QStringList now = m_model->checkedPaths();
    if (m_replaying) {
        m_replaying = false;
        m_current = now;
        return;
    }
    if (now == m_current) return;
    m_undo.append(m_current);
    if (m_undo.size() > 200) m_undo.removeFirst();
    m_redo.clear();
    m_current = now;
}

// Undo and redo: the newest state of `from` becomes current, the current one goes to `to`.
bool ModelPanel::replay(QList<QStringList>& from, QList<QStringList>& to) {
    if (from.isEmpty()) return false;
    to.append(m_current);
    m_current = from.takeLast();
    m_replaying = true;
    m_model->setCheckedPaths(m_current);
    m_replaying = false;  // also when setCheckedPaths changed nothing and emitted no signal
    return true;
}

bool ModelPanel::undo() { return replay(m_undo, m_redo); }
bool ModelPanel::redo() { return replay(m_redo, m_undo); }

int ModelPanel::tickMatches(const QString& pattern, bool add) {
    const QString p = pattern.trimmed();
    if (p.isEmpty()) return 0;
    dt::SelectionSpec spec;
    if (p.contains(QRegularExpression(QStringLiteral("[\\\\*+?()\\[\\]|^$]")))) {
        spec.target_regex = p.toStdString();
    } else {
        for (const auto& t : p.split(QRegularExpression(QStringLiteral("[,\\s]+")), Qt::SkipEmptyParts)) spec.targets.push_back(t.toStdString());
    }
    std::vector<std::string> found;
    try {
        found = dt::select_modules(m_model->tree(), spec);
    } catch (const std::exception& e) {
        m_summary->setText(tr("Pattern: %1").arg(QString::fromUtf8(e.what())));
        return 0;
    }
    if (found.empty()) {
        m_summary->setText(tr("No module matches %1").arg(p));
        return 0;
    }
    QStringList paths = add ? m_model->checkedPaths() : QStringList();
    for (const auto& f : found)
        if (!paths.contains(QString::fromStdString(f))) paths << QString::fromStdString(f);
    applySelection(paths);
    return static_cast<int>(found.size());
}

void ModelPanel::limitToLayers(int first, int last) {
    QStringList kept;
    for (const QString& p : m_model->checkedPaths()) {
        const int layer = dt::layer_index_of(p.toStdString(), {});
        if (layer < 0 || (layer >= first && layer <= last)) kept << p;
    }
    m_model->setCheckedPaths(kept);
}

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
                           .arg(total ? 100.0 * ticked / total : 0.0, 0, 'f', 2) +
                       (m_tickNote.isEmpty() || m_model->checkedPaths().isEmpty() ? QString() : tr(" (%1)").arg(m_tickNote)));
}

void ModelPanel::setTickNote(const QString& note) {
    if (note == m_tickNote) return;
    m_tickNote = note;
    updateSummary();
}

QString ModelPanel::summaryText() const { return m_summary->text(); }
