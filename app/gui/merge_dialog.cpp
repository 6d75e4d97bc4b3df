#include "merge_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

MergeDeltasDialog::MergeDeltasDialog(const QStringList& sources, const QStringList& labels, QWidget* parent)
    : QDialog(parent), m_sources(sources) {
    setWindowTitle(tr("Merge Deltas"));
    m_table = new QTableWidget(static_cast<int>(sources.size()), 2, this);
    m_table->setHorizontalHeaderLabels({tr("Delta (run or folder)"), tr("Weight")});
    m_table->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    m_table->verticalHeader()->hide();
    for (int i = 0; i < sources.size(); ++i) {
        auto* item = new QTableWidgetItem(i < labels.size() && !labels[i].isEmpty() ? labels[i] : QFileInfo(sources[i]).fileName());
        item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable);
        item->setCheckState(Qt::Unchecked);
        item->setToolTip(sources[i]);
        m_table->setItem(i, 0, item);
        auto* w = new QDoubleSpinBox(m_table);
        w->setRange(-10, 10);
        w->setDecimals(3);
        w->setSingleStep(0.1);
        w->setValue(1.0);
        m_table->setCellWidget(i, 1, w);
    }
    m_combination = new QComboBox(this);
    m_combination->addItems({"linear", "cat", "svd", "ties", "dare_linear", "dare_ties", "magnitude_prune"});
    m_combination->setToolTip(tr("PEFT's add_weighted_adapter: linear and the pruned merges need equal ranks; cat adds them; svd truncates"));
    m_density = new QDoubleSpinBox(this);
    m_density->setRange(0.01, 1.0);
    m_density->setSingleStep(0.05);
    m_density->setValue(0.5);
    m_density->setToolTip(tr("Share of each tensor's entries kept (TIES: the largest; DARE: at random)"));
    m_svdRank = new QSpinBox(this);
    m_svdRank->setRange(0, 4096);
    m_svdRank->setSpecialValueText(tr("largest source rank"));
    m_sign = new QComboBox(this);
    m_sign->addItems({"total", "frequency"});
    m_sign->setToolTip(tr("TIES' sign election: the sign of the entries' sum, or of their sign count"));
    m_seed = new QSpinBox(this);
    m_seed->setRange(0, 1000000);
    m_seed->setToolTip(tr("Seed of DARE's random masks"));
    m_name = new QLineEdit(QStringLiteral("merged"), this);
    m_name->setToolTip(tr("Name of the merged delta: its folder under the work folder and its transfer row"));
    auto* form = new QFormLayout;
    form->addRow(tr("Combination:"), m_combination);
    form->addRow(tr("Density:"), m_density);
    form->addRow(tr("SVD rank:"), m_svdRank);
    form->addRow(tr("Majority sign:"), m_sign);
    form->addRow(tr("Seed:"), m_seed);
    form->addRow(tr("Name:"), m_name);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    buttons->button(QDialogButtonBox::Ok)->setText(tr("Merge"));
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    auto* note = new QLabel(tr("The merged delta is written in PEFT's format and added as a row of the Transfer tab's heatmap."), this);
    note->setWordWrap(true);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(new QLabel(tr("Tick at least two deltas trained on the open model:"), this));
    layout->addWidget(m_table, 1);
    layout->addLayout(form);
    layout->addWidget(note);
    layout->addWidget(buttons);
    auto update = [this, ok = buttons->button(QDialogButtonBox::Ok)] {
        updateFields();
        ok->setEnabled(options().sources.size() >= 2 && !m_name->text().trimmed().isEmpty());
    };
    connect(m_combination, &QComboBox::currentTextChanged, this, update);
    connect(m_table, &QTableWidget::itemChanged, this, update);
    connect(m_name, &QLineEdit::textChanged, this, update);
    update();
    resize(560, 440);
}

void MergeDeltasDialog::updateFields() {
    const QString c = m_combination->currentText();
    const bool pruned = c == "ties" || c.startsWith("dare") || c == "magnitude_prune";
    m_density->setEnabled(pruned);
    m_svdRank->setEnabled(c == "svd");
    m_sign->setEnabled(c == "ties" || c == "dare_ties");
    m_seed->setEnabled(c.startsWith("dare"));
}

dt::MergeOptions MergeDeltasDialog::options() const {
    dt::MergeOptions o;
    for (int i = 0; i < m_table->rowCount(); ++i) {
        if (m_table->item(i, 0)->checkState() != Qt::Checked) continue;
        o.sources.push_back(m_sources[i].toStdString());
        o.weights.push_back(static_cast<QDoubleSpinBox*>(m_table->cellWidget(i, 1))->value());
    }
    o.combination = m_combination->currentText().toStdString();
    o.density = m_density->isEnabled() ? m_density->value() : 1.0;
    o.svd_rank = m_svdRank->value();
    o.majority_sign = m_sign->currentText().toStdString();
    o.seed = static_cast<std::uint64_t>(m_seed->value());
    return o;
}

QString MergeDeltasDialog::mergedName() const { return m_name->text().trimmed(); }

void MergeDeltasDialog::setSource(int i, bool ticked, double weight) {
    m_table->item(i, 0)->setCheckState(ticked ? Qt::Checked : Qt::Unchecked);
    static_cast<QDoubleSpinBox*>(m_table->cellWidget(i, 1))->setValue(weight);
}

void MergeDeltasDialog::setCombination(const QString& c) { m_combination->setCurrentText(c); }
