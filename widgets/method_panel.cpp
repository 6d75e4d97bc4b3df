#include "method_panel.h"

#include "budget_chart.h"

#include "delta/method.h"

#include <QCheckBox>
#include <QComboBox>
#include <QListWidget>
#include <QPushButton>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QVBoxLayout>

namespace {

// An int option without a default (adapter size, selective k) shows one step below its minimum as
// "auto"/"off", and the spec then leaves it out so the engine derives it.
QString unsetText(const dt::OptionDecl& o) { return o.name == "k" ? QObject::tr("off") : QObject::tr("auto"); }

QString tooltipOf(const dt::OptionDecl& o) {
    QString tip = QString::fromStdString(o.help);
    if (!o.peft.empty()) tip += QObject::tr("\nPEFT: %1").arg(QString::fromStdString(o.peft));
    return tip;
}

}  // namespace

MethodPanel::MethodPanel(QWidget* parent) : QWidget(parent), m_method(new QComboBox(this)), m_formHost(new QWidget(this)) {
    for (const auto& m : dt::method_table()) {
        m_method->addItem(QString::fromStdString(m.name), QString::fromStdString(m.name));
        m_method->setItemData(m_method->count() - 1,
                              QStringLiteral("%1 (%2)\nTrains: %3").arg(QString::fromStdString(m.summary), QString::fromStdString(m.family),
                                                                        QString::fromStdString(m.formula)),
                              Qt::ToolTipRole);
    }
    m_summary = new QLabel(this);
    m_summary->setWordWrap(true);
    m_budget = new QLabel(this);
    m_budget->setWordWrap(true);
    m_budget->setTextFormat(Qt::RichText);
    m_form = new QFormLayout(m_formHost);
    auto* lay = new QVBoxLayout(this);
    auto* top = new QFormLayout;
    top->addRow(tr("Method"), m_method);
    lay->addLayout(top);
    lay->addWidget(m_summary);
    lay->addWidget(m_formHost);
    auto* combine = new QPushButton(tr("Add to Combination"), this);
    combine->setToolTip(tr("Set this method (with the ticked modules) aside to train together with the next one, "
                           "e.g. LoRA on attention + BitFit; two methods may not train the same parameter"));
    connect(combine, &QPushButton::clicked, this, &MethodPanel::combineRequested);
    m_stack = new QListWidget(this);
    m_stack->setToolTip(tr("Methods combined with the one above; select one and Remove (or double-click it)"));
    m_stack->setMaximumHeight(70);
    m_stack->setVisible(false);
    connect(m_stack, &QListWidget::itemDoubleClicked, this, [this](QListWidgetItem* item) { removeFromCombination(m_stack->row(item)); });
    m_removeCombined = new QPushButton(tr("Remove from Combination"), this);
    m_removeCombined->setToolTip(tr("Remove the selected combined method (the last one when none is selected)"));
    m_removeCombined->setVisible(false);
    connect(m_removeCombined, &QPushButton::clicked, this, [this] {
        const int row = m_stack->currentRow();
        removeFromCombination(row >= 0 ? row : static_cast<int>(m_combination.size()) - 1);
    });
    lay->addWidget(combine);
    lay->addWidget(m_stack);
    lay->addWidget(m_removeCombined);
    lay->addWidget(m_budget);
    m_chart = new BudgetChart(this);
    m_chart->setToolTip(tr("Trainable parameters per layer and method; updates as modules are ticked"));
    lay->addWidget(m_chart, 1);
    connect(m_method, &QComboBox::currentIndexChanged, this, [this] {
        nlohmann::json values = spec();  // the fields still show m_shown's values
        values.erase("method");
        if (!m_shown.empty()) m_saved[m_shown] = values;
        rebuildForm();
        if (auto it = m_saved.find(method().toStdString()); it != m_saved.end()) applyValues(it->second);
        Q_EMIT specChanged();
    });
    rebuildForm();
}

QString MethodPanel::method() const { return m_method->currentData().toString(); }

void MethodPanel::setMethod(const QString& name) {
    const int i = m_method->findData(name);
    if (i >= 0) m_method->setCurrentIndex(i);
}

bool MethodPanel::usesTargets() const {
    const std::string m = method().toStdString();
    return dt::find_method(m, "method panel").has_option("target_modules");
}

void MethodPanel::setBudgetText(const QString& html) { m_budget->setText(html); }

void MethodPanel::addToCombination(const nlohmann::json& methodSpec) {
    m_combination.push_back(methodSpec);
    QString text = QString::fromStdString(methodSpec.value("method", std::string("?")));
    if (methodSpec.contains("target_modules")) text += QStringLiteral(" on %1 module(s)").arg(methodSpec["target_modules"].size());
    m_stack->addItem(text);
    m_stack->item(m_stack->count() - 1)->setToolTip(QString::fromStdString(methodSpec.dump()));
    m_stack->setVisible(true);
    m_removeCombined->setVisible(true);
    Q_EMIT specChanged();
}

