#include "task_panel.h"

#include "core/error.h"
#include "data/text_data.h"
#include "io/atomic_file.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QStandardPaths>
#include <QTableWidget>
#include <QVBoxLayout>

TaskPanel::TaskPanel(QWidget* parent) : QWidget(parent) {
    m_file = new QLineEdit(this);
    m_file->setPlaceholderText(tr("a .jsonl, .csv or .tsv file: type its path and press Enter, or Browse"));
    m_file->setClearButtonEnabled(true);
    auto* browse = new QPushButton(tr("Browse…"), this);
    m_preview = new QTableWidget(this);
    m_preview->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_preview->setToolTip(tr("The first rows of the file"));
    m_text = new QComboBox(this);
    m_pair = new QComboBox(this);
    m_label = new QComboBox(this);
    m_type = new QComboBox(this);
    m_type->addItems({tr("classification"), tr("regression")});
    m_formulation = new QComboBox(this);
    m_formulation->addItem(tr("Label words (the model's LM head at the mask; transfers between tasks)"), true);
    m_formulation->addItem(tr("Classification head (trained and saved with the delta)"), false);
    m_template = new QLineEdit(QStringLiteral("{text} It was [MASK] ."), this);
    m_template->setToolTip(tr("{text} (and {pair}) are replaced by the fields; the mask is where the label word is scored"));
    m_words = new QTableWidget(0, 2, this);
    m_words->setHorizontalHeaderLabels({tr("label"), tr("word")});
    m_words->horizontalHeader()->setStretchLastSection(true);
    m_words->setToolTip(tr("Each label's word: one token of the model's vocabulary"));
    m_words->setMaximumHeight(120);
    m_preview->setMinimumHeight(150);
    m_split = new QDoubleSpinBox(this);
    m_split->setRange(0.01, 0.5);
    m_split->setSingleStep(0.05);
    m_split->setValue(0.1);
    m_split->setToolTip(tr("Share of the file held out (seeded) for validation"));
    m_name = new QLineEdit(this);
    m_category = new QLineEdit(this);
    m_category->setPlaceholderText(tr("optional, e.g. sentiment (groups the transfer heatmap)"));
    m_status = new QLabel(this);
    m_status->setWordWrap(true);
    m_use = new QPushButton(tr("Use for Training"), this);
    m_use->setEnabled(false);
    m_inspect = new QPushButton(tr("Inspect Data…"), this);
    m_inspect->setToolTip(tr("Each example as the model reads it (template, tokens, scored positions), the length histogram "
                             "with the examples cut at max_length, the label distribution, and lines with nothing to train on"));
    m_inspect->setEnabled(false);

    auto* fileRow = new QHBoxLayout;
    fileRow->addWidget(m_file, 1);
    fileRow->addWidget(browse);
    auto* form = new QFormLayout;
    form->addRow(tr("Text field"), m_text);
    form->addRow(tr("Pair field"), m_pair);
    form->addRow(tr("Label field"), m_label);
    form->addRow(tr("Task"), m_type);
    form->addRow(tr("Formulation"), m_formulation);
    form->addRow(tr("Template"), m_template);
    form->addRow(tr("Label words"), m_words);
    form->addRow(tr("Validation split"), m_split);
    form->addRow(tr("Name"), m_name);
    form->addRow(tr("Category"), m_category);
    auto* lay = new QVBoxLayout(this);
    lay->addLayout(fileRow);
    lay->addWidget(m_preview, 1);
    lay->addLayout(form);
    lay->addWidget(m_status);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_inspect);
    buttons->addWidget(m_use, 1);
    lay->addLayout(buttons);

    connect(browse, &QPushButton::clicked, this, [this] {
        // Start where the last file was, else in Documents (not the working directory).
        const QString start = !m_path.isEmpty() ? QFileInfo(m_path).absolutePath()
                                                : QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation);
        const QString f = QFileDialog::getOpenFileName(this, tr("Open Task Data"), start, tr("Task data (*.jsonl *.csv *.tsv)"));
        if (!f.isEmpty() && !loadFile(f)) m_status->setText(m_error);
    });
    connect(m_file, &QLineEdit::returnPressed, this, [this] {  // a typed path is loaded, not ignored
        const QString f = m_file->text().trimmed();
        if (!f.isEmpty() && f != m_path && !loadFile(f)) m_status->setText(m_error);
    });
    connect(m_inspect, &QPushButton::clicked, this, [this] {
        if (validate()) Q_EMIT inspectRequested();
        else m_status->setText(m_error);
    });
    connect(m_label, &QComboBox::currentIndexChanged, this, &TaskPanel::refreshLabels);
    auto sync = [this] {
        const bool words = m_formulation->currentData().toBool() && m_type->currentIndex() == 0;
        m_template->setEnabled(words);
        m_words->setEnabled(words);
        m_formulation->setEnabled(m_type->currentIndex() == 0);
    };
    connect(m_formulation, &QComboBox::currentIndexChanged, this, sync);
    connect(m_type, &QComboBox::currentIndexChanged, this, sync);
    connect(m_use, &QPushButton::clicked, this, [this] {
        if (validate()) Q_EMIT useRequested();
        else m_status->setText(m_error);
    });
    sync();
}

