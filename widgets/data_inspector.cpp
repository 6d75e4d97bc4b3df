#include "data_inspector.h"

#include "plot_style.h"

#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QTextBrowser>
#include <QVBoxLayout>

DataInspector::DataInspector(QWidget* parent) : QWidget(parent) {
    m_summary = new QLabel(this);
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_histogram = new QCustomPlot(this);
    stylePlot(m_histogram);
    m_histogram->setInteractions({});
    m_histogram->xAxis->setLabel(tr("tokens per example"));
    m_histogram->yAxis->setLabel(tr("examples"));
    m_histogram->setMinimumSize(260, 160);
    m_labels = new QTableWidget(0, 3, this);
    m_labels->setHorizontalHeaderLabels({tr("Label"), tr("Examples"), tr("Share")});
    m_labels->verticalHeader()->setVisible(false);
    m_labels->horizontalHeader()->setStretchLastSection(true);
    m_labels->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_index = new QSpinBox(this);
    m_index->setPrefix(tr("example "));
    m_example = new QTextBrowser(this);
    m_problems = new QListWidget(this);
    m_problems->setToolTip(tr("Lines that were skipped: malformed, or nothing left to train on"));
    connect(m_index, &QSpinBox::valueChanged, this, [this](int i) { showExample(i - 1); });

    auto* left = new QWidget(this);
    auto* leftLay = new QVBoxLayout(left);
    leftLay->setContentsMargins(0, 0, 0, 0);
    leftLay->addWidget(m_histogram, 2);
    leftLay->addWidget(m_labels, 1);
    auto* right = new QWidget(this);
    auto* rightLay = new QVBoxLayout(right);
    rightLay->setContentsMargins(0, 0, 0, 0);
    auto* nav = new QHBoxLayout;
    nav->addWidget(new QLabel(tr("Show"), right));
    nav->addWidget(m_index);
    nav->addStretch(1);
    rightLay->addLayout(nav);
    rightLay->addWidget(m_example, 3);
    rightLay->addWidget(new QLabel(tr("Skipped lines:"), right));
    rightLay->addWidget(m_problems, 1);
    auto* split = new QSplitter(this);
    split->addWidget(left);
    split->addWidget(right);
    split->setStretchFactor(1, 1);
    auto* lay = new QVBoxLayout(this);
    lay->addWidget(m_summary);
    lay->addWidget(split, 1);
}

QString DataInspector::summary() const { return m_summary->text(); }
QString DataInspector::exampleHtml() const { return m_example->toHtml(); }

void DataInspector::setReport(const dt::DataReport& r) {
    m_report = r;
    QString s = tr("<b>%1 examples</b> from %2. Scored: %3.<br>")
                    .arg(r.examples)
                    .arg(QFileInfo(QString::fromStdString(r.file)).fileName().toHtmlEscaped(), QString::fromStdString(r.scoring).toHtmlEscaped());
    s += r.truncated ? tr("<b>%1</b> example(s) are longer than max_length %2 and are cut (longest-first).").arg(r.truncated).arg(r.max_length)
                     : tr("No example is cut at max_length %1.").arg(r.max_length);
    if (r.skipped) s += tr(" <b>%1</b> line(s) skipped: nothing to train on or malformed (listed below).").arg(r.skipped);
    m_summary->setText(s);

    std::size_t width = 1;
    const auto h = dt::length_histogram(r.lengths, r.max_length, 24, &width);
    m_histogram->clearPlottables();
    m_histogram->clearItems();
    auto* bars = new QCPBars(m_histogram->xAxis, m_histogram->yAxis);
    bars->setWidth(static_cast<double>(width) * 0.9);
    bars->setPen(Qt::NoPen);
    bars->setBrush(QColor(31, 119, 180));
    double top = 1;
    for (std::size_t b = 0; b < h.size(); ++b) {
        bars->addData((static_cast<double>(b) + 0.5) * static_cast<double>(width), static_cast<double>(h[b]));
        top = std::max(top, static_cast<double>(h[b]));
    }
    auto* limit = new QCPItemStraightLine(m_histogram);
    limit->point1->setCoords(static_cast<double>(r.max_length), 0);
    limit->point2->setCoords(static_cast<double>(r.max_length), 1);
    limit->setPen(QPen(QColor(214, 39, 40), 2, Qt::DashLine));
    auto* note = new QCPItemText(m_histogram);
    note->position->setCoords(static_cast<double>(r.max_length), top * 1.08);
    note->setPositionAlignment(Qt::AlignRight | Qt::AlignTop);
    note->setText(tr("max_length %1: %2 cut ").arg(r.max_length).arg(r.truncated));
    note->setColor(QColor(214, 39, 40));
    m_histogram->xAxis->setRange(0, static_cast<double>(width * h.size()));
    m_histogram->yAxis->setRange(0, top * 1.15);
    m_histogram->replot();

    m_labels->setRowCount(static_cast<int>(r.label_counts.size()));
    for (int i = 0; i < static_cast<int>(r.label_counts.size()); ++i) {
        const auto& [name, n] = r.label_counts[static_cast<std::size_t>(i)];
        m_labels->setItem(i, 0, new QTableWidgetItem(QString::fromStdString(name)));
        m_labels->setItem(i, 1, new QTableWidgetItem(QString::number(n)));
        m_labels->setItem(i, 2, new QTableWidgetItem(QStringLiteral("%1%").arg(r.examples ? 100.0 * static_cast<double>(n) / static_cast<double>(r.examples) : 0.0, 0, 'f', 1)));
    }
    m_labels->setVisible(!r.label_counts.empty());
    m_problems->clear();
    for (const auto& p : r.problems) m_problems->addItem(QString::fromStdString(p));
    if (r.skipped > r.problems.size()) m_problems->addItem(tr("… and %1 more").arg(r.skipped - r.problems.size()));
    m_index->setRange(r.rows.empty() ? 0 : 1, static_cast<int>(r.rows.size()));
    m_index->setSuffix(tr(" of %1 shown").arg(r.rows.size()));
    showExample(0);
}

void DataInspector::showExample(int index) {
    if (index < 0 || index >= static_cast<int>(m_report.rows.size())) {
        m_example->setHtml(tr("<i>No example.</i>"));
        return;
    }
    const auto& x = m_report.rows[static_cast<std::size_t>(index)];
    const QColor hl = palette().highlight().color(), hlText = palette().highlightedText().color();
    QString html = tr("<p><b>As the model reads it:</b><br><tt>%1</tt></p>").arg(QString::fromStdString(x.text).toHtmlEscaped());
    html += tr("<p><b>Label:</b> %1%2</p>").arg(QString::fromStdString(x.label).toHtmlEscaped(), x.truncated ? tr(" &nbsp; <i>(cut at max_length)</i>") : QString());
    html += tr("<p><b>%1 tokens</b> (scored positions highlighted):<br>").arg(x.tokens.size());
    for (std::size_t i = 0; i < x.tokens.size(); ++i) {
        const QString t = QString::fromStdString(x.tokens[i]).toHtmlEscaped();
        html += x.scored[i] ? QStringLiteral("<span style=\"background:%1;color:%2\"><b>%3</b></span> ").arg(hl.name(), hlText.name(), t)
                            : QStringLiteral("<span>%1</span> ").arg(t);
    }
    html += QStringLiteral("</p>");
    m_example->setHtml(html);
    if (m_index->value() != index + 1) m_index->setValue(index + 1);
}
