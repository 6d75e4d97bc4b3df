#include "heatmap_view.h"

#include "plot_style.h"
#include "qcustomplot_compat.h"
#include "save_text.h"

#include <QFile>
#include <QHelpEvent>
#include <QTimer>
#include <QToolTip>
#include <QVBoxLayout>

#include <cmath>
#include <limits>

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

QString csvField(const QString& s) {
    if (!s.contains(QLatin1Char(',')) && !s.contains(QLatin1Char('"')) && !s.contains(QLatin1Char('\n'))) return s;
    QString o = s;
    o.replace(QLatin1String("\""), QLatin1String("\"\""));
    return QLatin1Char('"') + o + QLatin1Char('"');
}

// Dark cells get white text. The shade depends on the colour range, so a range change recolours all.
void colourText(QCPItemText* t, double v, const QCPRange& range) {
    const double frac = range.size() > 0 ? (v - range.lower) / range.size() : 0.5;
    t->setColor(std::isfinite(v) && frac < 0.55 ? Qt::white : Qt::black);
}
}  // namespace

HeatmapView::HeatmapView(QWidget* parent) : QWidget(parent), m_plot(new QCustomPlot(this)) {
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(0, 0, 0, 0);
    lay->addWidget(m_plot);
    m_plot->setMouseTracking(true);
    m_plot->installEventFilter(this);
    m_plot->axisRect()->setupFullAxesBox(false);
    // Cell numbers fit their cells: after each layout the font shrinks to the cell width, and
    // below 6 pt the numbers are hidden (the tooltips keep them).
    connect(m_plot, &QCustomPlot::afterLayout, this, &HeatmapView::fitCellText);
    m_plot->yAxis->setRangeReversed(true);
    m_scale = new QCPColorScale(m_plot);
    m_plot->plotLayout()->addElement(0, 1, m_scale);
    m_scale->setType(QCPAxis::atRight);
    auto* group = new QCPMarginGroup(m_plot);
    m_plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    m_scale->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    // The palette's colours (dark mode too), without the drag and zoom a cell grid does not need.
    stylePlot(m_plot);
    m_plot->setInteractions({});
    const QColor text = palette().text().color();
    m_scale->axis()->setBasePen(QPen(text));
    m_scale->axis()->setTickPen(QPen(text));
    m_scale->axis()->setSubTickPen(QPen(text));
    m_scale->axis()->setTickLabelColor(text);
    m_scale->axis()->setLabelColor(text);
    setMinimumSize(280, 240);
    rebuild();  // empty: "No results yet"
}

void HeatmapView::setTitle(const QString& title, const QString& metric) {
    m_title = title;
    m_metric = metric;
    m_scale->axis()->setLabel(metric);
    // Drawn above the map (two heatmaps side by side, and exports, are told apart by it).
    auto* text = qobject_cast<QCPTextElement*>(m_plot->plotLayout()->element(0, 0));
    if (!text) {
        m_plot->plotLayout()->insertRow(0);
        QFont bold = font();
        bold.setBold(true);
        text = new QCPTextElement(m_plot, QString(), bold);
        text->setTextColor(palette().text().color());
        m_plot->plotLayout()->addElement(0, 0, text);
    }
    text->setText(title);
    scheduleReplot();
}

void HeatmapView::setRange(double lo, double hi) {
    m_fixedRange = true;
    m_lo = lo;
    m_hi = hi;
    if (m_map) {
        m_map->setDataRange(QCPRange(lo, hi));
        for (int i = 0; i < m_texts.size(); ++i) colourText(m_texts[i], m_values[i], m_map->dataRange());
    }
    scheduleReplot();
}

void HeatmapView::setMatrix(const QStringList& rows, const QStringList& cols, const QStringList& rowCategories,
                            const QStringList& colCategories) {
    m_rows = rows;
    m_cols = cols;
    m_rowCats = rowCategories;
    m_colCats = colCategories;
    m_values.fill(kNaN, rows.size() * cols.size());
    m_notes = QStringList();
    for (int i = 0; i < rows.size() * cols.size(); ++i) m_notes << QString();
    rebuild();
}

