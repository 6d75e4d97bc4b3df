#include "class_metrics_view.h"

#include "heatmap_view.h"

#include "train/events.h"
#include "train/run_folder.h"

#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <fstream>

ClassMetricsView::ClassMetricsView(QWidget* parent) : QWidget(parent) {
    m_caption = new QLabel(this);
    m_caption->setWordWrap(true);
    m_table = new QTableWidget(0, 5, this);
    m_table->setHorizontalHeaderLabels({tr("Class"), tr("Precision"), tr("Recall"), tr("F1"), tr("Support")});
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->verticalHeader()->setVisible(false);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setToolTip(tr("Per class on the validation set: precision = right / predicted as the class, "
                           "recall = right / gold examples of the class, support = gold examples"));
    m_heatmap = new HeatmapView(this);
    m_heatmap->setEmptyText(tr("No evaluation yet"));
    m_heatmap->setIntegerCells(true);
    m_heatmap->setMinimumSize(200, 150);  // beside the training curves: must not set the window's minimum
    m_table->setMinimumHeight(60);
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_table);
    split->addWidget(m_heatmap);
    split->setStretchFactor(1, 1);
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(0, 0, 0, 0);
    lay->addWidget(m_caption);
    lay->addWidget(split, 1);
    clear();
}

void ClassMetricsView::clear(const QString& why) {
    m_caption->setText(why.isEmpty() ? tr("Per-class metrics appear with a classification run's first evaluation.") : why);
    m_table->setRowCount(0);
    m_heatmap->setMatrix({}, {});
}

QString ClassMetricsView::caption() const { return m_caption->text(); }

void ClassMetricsView::setConfusion(qint64 step, const dt::ConfusionMatrix& cm, const QString& source) {
    if (cm.empty()) return clear();
    const auto per = dt::per_class_metrics(cm);
    QStringList labels;
    for (const auto& l : cm.labels) labels << QString::fromStdString(l);
    m_table->setRowCount(static_cast<int>(per.size()));
    for (int k = 0; k < static_cast<int>(per.size()); ++k) {
        const auto& m = per[static_cast<std::size_t>(k)];
        const QStringList cells = {labels.value(k), QString::number(m.precision, 'f', 3), QString::number(m.recall, 'f', 3),
                                   QString::number(m.f1, 'f', 3), QString::number(m.support)};
        for (int c = 0; c < cells.size(); ++c) {
            auto* item = new QTableWidgetItem(cells[c]);
            if (c > 0) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            m_table->setItem(k, c, item);
        }
    }
    std::int64_t unmatched = 0;
    for (auto u : cm.unmatched) unmatched += u;
    QString text = tr("Validation set at step %1%2: rows are the gold class, columns the predicted class.").arg(step).arg(
        source.isEmpty() ? QString() : tr(" (%1)").arg(source));
    if (unmatched > 0) text += tr(" %1 generated answer(s) matched no label word (counted against recall).").arg(unmatched);
    m_caption->setText(text);
    m_heatmap->setMatrix(labels, labels);
    m_heatmap->setTitle(tr("Confusion matrix"), tr("examples"));
    m_heatmap->setAxisTitles(tr("gold class"), tr("predicted class"));
    double hi = 1;
    for (const auto& row : cm.counts)
        for (auto v : row) hi = std::max(hi, static_cast<double>(v));
    m_heatmap->setRange(0, hi);
    for (int g = 0; g < labels.size(); ++g)
        for (int p = 0; p < labels.size(); ++p) {
            const auto v = cm.counts[static_cast<std::size_t>(g)][static_cast<std::size_t>(p)];
            m_heatmap->setCell(g, p, static_cast<double>(v), tr("%1 example(s) of %2 predicted as %3").arg(v).arg(labels[g], labels[p]));
        }
}

bool ClassMetricsView::loadRun(const QString& runDir) {
    std::ifstream in(dt::run_folder::events_path(runDir.toStdString()));
    std::string line;
    dt::EvalEvent last;
    dt::EventLine ev;
    while (std::getline(in, line)) {
        if (!dt::parse_event_line(line.data(), line.data() + line.size(), ev) || ev.kind != "eval") continue;
        if (!ev.eval.confusion.empty()) last = std::move(ev.eval);
    }
    if (last.confusion.empty()) {
        clear(tr("%1 has no classification evaluation.").arg(QFileInfo(runDir).fileName()));
        return false;
    }
    setConfusion(last.step, last.confusion, QFileInfo(runDir).fileName());
    return true;
}
