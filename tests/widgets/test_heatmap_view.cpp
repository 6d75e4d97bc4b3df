// HeatmapView: the cells hold and show what was set (two-decimal labels, blank grey when empty),
// the colour range (fixed or following the values), text that stays readable on its cell as cells
// arrive, category separators, title and axis names, tooltips, and the CSV/PNG/PDF exports.
#include "test_registry.h"
#include "test_util.h"

#include "heatmap_view.h"
#include "qcustomplot_compat.h"

#include <QApplication>
#include <QFile>
#include <QHelpEvent>
#include <QImage>
#include <QTemporaryDir>
#include <QTest>
#include <QToolTip>

#include <algorithm>
#include <cmath>
#include <limits>

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

QCPColorMap* colorMap(const HeatmapView& v) { return qobject_cast<QCPColorMap*>(v.plot()->plottable(0)); }

// The text item drawn in cell (row, col).
QCPItemText* cellItem(const HeatmapView& v, int row, int col) {
    for (int i = 0; i < v.plot()->itemCount(); ++i)
        if (auto* t = qobject_cast<QCPItemText*>(v.plot()->item(i)))
            if (t->position->coords() == QPointF(col, row)) return t;
    return nullptr;
}

QList<QCPItemStraightLine*> separators(const HeatmapView& v) {
    QList<QCPItemStraightLine*> out;
    for (int i = 0; i < v.plot()->itemCount(); ++i)
        if (auto* l = qobject_cast<QCPItemStraightLine*>(v.plot()->item(i))) out << l;
    return out;
}

// WCAG relative luminance and contrast ratio (1..21).
double luminance(const QColor& c) {
    auto lin = [](double x) { return x <= 0.03928 ? x / 12.92 : std::pow((x + 0.055) / 1.055, 2.4); };
    return 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF());
}
double contrast(const QColor& a, const QColor& b) {
    const double la = luminance(a), lb = luminance(b);
    return (std::max(la, lb) + 0.05) / (std::min(la, lb) + 0.05);
}

// Every filled cell's text against the colour its value gets under the map's current range.
void checkTextReadable(const HeatmapView& v) {
    QCPColorMap* map = colorMap(v);
    QCPColorGradient g = map->gradient();
    for (int r = 0; r < v.rowCount(); ++r)
        for (int c = 0; c < v.colCount(); ++c) {
            if (!v.hasCell(r, c)) continue;
            const QColor bg = QColor::fromRgb(g.color(v.cell(r, c), map->dataRange()));
            const QColor fg = cellItem(v, r, c)->color();
            QVERIFY2(contrast(bg, fg) >= 3.0, qPrintable(QStringLiteral("cell %1,%2 (%3): text %4 on %5, contrast %6")
                                                             .arg(r).arg(c).arg(v.cell(r, c)).arg(fg.name(), bg.name())
                                                             .arg(contrast(bg, fg))));
        }
}

bool near(const QColor& a, const QColor& b, int tol = 3) {
    return std::abs(a.red() - b.red()) <= tol && std::abs(a.green() - b.green()) <= tol && std::abs(a.blue() - b.blue()) <= tol;
}

}  // namespace

