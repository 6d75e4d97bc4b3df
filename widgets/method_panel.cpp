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
#include <QSpinBox>
#include <QVBoxLayout>

namespace {

struct Field {
    const char* method;
    const char* name;
    const char* kind;  // int | double | bool | choice
    double def, lo, hi;
    const char* choices;  // comma-separated for choice
    const char* tip;
};

// Hyperparameters shown per method, with PEFT's defaults and a one-line explanation each.
const Field kFields[] = {
    {"lora", "r", "int", 8, 1, 1024, "", "Rank of the update B·A: parameters grow linearly with it"},
    {"lora", "lora_alpha", "double", 8, 0.1, 4096, "", "Scale of the update is alpha / r (alpha / sqrt(r) with rsLoRA)"},
    {"lora", "lora_dropout", "double", 0.0, 0, 0.9, "", "Dropout on the LoRA branch's input during training"},
    {"lora", "use_rslora", "bool", 0, 0, 1, "", "Rank-stabilised scaling alpha / sqrt(r)"},
    {"lora", "use_dora", "bool", 0, 0, 1, "", "DoRA: also learn a magnitude per output feature"},
    {"adapter", "size", "int", 64, 1, 4096, "", "Bottleneck width m: 2·m·d + d + m parameters per site"},
    {"adapter", "placement", "choice", 0, 0, 0, "houlsby,pfeiffer,parallel", "Houlsby: after attention and FFN; Pfeiffer: after FFN; parallel: beside the FFN"},
    {"bitfit", "groups", "choice", 0, 0, 0, "all,query,key,value,attention_output,intermediate,output,layernorm", "Which biases train"},
    {"prefix", "num_virtual_tokens", "int", 20, 1, 512, "", "Prefix length P per layer (keys and values)"},
    {"prefix", "prefix_projection", "bool", 0, 0, 1, "", "Reparameterise the prefixes with an MLP while training"},
    {"prompt", "num_virtual_tokens", "int", 20, 1, 512, "", "Number of soft prompt vectors before the input"},
    {"last_layers", "num_layers", "int", 1, 1, 256, "", "How many of the last blocks train fully"},
    {"selective", "k", "int", 4, 1, 4096, "", "Modules drawn at random when none are ticked"},
};

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
    m_stack->setToolTip(tr("Methods combined with the one above; double-click to remove"));
    m_stack->setMaximumHeight(70);
    m_stack->setVisible(false);
    connect(m_stack, &QListWidget::itemDoubleClicked, this, [this](QListWidgetItem* item) { removeFromCombination(m_stack->row(item)); });
    lay->addWidget(combine);
    lay->addWidget(m_stack);
    lay->addWidget(m_budget);
    m_chart = new BudgetChart(this);
    m_chart->setToolTip(tr("Trainable parameters per layer and method; updates as modules are ticked"));
    lay->addWidget(m_chart, 1);
    connect(m_method, &QComboBox::currentIndexChanged, this, [this] {
        rebuildForm();
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
    for (const auto& info : dt::method_table())
        if (info.name == m)
            return std::find(info.fields.begin(), info.fields.end(), "target_modules") != info.fields.end();
    return false;
}

void MethodPanel::setBudgetText(const QString& html) { m_budget->setText(html); }

void MethodPanel::addToCombination(const nlohmann::json& methodSpec) {
    m_combination.push_back(methodSpec);
    QString text = QString::fromStdString(methodSpec.value("method", std::string("?")));
    if (methodSpec.contains("target_modules")) text += QStringLiteral(" on %1 module(s)").arg(methodSpec["target_modules"].size());
    m_stack->addItem(text);
    m_stack->item(m_stack->count() - 1)->setToolTip(QString::fromStdString(methodSpec.dump()));
    m_stack->setVisible(true);
    Q_EMIT specChanged();
}

void MethodPanel::removeFromCombination(int i) {
    if (i < 0 || i >= static_cast<int>(m_combination.size())) return;
    m_combination.erase(m_combination.begin() + i);
    delete m_stack->takeItem(i);
    m_stack->setVisible(!m_combination.empty());
    Q_EMIT specChanged();
}

void MethodPanel::rebuildForm() {
    while (m_form->rowCount() > 0) m_form->removeRow(0);
    m_fields.clear();
    const std::string m = method().toStdString();
    for (const auto& info : dt::method_table())
        if (info.name == m) m_summary->setText(QStringLiteral("%1. Trains %2.").arg(QString::fromStdString(info.summary), QString::fromStdString(info.formula)));
    for (const auto& f : kFields) {
        if (m != f.method) continue;
        QWidget* w = nullptr;
        const QString kind = QString::fromLatin1(f.kind);
        if (kind == QLatin1String("int")) {
            auto* s = new QSpinBox(m_formHost);
            s->setRange(static_cast<int>(f.lo), static_cast<int>(f.hi));
            s->setValue(static_cast<int>(f.def));
            connect(s, &QSpinBox::valueChanged, this, &MethodPanel::specChanged);
            w = s;
        } else if (kind == QLatin1String("double")) {
            auto* s = new QDoubleSpinBox(m_formHost);
            s->setRange(f.lo, f.hi);
            s->setDecimals(3);
            s->setValue(f.def);
            connect(s, &QDoubleSpinBox::valueChanged, this, &MethodPanel::specChanged);
            w = s;
        } else if (kind == QLatin1String("bool")) {
            auto* c = new QCheckBox(m_formHost);
            c->setChecked(f.def != 0);
            connect(c, &QCheckBox::toggled, this, &MethodPanel::specChanged);
            w = c;
        } else {
            auto* c = new QComboBox(m_formHost);
            c->addItems(QString::fromLatin1(f.choices).split(QLatin1Char(',')));
            connect(c, &QComboBox::currentIndexChanged, this, &MethodPanel::specChanged);
            w = c;
        }
        w->setToolTip(QString::fromUtf8(f.tip));
        m_form->addRow(QString::fromLatin1(f.name), w);
        m_fields.emplace_back(f.name, w);
    }
}

nlohmann::json MethodPanel::spec() const {
    nlohmann::json j = {{"method", method().toStdString()}};
    for (const auto& [name, w] : m_fields) {
        if (auto* s = qobject_cast<QSpinBox*>(w)) j[name] = s->value();
        else if (auto* d = qobject_cast<QDoubleSpinBox*>(w)) j[name] = d->value();
        else if (auto* c = qobject_cast<QCheckBox*>(w)) j[name] = c->isChecked();
        else if (auto* b = qobject_cast<QComboBox*>(w)) {
            const std::string v = b->currentText().toStdString();
            if (name == "groups") {
                if (v != "all") j[name] = {v};
            } else {
                j[name] = v;
            }
        }
    }
    return j;
}
