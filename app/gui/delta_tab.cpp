#include "delta_tab.h"

#include "heatmap_view.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>

#include <cmath>

DeltaTab::DeltaTab(QWidget* parent) : QWidget(parent), m_delta(new HeatmapView(this)), m_grad(new HeatmapView(this)), m_caption(new QLabel(this)) {
    m_delta->setTitle(tr("Delta magnitude"), tr("||ΔW|| / ||W||"));
    m_grad->setTitle(tr("Gradient norm"), tr("||grad||"));
    for (HeatmapView* h : {m_delta, m_grad}) h->setAxisTitles(tr("layer"), tr("module"));
    m_caption->setWordWrap(true);
    auto* maps = new QHBoxLayout;
    maps->addWidget(m_delta, 1);
    maps->addWidget(m_grad, 1);
    auto* lay = new QVBoxLayout(this);
    lay->addLayout(maps, 1);
    lay->addWidget(m_caption);
    clear();
}

void DeltaTab::clear() {
    m_delta->setMatrix({}, {});
    m_grad->setMatrix({}, {});
    m_grad->setEmptyText(tr("No results yet"));
    m_updates = 0;
    m_caption->setText(tr("Start a training run: every few steps the left map shows how far each module's delta has moved from "
                          "where it started (LoRA and IA3: the norm of the change of the effective weight relative to the base "
                          "weight; other methods: the relative change of their tensors), the right one the gradient norm per module."));
}

void DeltaTab::showGrid(qint64 step, const QString& kind, const QStringList& rows, const QStringList& cols, const QVector<double>& values) {
    HeatmapView* v = kind == QLatin1String("grad_norm") ? m_grad : m_delta;
    bool same = v->rowCount() == rows.size() && v->colCount() == cols.size();
    if (!same) v->setMatrix(rows, cols);
    for (int r = 0; r < rows.size(); ++r)
        for (int c = 0; c < cols.size(); ++c) {
            const double x = values.value(r * cols.size() + c, NAN);
            if (std::isfinite(x)) v->setCell(r, c, x);
        }
    ++m_updates;
    if (m_grad->rowCount() == 0) {  // several processes: only the final delta, read from the run's checkpoint
        m_grad->setEmptyText(tr("Shown for one-process runs"));
        m_caption->setText(tr("Step %1: delta magnitude per layer and module, from the run's checkpoint.").arg(step));
        return;
    }
    m_caption->setText(tr("Step %1: delta magnitude (left) and gradient norm (right) per layer and module.").arg(step));
}