bool TaskPanel::loadFile(const QString& path) {
    dt::TablePreview p;
    try {
        p = dt::preview_table(path.toStdString());
    } catch (const dt::Error& e) {
        m_error = QString::fromStdString(e.what());
        return false;
    }
    if (p.columns.empty() || p.rows.empty()) {
        m_error = tr("%1: no rows").arg(path);
        return false;
    }
    m_path = QFileInfo(path).absoluteFilePath();
    m_file->setText(m_path);
    m_columns.clear();
    for (const auto& c : p.columns) m_columns << QString::fromStdString(c);
    m_distinct.clear();
    for (const auto& d : p.distinct) {
        QStringList v;
        for (const auto& x : d) v << QString::fromStdString(x);
        m_distinct.push_back(v);
    }
    m_preview->clear();
    m_preview->setColumnCount(m_columns.size());
    m_preview->setRowCount(static_cast<int>(p.rows.size()));
    m_preview->setHorizontalHeaderLabels(m_columns);
    for (int r = 0; r < static_cast<int>(p.rows.size()); ++r)
        for (int c = 0; c < m_columns.size(); ++c)
            m_preview->setItem(r, c, new QTableWidgetItem(QString::fromStdString(p.rows[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)])));
    m_preview->resizeColumnsToContents();
    for (QComboBox* b : {m_text, m_pair, m_label}) {
        b->blockSignals(true);
        b->clear();
    }
    m_pair->addItem(tr("(none)"), QString());
    for (const QString& c : m_columns) {
        m_text->addItem(c, c);
        m_pair->addItem(c, c);
        m_label->addItem(c, c);
    }
    // Usual names first: text/sentence, label.
    for (const char* t : {"text", "sentence", "sentence1", "question", "premise"})
        if (m_columns.contains(QLatin1String(t))) {
            m_text->setCurrentText(QLatin1String(t));
            break;
        }
    for (const char* t : {"pair", "sentence2", "hypothesis"})
        if (m_columns.contains(QLatin1String(t))) {
            m_pair->setCurrentIndex(m_pair->findData(QString::fromLatin1(t)));
            break;
        }
    if (m_columns.contains(QStringLiteral("label"))) m_label->setCurrentText(QStringLiteral("label"));
    else m_label->setCurrentIndex(m_columns.size() - 1);
    for (QComboBox* b : {m_text, m_pair, m_label}) b->blockSignals(false);
    if (m_name->text().isEmpty()) m_name->setText(QFileInfo(path).completeBaseName());
    refreshLabels();
    m_status->setText(tr("%1 columns; %2 rows scanned").arg(m_columns.size()).arg(p.scanned));
    m_use->setEnabled(true);
    m_inspect->setEnabled(true);
    m_error.clear();
    return true;
}

QStringList TaskPanel::labels() const {
    const int c = static_cast<int>(m_columns.indexOf(m_label->currentData().toString()));
    if (c < 0 || c >= static_cast<int>(m_distinct.size())) return {};
    QStringList out = m_distinct[static_cast<std::size_t>(c)];
    out.removeAll(QString());
    out.sort();
    return out;
}

