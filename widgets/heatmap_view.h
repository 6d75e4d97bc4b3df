// HeatmapView: a matrix of results (transfer: source delta x target task; ablation: layer i..j)
// drawn with QCPColorMap, task or layer labels on both axes, a colour scale, each value written in
// its cell, empty cells left blank (grey), cells filling in as they arrive, tooltips on hover, and
// PNG/PDF/CSV export. Rows and columns can be grouped by category (separator lines).
#pragma once

#include <QStringList>
#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QCPItemText;
class QMouseEvent;

class QShowEvent;

class HeatmapView : public QWidget {
    Q_OBJECT
public:
    explicit HeatmapView(QWidget* parent = nullptr);

    // Sets the shape and labels; every cell starts empty. Categories (optional, same length as the
    // labels) draw separators between groups.
    void setMatrix(const QStringList& rows, const QStringList& cols, const QStringList& rowCategories = {},
                   const QStringList& colCategories = {});
    void setTitle(const QString& title, const QString& metric);
    // Names of the axes, e.g. "source delta" / "target task", or "removed from layer" / "to layer".
    void setAxisTitles(const QString& rowTitle, const QString& colTitle);
    void setCell(int row, int col, double value, const QString& note = {});
    // Fixed colour range (e.g. 0..1 for accuracy); without it the range follows the values.
    void setRange(double lo, double hi);
    void setAutoRange();  // the colour range follows the values again
    // Cells written as whole numbers (counts) instead of two decimals.
    void setIntegerCells(bool on) { m_integers = on; }
    // What an empty matrix shows ("No results yet" by default), e.g. "Training delta 2/5...".
    void setEmptyText(const QString& text);
    QString emptyText() const { return m_emptyText; }

    int rowCount() const { return m_rows.size(); }
    int colCount() const { return m_cols.size(); }
    bool hasCell(int row, int col) const;
    double cell(int row, int col) const;  // NaN when empty
    QString cellText(int row, int col) const;  // the text drawn in the cell ("" when empty)
    // Whether the cell numbers are drawn: they shrink to fit their cells and hide below 6 pt.
    bool cellTextVisible() const { return m_cellTextVisible; }
    // A cell's text: two decimals, without the leading zero when there are more than six columns.
    static QString cellLabel(double v, int columns);
    QString toolTipAt(int row, int col) const;

    QString toCsv() const;
    bool savePng(const QString& path, int width = 0, int height = 0);
    bool savePdf(const QString& path);
    bool saveCsv(const QString& path) const;
    QCustomPlot* plot() const { return m_plot; }

protected:
    bool eventFilter(QObject* o, QEvent* e) override;
    void showEvent(QShowEvent* e) override;  // replots what changed while hidden

private:
    void rebuild();
    void refreshCell(int row, int col);
    void scheduleReplot();
    void fitCellText();

    QCustomPlot* m_plot;
    QCPColorMap* m_map = nullptr;
    QCPColorScale* m_scale = nullptr;
    QStringList m_rows, m_cols, m_rowCats, m_colCats, m_notes;
    QVector<double> m_values;
    QVector<QCPItemText*> m_texts;
    QString m_title, m_metric;
    bool m_fixedRange = false;
    bool m_integers = false;
    bool m_cellTextVisible = true;
    double m_lo = 0, m_hi = 1;
    bool m_replotPending = false;
    QString m_emptyText = tr("No results yet");
};