void HeatmapView::rebuild() {
    m_plot->clearPlottables();
    m_plot->clearItems();
    m_texts.clear();
    const int R = m_rows.size(), C = m_cols.size();
    m_map = new QCPColorMap(m_plot->xAxis, m_plot->yAxis);
    m_map->setColorScale(m_scale);
    m_map->data()->setSize(std::max(1, C), std::max(1, R));
    m_map->data()->setRange(QCPRange(0, std::max(0, C - 1)), QCPRange(0, std::max(0, R - 1)));
    QCPColorGradient g(QCPColorGradient::gpThermal);
    g.setNanHandling(QCPColorGradient::nhNanColor);
    g.setNanColor(QColor(225, 225, 225));
    m_map->setGradient(g);
    m_map->setInterpolate(false);
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) m_map->data()->setCell(c, r, kNaN);
    auto tick = [](const QStringList& labels) {
        QSharedPointer<QCPAxisTickerText> t(new QCPAxisTickerText);
        for (int i = 0; i < labels.size(); ++i)  // long names keep their informative end; tooltips have all
            t->addTick(i, labels[i].size() > 26 ? QStringLiteral("…") + labels[i].right(25) : labels[i]);
        return t;
    };
    m_plot->xAxis->setTicker(tick(m_cols));
    m_plot->xAxis->setTickLabelRotation(0);  // fitCellText() turns the labels upright when they do not fit
    m_plot->yAxis->setTicker(tick(m_rows));
    m_plot->xAxis->setRange(-0.5, C - 0.5);
    m_plot->yAxis->setRange(-0.5, R - 0.5);
    m_plot->xAxis->grid()->setVisible(false);
    m_plot->yAxis->grid()->setVisible(false);
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) {
            auto* t = new QCPItemText(m_plot);
            t->position->setType(QCPItemPosition::ptPlotCoords);
            t->position->setCoords(c, r);
            t->setText(QString());
            t->setFont(QFont(font().family(), R * C > 100 ? 7 : 9));
            m_texts << t;
        }
    // Category groups: a line between neighbouring rows/columns of different categories.
    QPen sep(palette().text().color(), 2);  // category separators in the text colour: visible in dark mode too
    for (int c = 1; c < C && m_colCats.size() == C; ++c)
        if (m_colCats[c] != m_colCats[c - 1]) {
            auto* l = new QCPItemStraightLine(m_plot);
            l->point1->setCoords(c - 0.5, 0);
            l->point2->setCoords(c - 0.5, 1);
            l->setPen(sep);
        }
    for (int r = 1; r < R && m_rowCats.size() == R; ++r)
        if (m_rowCats[r] != m_rowCats[r - 1]) {
            auto* l = new QCPItemStraightLine(m_plot);
            l->point1->setCoords(0, r - 0.5);
            l->point2->setCoords(1, r - 0.5);
            l->setPen(sep);
        }
    if (m_fixedRange) m_map->setDataRange(QCPRange(m_lo, m_hi));
    // An empty matrix says so, instead of drawing bare axes and a meaningless colour bar.
    const bool empty = R == 0 || C == 0;
    m_scale->setVisible(!empty);
    for (QCPAxis* a : {m_plot->xAxis, m_plot->yAxis}) {
        a->setTicks(!empty);
        a->setTickLabels(!empty);
    }
    if (empty) {
        m_plot->xAxis->setRange(0, 1);
        m_plot->yAxis->setRange(0, 1);
        auto* t = new QCPItemText(m_plot);
        t->position->setType(QCPItemPosition::ptAxisRectRatio);
        t->position->setCoords(0.5, 0.5);
        t->setText(m_emptyText);
        t->setColor(palette().text().color());
    }
    scheduleReplot();
}

void HeatmapView::setEmptyText(const QString& text) {
    m_emptyText = text;
    if (m_rows.isEmpty() || m_cols.isEmpty()) rebuild();
}

void HeatmapView::setAutoRange() {
    m_fixedRange = false;
    for (int r = 0; r < m_rows.size(); ++r)
        for (int c = 0; c < m_cols.size(); ++c) refreshCell(r, c);
}

bool HeatmapView::hasCell(int row, int col) const { return std::isfinite(cell(row, col)); }

double HeatmapView::cell(int row, int col) const {
    if (row < 0 || col < 0 || row >= m_rows.size() || col >= m_cols.size()) return kNaN;
    return m_values[row * m_cols.size() + col];
}

QString HeatmapView::cellLabel(double v, int columns) {
    QString s = QString::number(v, 'f', 2);
    // Past six columns the cells are narrow: "0.83" is written ".83" (and "-0.25" "-.25").
    if (columns > 6 && (s.startsWith(QLatin1String("0.")) || s.startsWith(QLatin1String("-0.")))) s.remove(s.indexOf(QLatin1Char('0')), 1);
    return s;
}

QString HeatmapView::cellText(int row, int col) const {
    if (row < 0 || col < 0 || row >= m_rows.size() || col >= m_cols.size()) return {};
    return m_texts[row * m_cols.size() + col]->text();
}

void HeatmapView::setCell(int row, int col, double value, const QString& note) {
    if (row < 0 || col < 0 || row >= m_rows.size() || col >= m_cols.size()) return;
    m_values[row * m_cols.size() + col] = value;
    m_notes[row * m_cols.size() + col] = note;
    refreshCell(row, col);
}

void HeatmapView::refreshCell(int row, int col) {
    const double v = cell(row, col);
    m_map->data()->setCell(col, row, v);
    auto* t = m_texts[row * m_cols.size() + col];
    t->setText(!std::isfinite(v) ? QString() : m_integers ? QString::number(static_cast<qint64>(std::llround(v))) : cellLabel(v, m_cols.size()));
    const QCPRange before = m_map->dataRange();
    if (!m_fixedRange) {
        double lo = 1e300, hi = -1e300;
        for (double x : m_values)
            if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
        if (lo <= hi) m_map->setDataRange(QCPRange(lo, hi > lo ? hi : lo + 1e-9));
    }
    const QCPRange range = m_map->dataRange();
    if (range == before) colourText(t, v, range);
    else
        for (int i = 0; i < m_texts.size(); ++i) colourText(m_texts[i], m_values[i], range);
    scheduleReplot();
}