void TaskPanel::refreshLabels() {
    const QStringList ls = labels();
    m_words->setRowCount(ls.size());
    for (int i = 0; i < ls.size(); ++i) {
        auto* l = new QTableWidgetItem(ls[i]);
        l->setFlags(l->flags() & ~Qt::ItemIsEditable);
        m_words->setItem(i, 0, l);
        if (!m_words->item(i, 1)) m_words->setItem(i, 1, new QTableWidgetItem(ls[i]));
        else m_words->item(i, 1)->setText(ls[i]);
    }
}

void TaskPanel::setFields(const QString& text, const QString& pair, const QString& label) {
    m_text->setCurrentIndex(m_text->findData(text));
    m_pair->setCurrentIndex(std::max(0, m_pair->findData(pair)));
    m_label->setCurrentIndex(m_label->findData(label));
}

void TaskPanel::setLabelWords(bool on) { m_formulation->setCurrentIndex(on ? 0 : 1); }
void TaskPanel::setRegression(bool on) { m_type->setCurrentIndex(on ? 1 : 0); }
void TaskPanel::setTemplate(const QString& t) { m_template->setText(t); }
void TaskPanel::setName(const QString& name, const QString& category) {
    m_name->setText(name);
    m_category->setText(category);
}

void TaskPanel::setLabelWord(const QString& label, const QString& word) {
    for (int i = 0; i < m_words->rowCount(); ++i)
        if (m_words->item(i, 0)->text() == label) m_words->item(i, 1)->setText(word);
}

int TaskPanel::previewRows() const { return m_preview->rowCount(); }

nlohmann::json TaskPanel::taskJson() const {
    nlohmann::json t = {{"train", m_path.toStdString()},
                        {"format", QFileInfo(m_path).suffix().toLower().toStdString()},
                        {"validation_split", m_split->value()},
                        {"name", m_name->text().trimmed().toStdString()}};
    nlohmann::json fields = {{"text", m_text->currentData().toString().toStdString()}, {"label", m_label->currentData().toString().toStdString()}};
    if (!m_pair->currentData().toString().isEmpty()) fields["pair"] = m_pair->currentData().toString().toStdString();
    t["fields"] = fields;
    if (!m_category->text().trimmed().isEmpty()) t["category"] = m_category->text().trimmed().toStdString();
    if (m_type->currentIndex() == 1) {
        t["regression"] = true;
        return t;
    }
    nlohmann::json labels = nlohmann::json::array();
    for (const QString& l : this->labels()) labels.push_back(l.toStdString());
    t["labels"] = labels;
    if (m_formulation->currentData().toBool()) {
        t["template"] = m_template->text().toStdString();
        nlohmann::json words = nlohmann::json::object();
        for (int i = 0; i < m_words->rowCount(); ++i) words[m_words->item(i, 0)->text().toStdString()] = m_words->item(i, 1)->text().trimmed().toStdString();
        t["label_words"] = words;
    }
    return t;
}

bool TaskPanel::validate() {
    m_error.clear();
    if (m_path.isEmpty()) m_error = tr("Open a data file first");
    else if (m_text->currentData() == m_label->currentData()) m_error = tr("The text field and the label field are the same column");
    else if (m_pair->currentData() == m_text->currentData()) m_error = tr("The pair field and the text field are the same column");
    else if (m_name->text().trimmed().isEmpty()) m_error = tr("Give the task a name");
    else if (m_type->currentIndex() == 0 && labels().size() < 2) m_error = tr("The label column has fewer than two distinct values");
    else if (m_type->currentIndex() == 0 && m_formulation->currentData().toBool()) {
        if (!m_template->text().contains(QStringLiteral("{text}"))) m_error = tr("The template needs {text}");
        for (int i = 0; i < m_words->rowCount() && m_error.isEmpty(); ++i)
            if (m_words->item(i, 1)->text().trimmed().isEmpty()) m_error = tr("Label '%1' has no word").arg(m_words->item(i, 0)->text());
    }
    m_status->setText(m_error);
    return m_error.isEmpty();
}

QString TaskPanel::writeTask(const QString& dir) {
    if (!validate()) return {};
    const QString path = dir + QStringLiteral("/task.json");
    try {
        dt::make_dirs(dir.toStdString());
        dt::write_file_atomic(path.toStdString(), taskJson().dump(2) + "\n");
    } catch (const dt::Error& e) {
        m_error = QString::fromStdString(e.what());
        m_status->setText(m_error);
        return {};
    }
    m_status->setText(tr("Wrote %1").arg(path));
    return path;
}