void MethodPanel::removeFromCombination(int i) {
    if (i < 0 || i >= static_cast<int>(m_combination.size())) return;
    m_combination.erase(m_combination.begin() + i);
    delete m_stack->takeItem(i);
    m_stack->setVisible(!m_combination.empty());
    m_removeCombined->setVisible(!m_combination.empty());
    Q_EMIT specChanged();
}

void MethodPanel::applyValues(const nlohmann::json& values) {
    for (const auto& [name, w] : m_fields) {
        if (!values.contains(name)) continue;
        const nlohmann::json& v = values[name];
        const QSignalBlocker block(w);
        if (auto* s = qobject_cast<QSpinBox*>(w); s && v.is_number()) s->setValue(v.get<int>());
        else if (auto* d = qobject_cast<QDoubleSpinBox*>(w); d && v.is_number()) d->setValue(v.get<double>());
        else if (auto* c = qobject_cast<QCheckBox*>(w); c && v.is_boolean()) c->setChecked(v.get<bool>());
        else if (auto* b = qobject_cast<QComboBox*>(w)) {
            const nlohmann::json one = v.is_array() && !v.empty() ? v[0] : v;
            if (one.is_string()) b->setCurrentIndex(std::max(0, b->findData(QString::fromStdString(one.get<std::string>()))));
        }
    }
}

void MethodPanel::rebuildForm() {
    while (m_form->rowCount() > 0) m_form->removeRow(0);
    m_fields.clear();
    const std::string m = method().toStdString();
    m_shown = m;
    for (const auto& info : dt::method_table())
        if (info.name == m) m_summary->setText(QStringLiteral("%1. Trains %2.").arg(QString::fromStdString(info.summary), QString::fromStdString(info.formula)));
    for (const auto& o : dt::find_method(m, "method panel").options)
        if (o.in_form) addField(o);
}

// One row of the form, built from the engine's declaration of the option.
void MethodPanel::addField(const dt::OptionDecl& o) {
    QWidget* w = nullptr;
    if (o.kind == "int") {
        auto* s = new QSpinBox(m_formHost);
        const bool unset = o.default_value.is_null();
        s->setRange(static_cast<int>(o.min) - (unset ? 1 : 0), static_cast<int>(std::min(o.max, 1e9)));
        if (unset) s->setSpecialValueText(unsetText(o));
        s->setValue(unset ? s->minimum() : o.default_value.get<int>());
        connect(s, &QSpinBox::valueChanged, this, &MethodPanel::specChanged);
        w = s;
    } else if (o.kind == "number") {
        auto* s = new QDoubleSpinBox(m_formHost);
        s->setRange(o.min, o.max);
        s->setDecimals(3);
        s->setValue(o.default_value.get<double>());
        connect(s, &QDoubleSpinBox::valueChanged, this, &MethodPanel::specChanged);
        w = s;
    } else if (o.kind == "bool") {
        auto* c = new QCheckBox(m_formHost);
        c->setChecked(o.default_value.get<bool>());
        connect(c, &QCheckBox::toggled, this, &MethodPanel::specChanged);
        w = c;
    } else {  // choice, or choices shown as "all" or one of them
        auto* c = new QComboBox(m_formHost);
        if (o.kind == "choices") c->addItem(tr("all"), QString());
        for (const auto& v : o.choices) c->addItem(QString::fromStdString(v), QString::fromStdString(v));
        if (o.default_value.is_string()) c->setCurrentIndex(c->findData(QString::fromStdString(o.default_value.get<std::string>())));
        connect(c, &QComboBox::currentIndexChanged, this, &MethodPanel::specChanged);
        w = c;
    }
    w->setToolTip(tooltipOf(o));
    w->setObjectName(QString::fromStdString(o.name));
    m_form->addRow(QString::fromStdString(o.name), w);
    m_fields.emplace_back(o.name, w);
}

nlohmann::json MethodPanel::spec() const {
    nlohmann::json j = {{"method", method().toStdString()}};
    for (const auto& [name, w] : m_fields) {
        if (auto* s = qobject_cast<QSpinBox*>(w)) {
            if (s->specialValueText().isEmpty() || s->value() != s->minimum()) j[name] = s->value();
        } else if (auto* d = qobject_cast<QDoubleSpinBox*>(w)) {
            j[name] = d->value();
        } else if (auto* c = qobject_cast<QCheckBox*>(w)) {
            j[name] = c->isChecked();
        } else if (auto* b = qobject_cast<QComboBox*>(w)) {
            const std::string v = b->currentData().toString().toStdString();
            if (b->itemText(0) == tr("all") && b->currentIndex() == 0) continue;  // a list option left at "all"
            j[name] = b->itemText(0) == tr("all") ? nlohmann::json::array({v}) : nlohmann::json(v);
        }
    }
    return j;
}