QString HeatmapView::toolTipAt(int row, int col) const {
    if (row < 0 || col < 0 || row >= m_rows.size() || col >= m_cols.size()) return {};
    const double v = cell(row, col);
    const QString note = m_notes[row * m_cols.size() + col];
    QString s = tr("%1 \u2192 %2").arg(m_rows[row], m_cols[col]);
    if (std::isfinite(v)) s += QStringLiteral("\n%1: %2").arg(m_metric.isEmpty() ? tr("value") : m_metric).arg(v, 0, 'f', 4);
    else s += QLatin1Char('\n') + (note.isEmpty() ? tr("not computed yet") : note);
    return s;
}

bool HeatmapView::eventFilter(QObject* o, QEvent* e) {
    if (o == m_plot && e->type() == QEvent::ToolTip) {
        auto* he = static_cast<QHelpEvent*>(e);
        const int c = static_cast<int>(std::lround(m_plot->xAxis->pixelToCoord(he->pos().x())));
        const int r = static_cast<int>(std::lround(m_plot->yAxis->pixelToCoord(he->pos().y())));
        const QString tip = toolTipAt(r, c);
        if (tip.isEmpty()) QToolTip::hideText();
        else QToolTip::showText(he->globalPos(), tip, m_plot);
        return true;
    }
    return QWidget::eventFilter(o, e);
}

void HeatmapView::fitCellText() {
    if (m_texts.isEmpty()) return;
    const QRect area = m_plot->axisRect()->rect();
    const double cw = area.width() / static_cast<double>(std::max<qsizetype>(1, m_cols.size()));
    // Column labels lie flat while each fits its column, else stand upright (slanted, a long one
    // ran past the plot's edge and was dropped).
    int widestLabel = 0;
    const QFontMetrics labelMetrics(m_plot->xAxis->tickLabelFont());
    for (const QString& c : m_cols) widestLabel = std::max(widestLabel, labelMetrics.horizontalAdvance(c.size() > 26 ? c.right(26) : c));
    const double rotation = widestLabel > cw - 4 ? 90 : 0;
    if (m_plot->xAxis->tickLabelRotation() != rotation) {
        m_plot->xAxis->setTickLabelRotation(rotation);
        scheduleReplot();  // the margins change with it
    }
    const double ch = area.height() / static_cast<double>(std::max<qsizetype>(1, m_rows.size()));
    QString widest;
    for (const QCPItemText* t : m_texts)
        if (t->text().size() > widest.size()) widest = t->text();
    if (widest.isEmpty()) return;
    QFont f(font().family(), 9);
    while (f.pointSize() > 6 && (QFontMetrics(f).horizontalAdvance(widest) > cw - 4 || QFontMetrics(f).height() > ch)) f.setPointSize(f.pointSize() - 1);
    const bool fits = QFontMetrics(f).horizontalAdvance(widest) <= cw - 4 && QFontMetrics(f).height() <= ch;
    for (QCPItemText* t : m_texts) {
        t->setFont(f);
        t->setVisible(fits);
    }
    m_cellTextVisible = fits;
}

void HeatmapView::scheduleReplot() {
    if (m_replotPending) return;
    m_replotPending = true;
    QTimer::singleShot(30, this, [this] {
        m_replotPending = false;
        if (m_plot->isVisible()) m_plot->replot(QCustomPlot::rpQueuedReplot);  // a hidden plot replots when shown
    });
}

QString HeatmapView::toCsv() const {
    QString out = QStringLiteral("row");
    for (const auto& c : m_cols) out += QLatin1Char(',') + csvField(c);
    out += QLatin1Char('\n');
    for (int r = 0; r < m_rows.size(); ++r) {
        out += csvField(m_rows[r]);
        for (int c = 0; c < m_cols.size(); ++c) {
            out += QLatin1Char(',');
            if (hasCell(r, c)) out += QString::number(cell(r, c), 'g', 6);
        }
        out += QLatin1Char('\n');
    }
    return out;
}

bool HeatmapView::saveCsv(const QString& path) const { return saveTextFile(path, toCsv()); }

bool HeatmapView::savePng(const QString& path, int width, int height) {
    m_plot->replot();
    return m_plot->savePng(path, width, height);
}

bool HeatmapView::savePdf(const QString& path) {
    m_plot->replot();
    return m_plot->savePdf(path);
}

void HeatmapView::showEvent(QShowEvent* e) {
    QWidget::showEvent(e);
    m_plot->replot();
}

void HeatmapView::setAxisTitles(const QString& rowTitle, const QString& colTitle) {
    m_plot->yAxis->setLabel(rowTitle);
    m_plot->xAxis->setLabel(colTitle);
    scheduleReplot();
}