class TestHeatmapView : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void emptyMatrixSaysNoResultsYet() {
        // No matrix: a line of text, no colour bar, no tick labels (not axes 0-5 and a bar of 0-6).
        HeatmapView h;
        auto texts = [&h] {
            QStringList t;
            for (int i = 0; i < h.plot()->itemCount(); ++i)
                if (auto* item = qobject_cast<QCPItemText*>(h.plot()->item(i))) t << item->text();
            return t;
        };
        auto scale = [&h] {
            for (int i = 0; i < h.plot()->plotLayout()->elementCount(); ++i)
                if (auto* s = qobject_cast<QCPColorScale*>(h.plot()->plotLayout()->elementAt(i))) return s;
            return static_cast<QCPColorScale*>(nullptr);
        };
        QVERIFY(texts().contains(QStringLiteral("No results yet")));
        QVERIFY(scale() && !scale()->visible());
        QVERIFY(!h.plot()->xAxis->tickLabels());
        h.setEmptyText(QStringLiteral("Starting the transfer…"));
        QVERIFY(texts().contains(QStringLiteral("Starting the transfer…")));
        h.setMatrix({"a", "b"}, {"x", "y"});
        QVERIFY(!texts().contains(QStringLiteral("Starting the transfer…")));
        QVERIFY(scale()->visible());
        QVERIFY(h.plot()->xAxis->tickLabels());
        h.setMatrix({}, {});
        QVERIFY(texts().contains(QStringLiteral("Starting the transfer…")));
    }

    void cellsHoldWhatWasSet() {
        HeatmapView v;
        v.setMatrix({"sst", "imdb"}, {"sst", "imdb", "yelp"});
        QCOMPARE(v.rowCount(), 2);
        QCOMPARE(v.colCount(), 3);
        QCPColorMap* map = colorMap(v);
        QVERIFY(map);
        QCOMPARE(map->data()->keySize(), 3);
        QCOMPARE(map->data()->valueSize(), 2);
        for (int r = 0; r < 2; ++r)
            for (int c = 0; c < 3; ++c) {
                QVERIFY(!v.hasCell(r, c));
                QVERIFY(std::isnan(v.cell(r, c)));
                QCOMPARE(v.cellText(r, c), QString());
                QVERIFY(std::isnan(map->data()->cell(c, r)));
            }
        // One text item per cell, nothing else yet.
        QCOMPARE(v.plot()->itemCount(), 6);
        v.setCell(0, 1, 0.8312);
        QVERIFY(v.hasCell(0, 1));
        QCOMPARE(v.cell(0, 1), 0.8312);
        QCOMPARE(v.cellText(0, 1), QStringLiteral("0.83"));
        QCOMPARE(cellItem(v, 0, 1)->text(), QStringLiteral("0.83"));
        QCOMPARE(map->data()->cell(1, 0), 0.8312);  // the map is column (key) by row (value)
        QVERIFY(!v.hasCell(1, 0));
        v.setCell(1, 2, -0.256);
        QCOMPARE(v.cellText(1, 2), QStringLiteral("-0.26"));
        // Out of range: ignored, nothing else changes; reads out of range are empty.
        const QString before = v.toCsv();
        v.setCell(-1, 0, 1.0);
        v.setCell(0, 3, 1.0);
        v.setCell(2, 0, 1.0);
        QCOMPARE(v.toCsv(), before);
        QVERIFY(std::isnan(v.cell(5, 5)));
        QCOMPARE(v.cellText(-1, 0), QString());
        // A cell set back to NaN (or inf) is empty again, and its note explains why.
        v.setCell(0, 1, kNaN, QStringLiteral("diverged"));
        QVERIFY(!v.hasCell(0, 1));
        QCOMPARE(v.cellText(0, 1), QString());
        QVERIFY(v.toolTipAt(0, 1).endsWith(QStringLiteral("\ndiverged")));
        v.setCell(0, 0, std::numeric_limits<double>::infinity());
        QVERIFY(!v.hasCell(0, 0));
        QCOMPARE(v.cellText(0, 0), QString());
        // A new matrix starts empty again.
        v.setMatrix({"a"}, {"b"});
        QCOMPARE(v.rowCount(), 1);
        QCOMPARE(v.colCount(), 1);
        QVERIFY(!v.hasCell(0, 0));
        QCOMPARE(v.plot()->itemCount(), 1);
    }

    void labelsOnTheAxes() {
        HeatmapView v;
        v.setMatrix({"r0", "r1"}, {"c0", "c1", "c2"});
        auto xt = v.plot()->xAxis->ticker().dynamicCast<QCPAxisTickerText>();
        auto yt = v.plot()->yAxis->ticker().dynamicCast<QCPAxisTickerText>();
        QVERIFY(xt && yt);
        QCOMPARE(xt->ticks(), (QMap<double, QString>{{0, "c0"}, {1, "c1"}, {2, "c2"}}));
        QCOMPARE(yt->ticks(), (QMap<double, QString>{{0, "r0"}, {1, "r1"}}));
        // Each cell is one unit wide, the whole matrix in view; row 0 at the top.
        QCOMPARE(v.plot()->xAxis->range().lower, -0.5);
        QCOMPARE(v.plot()->xAxis->range().upper, 2.5);
        QCOMPARE(v.plot()->yAxis->range().lower, -0.5);
        QCOMPARE(v.plot()->yAxis->range().upper, 1.5);
        QVERIFY(v.plot()->yAxis->rangeReversed());
    }

    void cellLabels() {
        QCOMPARE(HeatmapView::cellLabel(0.8312, 3), QStringLiteral("0.83"));
        QCOMPARE(HeatmapView::cellLabel(-0.25, 6), QStringLiteral("-0.25"));
        QCOMPARE(HeatmapView::cellLabel(1.0, 3), QStringLiteral("1.00"));
        // Past six columns the leading zero goes, and only that.
        QCOMPARE(HeatmapView::cellLabel(0.8312, 7), QStringLiteral(".83"));
        QCOMPARE(HeatmapView::cellLabel(0.05, 7), QStringLiteral(".05"));
        QCOMPARE(HeatmapView::cellLabel(-0.25, 7), QStringLiteral("-.25"));
        QCOMPARE(HeatmapView::cellLabel(1.0, 7), QStringLiteral("1.00"));
        QCOMPARE(HeatmapView::cellLabel(10.5, 7), QStringLiteral("10.50"));
        QCOMPARE(HeatmapView::cellLabel(-10.5, 7), QStringLiteral("-10.50"));
        HeatmapView v;
        QStringList cols;
        for (int i = 0; i < 7; ++i) cols << QStringLiteral("t%1").arg(i);
        v.setMatrix({"r"}, cols);
        v.setCell(0, 6, 0.8312);
        QCOMPARE(v.cellText(0, 6), QStringLiteral(".83"));
    }

    void colourRange() {
        HeatmapView v;
        v.setMatrix({"a", "b"}, {"x", "y"});
        QCPColorMap* map = colorMap(v);
        // Automatic: the range spans the values; a single value still gets a non-empty range.
        v.setCell(0, 0, 0.4);
        QCOMPARE(map->dataRange().lower, 0.4);
        QVERIFY(map->dataRange().upper > 0.4);
        v.setCell(1, 1, 0.7);
        v.setCell(0, 1, 0.3);
        QCOMPARE(map->dataRange().lower, 0.3);
        QCOMPARE(map->dataRange().upper, 0.7);
        // Fixed: stays put whatever arrives, and survives a new matrix.
        v.setRange(0, 1);
        QCOMPARE(map->dataRange(), QCPRange(0, 1));
        v.setCell(1, 0, 0.5);
        QCOMPARE(map->dataRange(), QCPRange(0, 1));
        v.setMatrix({"a", "b"}, {"x", "y"});
        map = colorMap(v);
        v.setCell(0, 0, 0.6);
        QCOMPARE(map->dataRange(), QCPRange(0, 1));
        // Automatic again: back to the values.
        v.setCell(1, 1, 0.8);
        v.setAutoRange();
        QCOMPARE(map->dataRange().lower, 0.6);
        QCOMPARE(map->dataRange().upper, 0.8);
    }

    void textStaysReadableAsCellsArrive() {
        // Transfer cells arrive one by one and each can move the automatic colour range: every cell's
        // text must stay readable on its cell's (possibly changed) colour, not just the newest one's.
        HeatmapView v;
        v.setMatrix({"a"}, {"x", "y", "z", "w"});
        v.setCell(0, 0, 0.9);  // alone: the bottom of its own range (dark)
        checkTextReadable(v);
        v.setCell(0, 1, 0.1);  // now 0.9 is the top of the range (near white)
        checkTextReadable(v);
        v.setCell(0, 2, 0.5);
        v.setCell(0, 3, 0.35);
        checkTextReadable(v);
        QVERIFY(cellItem(v, 0, 0)->color() != cellItem(v, 0, 1)->color());  // the top and the bottom differ
        // A fixed range puts every value in the dark part; back to automatic.
        v.setRange(0, 10);
        checkTextReadable(v);
        v.setAutoRange();
        checkTextReadable(v);
        v.setRange(-5, 0.2);
        checkTextReadable(v);
    }

    void emptyCellsGreyFilledCellsColoured() {
        HeatmapView v;
        v.resize(500, 400);
        v.setMatrix({"a", "b"}, {"x", "y"});
        v.setRange(0, 1);
        v.setCell(0, 0, 0.2);
        v.setCell(1, 1, 0.9);
        v.show();
        QVERIFY(QTest::qWaitForWindowExposed(&v));
        v.plot()->replot();
        const QImage img = v.plot()->grab().toImage();
        QCPColorMap* map = colorMap(v);
        // Away from the centre, where the value is written.
        auto pixel = [&](int r, int c) {
            return img.pixelColor(static_cast<int>(v.plot()->xAxis->coordToPixel(c + 0.3)),
                                  static_cast<int>(v.plot()->yAxis->coordToPixel(r + 0.3)));
        };
        const QColor grey(225, 225, 225);
        QVERIFY2(near(pixel(0, 1), grey), qPrintable(pixel(0, 1).name()));
        QVERIFY2(near(pixel(1, 0), grey), qPrintable(pixel(1, 0).name()));
        QCPColorGradient g = map->gradient();
        QVERIFY2(near(pixel(0, 0), QColor::fromRgb(g.color(0.2, QCPRange(0, 1)))), qPrintable(pixel(0, 0).name()));
        QVERIFY2(near(pixel(1, 1), QColor::fromRgb(g.color(0.9, QCPRange(0, 1)))), qPrintable(pixel(1, 1).name()));
        QVERIFY(!near(pixel(0, 0), pixel(1, 1), 20));
    }

    void categorySeparators() {
        HeatmapView v;
        v.setMatrix({"r0", "r1", "r2"}, {"c0", "c1", "c2", "c3"}, {"x", "x", "y"}, {"m", "n", "n", "o"});
        const auto lines = separators(v);
        QCOMPARE(lines.size(), 3);
        QList<double> cols, rows;
        for (auto* l : lines) {
            if (l->point1->coords().x() == l->point2->coords().x()) cols << l->point1->coords().x();  // vertical
            else rows << l->point1->coords().y();
        }
        std::sort(cols.begin(), cols.end());
        QCOMPARE(cols, (QList<double>{0.5, 2.5}));
        QCOMPARE(rows, QList<double>{1.5});
        // Categories that do not match the labels draw nothing; no categories, nothing.
        v.setMatrix({"r0", "r1", "r2"}, {"c0", "c1"}, {"x", "y"}, {"m", "n", "o"});
        QCOMPARE(separators(v).size(), 0);
        v.setMatrix({"r0", "r1"}, {"c0", "c1"});
        QCOMPARE(separators(v).size(), 0);
    }

    void titleAxisNamesAndTooltips() {
        HeatmapView v;
        v.resize(500, 400);
        v.setMatrix({"sst", "imdb"}, {"sst", "yelp"});
        v.setTitle(QStringLiteral("Transfer"), QStringLiteral("accuracy"));
        v.setAxisTitles(QStringLiteral("trained on"), QStringLiteral("evaluated on"));
        QCOMPARE(v.plot()->yAxis->label(), QStringLiteral("trained on"));
        QCOMPARE(v.plot()->xAxis->label(), QStringLiteral("evaluated on"));
        // The metric names the colour scale.
        QCPColorScale* scale = nullptr;
        for (auto* e : v.plot()->plotLayout()->elements(true))
            if (auto* s = qobject_cast<QCPColorScale*>(e)) scale = s;
        QVERIFY(scale);
        QCOMPARE(scale->axis()->label(), QStringLiteral("accuracy"));
        // The title is drawn on the plot (and so in its exports): two heatmaps side by side, as in the
        // delta tab, are told apart by it.
        auto titleText = [&]() -> QString {
            for (auto* e : v.plot()->plotLayout()->elements(true))
                if (auto* t = qobject_cast<QCPTextElement*>(e)) return t->text();
            return QStringLiteral("<none>");
        };
        QCOMPARE(titleText(), QStringLiteral("Transfer"));
        v.setTitle(QStringLiteral("Layer ablation"), QStringLiteral("f1"));
        QCOMPARE(titleText(), QStringLiteral("Layer ablation"));
        QCOMPARE(scale->axis()->label(), QStringLiteral("f1"));
        int titles = 0;
        for (auto* e : v.plot()->plotLayout()->elements(true)) titles += qobject_cast<QCPTextElement*>(e) != nullptr;
        QCOMPARE(titles, 1);  // replaced, not added
        // Tooltips: row -> column, then the value under the metric's name, or why the cell is empty.
        v.setCell(0, 1, 0.83125);
        QCOMPARE(v.toolTipAt(0, 1), QStringLiteral("sst \u2192 yelp\nf1: 0.8313"));
        QCOMPARE(v.toolTipAt(1, 0), QStringLiteral("imdb \u2192 sst\nnot computed yet"));
        v.setCell(1, 0, kNaN, QStringLiteral("skipped: no validation data"));
        QCOMPARE(v.toolTipAt(1, 0), QStringLiteral("imdb \u2192 sst\nskipped: no validation data"));
        QCOMPARE(v.toolTipAt(2, 0), QString());
        v.setTitle(QStringLiteral("T"), QString());
        QCOMPARE(v.toolTipAt(0, 1), QStringLiteral("sst \u2192 yelp\nvalue: 0.8313"));
        // Hovering a cell shows that cell's tooltip.
        v.show();
        QVERIFY(QTest::qWaitForWindowExposed(&v));
        v.plot()->replot();
        const QPoint at(static_cast<int>(v.plot()->xAxis->coordToPixel(1)), static_cast<int>(v.plot()->yAxis->coordToPixel(0)));
        QHelpEvent help(QEvent::ToolTip, at, v.plot()->mapToGlobal(at));
        QApplication::sendEvent(v.plot(), &help);
        QTRY_COMPARE(QToolTip::text(), v.toolTipAt(0, 1));
        QToolTip::hideText();
    }

    void exports() {
        HeatmapView v;
        v.resize(500, 400);
        v.setMatrix({"r1", "r2"}, {"a,b", "say \"hi\""});
        v.setCell(0, 0, 0.5);
        v.setCell(1, 1, 0.123456789);
        // Labels with commas or quotes are quoted (RFC 4180); empty cells are empty fields.
        QCOMPARE(v.toCsv(), QStringLiteral("row,\"a,b\",\"say \"\"hi\"\"\"\nr1,0.5,\nr2,,0.123457\n"));
        QTemporaryDir dir;
        QVERIFY(v.saveCsv(dir.filePath("h.csv")));
        QFile f(dir.filePath("h.csv"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(QString::fromUtf8(f.readAll()), v.toCsv());
        QVERIFY(!v.saveCsv(dir.filePath("no/such/folder/h.csv")));
        QVERIFY(v.savePng(dir.filePath("h.png"), 640, 480));
        const QImage png(dir.filePath("h.png"));
        QCOMPARE(png.size(), QSize(640, 480));
        QVERIFY(v.savePdf(dir.filePath("h.pdf")));
        QFile pdf(dir.filePath("h.pdf"));
        QVERIFY(pdf.open(QIODevice::ReadOnly));
        QVERIFY(pdf.read(5) == "%PDF-");
        QVERIFY(pdf.size() > 1000);
        // An empty matrix (the delta tab's cleared state) exports a header and draws.
        v.setMatrix({}, {});
        QCOMPARE(v.rowCount(), 0);
        QCOMPARE(v.toCsv(), QStringLiteral("row\n"));
        v.setAutoRange();
        QVERIFY(v.savePng(dir.filePath("empty.png"), 300, 200));
    }

    void readableUnderADarkPalette() {
        // The plot may keep its own light background or follow the palette, but its axis text must
        // contrast with whatever background it draws.
        {
            const dttest::DarkPalette dark;  // restored at the end of the block
            HeatmapView v;
            v.resize(500, 400);
            v.setMatrix({"a", "b"}, {"x", "y"});
            v.setTitle(QStringLiteral("T"), QStringLiteral("accuracy"));
            v.setCell(0, 0, 0.5);
            const QImage img = v.plot()->toPixmap(500, 400).toImage();
            const QColor bg = img.pixelColor(3, 3);
            QCPColorScale* scale = nullptr;
            for (auto* e : v.plot()->plotLayout()->elements(true))
                if (auto* s = qobject_cast<QCPColorScale*>(e)) scale = s;
            for (QCPAxis* ax : {v.plot()->xAxis, v.plot()->yAxis, scale->axis()}) {
                QVERIFY2(contrast(ax->tickLabelColor(), bg) >= 4.5, qPrintable(ax->tickLabelColor().name() + " on " + bg.name()));
                QVERIFY2(contrast(ax->labelColor(), bg) >= 4.5, qPrintable(ax->labelColor().name() + " on " + bg.name()));
            }
        }
    }

    // Cell numbers never overflow their cells (the Delta tab's 7 columns overlapped): they shrink to
    // the cell width and hide when even 6 pt does not fit; long column names are shortened from the
    // front and every column keeps a label.
    void cellNumbersFitTheirCells() {
        HeatmapView v;
        const QStringList cols = {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                                  "intermediate.dense", "output.dense", "cls.predictions.transform.dense"};
        v.setMatrix({"layer 0", "layer 1", "other"}, cols);
        for (int r = 0; r < 3; ++r)
            for (int c = 0; c < 7; ++c) v.setCell(r, c, 0.1 * (r + c) + 0.012345);
        v.show();
        QVERIFY(QTest::qWaitForWindowExposed(&v));
        auto fitsAt = [&](int w, int h) {
            v.resize(w, h);
            QCoreApplication::processEvents();
            v.plot()->replot();
            const double cw = v.plot()->axisRect()->rect().width() / 7.0;
            for (int i = 0; i < v.plot()->itemCount(); ++i)
                if (auto* t = qobject_cast<QCPItemText*>(v.plot()->item(i)); t && t->visible() && !t->text().isEmpty())
                    if (QFontMetrics(t->font()).horizontalAdvance(t->text()) > cw) return false;
            return true;
        };
        QVERIFY(fitsAt(1400, 600));
        QVERIFY(v.cellTextVisible());
        QCOMPARE(v.plot()->xAxis->tickLabelRotation(), 0.0);  // wide columns: labels lie flat
        QVERIFY(fitsAt(380, 300));
        QCOMPARE(v.plot()->xAxis->tickLabelRotation(), 90.0);  // narrow ones: upright, each under its column
        v.setMinimumSize(0, 0);
        QVERIFY(fitsAt(150, 150));
        QVERIFY(!v.cellTextVisible());  // 7 columns in a tiny plot: numbers only in the tooltips
        QVERIFY(v.toolTipAt(0, 1).contains(QLatin1String("0.1123")));
        auto* ticker = dynamic_cast<QCPAxisTickerText*>(v.plot()->xAxis->ticker().data());
        QVERIFY(ticker);
        QCOMPARE(ticker->ticks().size(), 7);
        QCOMPARE(ticker->ticks().value(6), QStringLiteral("\u2026") + QStringLiteral("cls.predictions.transform.dense").right(25));
        QVERIFY(v.toolTipAt(0, 6).contains(QLatin1String("cls.predictions.transform.dense")));
    }
};

DT_REGISTER_TEST(TestHeatmapView);
#include "test_heatmap_view.moc"
