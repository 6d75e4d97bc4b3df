// MethodComparisonView: the scatter marks exactly the non-dominated methods (fewer parameters, higher
// metric) and draws the front through them; a diverged (NaN) method is never on it; the curves follow
// steps or wall time; colours match between the two plots; clear() empties both; CSV/PNG/PDF exports;
// palette-coloured axes and front line under a dark palette.
#include "test_registry.h"
#include "test_util.h"

#include "method_comparison_view.h"
#include "qcustomplot_compat.h"

#include <QApplication>
#include <QCheckBox>
#include <QFile>
#include <QImage>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <limits>

namespace {

// The scatter's graph holding a method's point (the graph whose only point has this key and value).
QCPGraph* pointGraph(const MethodComparisonView& v, double params, double value) {
    for (int i = 0; i < v.scatter()->graphCount(); ++i) {
        QCPGraph* g = v.scatter()->graph(i);
        if (g->lineStyle() == QCPGraph::lsNone && g->data()->size() == 1 && g->data()->begin()->key == params &&
            g->data()->begin()->value == value)
            return g;
    }
    return nullptr;
}

// The front: the scatter's graph drawn as a line.
QCPGraph* frontGraph(const MethodComparisonView& v) {
    for (int i = 0; i < v.scatter()->graphCount(); ++i)
        if (v.scatter()->graph(i)->lineStyle() != QCPGraph::lsNone) return v.scatter()->graph(i);
    return nullptr;
}

QVector<QPointF> points(const QCPGraph* g) {
    QVector<QPointF> out;
    for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it) out << QPointF(it->key, it->value);
    return out;
}

QCPGraph* curveGraph(const MethodComparisonView& v, const QString& method) {
    for (int i = 0; i < v.curves()->graphCount(); ++i)
        if (v.curves()->graph(i)->name() == method) return v.curves()->graph(i);
    return nullptr;
}

QStringList scatterLabels(const MethodComparisonView& v) {
    QStringList out;
    for (int i = 0; i < v.scatter()->itemCount(); ++i)
        if (auto* t = qobject_cast<QCPItemText*>(v.scatter()->item(i))) out << t->text().trimmed();
    out.sort();
    return out;
}

}  // namespace

class TestMethodComparisonView : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void paretoFront() {
        MethodComparisonView v;
        v.setMethodResult("lora", 100, 0.8);
        v.setMethodResult("full", 1000, 0.9);
        v.setMethodResult("adapter", 1000, 0.7);  // beaten by lora: more parameters and a lower metric
        v.setMethodResult("bitfit", 10, 0.5);
        v.setMethodResult("prefix", 200, 0.8);    // as good as lora with more parameters: dominated
        QCOMPARE(v.methods(), (QStringList{"lora", "full", "adapter", "bitfit", "prefix"}));
        QVERIFY(v.isPareto("lora"));
        QVERIFY(v.isPareto("full"));
        QVERIFY(v.isPareto("bitfit"));
        QVERIFY(!v.isPareto("adapter"));
        QVERIFY(!v.isPareto("prefix"));
        QVERIFY(!v.isPareto("unknown"));
        QVERIFY(v.hasResult("adapter"));
        QVERIFY(!v.hasResult("unknown"));
        // One point per method (diamond on the front, circle off it), each labelled with its name.
        QCOMPARE(v.scatter()->graphCount(), 1 + 5);
        QCOMPARE(scatterLabels(v), (QStringList{"adapter", "bitfit", "full", "lora", "prefix"}));
        QCPGraph* lora = pointGraph(v, 100, 0.8);
        QCPGraph* adapter = pointGraph(v, 1000, 0.7);
        QVERIFY(lora && adapter);
        QCOMPARE(lora->scatterStyle().shape(), QCPScatterStyle::ssDiamond);
        QCOMPARE(adapter->scatterStyle().shape(), QCPScatterStyle::ssCircle);
        QVERIFY(lora->scatterStyle().size() > adapter->scatterStyle().size());
        // The front: a dashed step line through the non-dominated points, by parameter count.
        QCPGraph* front = frontGraph(v);
        QVERIFY(front);
        QCOMPARE(front->lineStyle(), QCPGraph::lsStepLeft);
        QCOMPARE(front->pen().style(), Qt::DashLine);
        QCOMPARE(points(front), (QVector<QPointF>{{10, 0.5}, {100, 0.8}, {1000, 0.9}}));
        // Parameters on a log axis; every point inside the view.
        QCOMPARE(v.scatter()->xAxis->scaleType(), QCPAxis::stLogarithmic);
        QVERIFY(v.scatter()->xAxis->range().contains(10) && v.scatter()->xAxis->range().contains(1000));
        QVERIFY(v.scatter()->yAxis->range().contains(0.5) && v.scatter()->yAxis->range().contains(0.9));
        // A new result for a method replaces its old one and the front is recomputed.
        v.setMethodResult("adapter", 50, 0.95);
        QCOMPARE(v.methods().size(), 5);
        QVERIFY(v.isPareto("adapter"));
        QVERIFY(v.isPareto("bitfit"));
        QVERIFY(!v.isPareto("lora"));
        QVERIFY(!v.isPareto("full"));
        QCOMPARE(points(frontGraph(v)), (QVector<QPointF>{{10, 0.5}, {50, 0.95}}));
        QCOMPARE(v.scatter()->graphCount(), 1 + 5);
        QCOMPARE(v.scatter()->itemCount(), 5);
    }

    void tiesAndZeroParameters() {
        MethodComparisonView v;
        // Equal results: neither beats the other, both are on the front.
        v.setMethodResult("a", 100, 0.8);
        v.setMethodResult("b", 100, 0.8);
        QVERIFY(v.isPareto("a"));
        QVERIFY(v.isPareto("b"));
        // Zero trainable parameters cannot sit on a log axis: drawn at 1, still counted as fewest.
        v.setMethodResult("zero", 0, 0.5);
        QVERIFY(pointGraph(v, 1, 0.5));
        QVERIFY(v.isPareto("zero"));
        QVERIFY(v.toCsv().contains(QStringLiteral("\nzero,0,0.5,yes\n")));
    }

    void divergedMethodIsNotOnTheFront() {
        // A method that diverged finishes with a NaN metric: like the engine's comparison.csv, the view
        // must not call it Pareto-optimal, nor draw the front through it.
        MethodComparisonView v;
        v.setMethodResult("diverged", 5, std::numeric_limits<double>::quiet_NaN());
        v.setMethodResult("lora", 100, 0.8);
        v.setMethodResult("full", 1000, 0.7);
        QVERIFY(!v.isPareto("diverged"));
        QVERIFY(v.isPareto("lora"));
        QVERIFY(!v.isPareto("full"));
        QVERIFY(v.hasResult("diverged"));
        const QStringList lines = v.toCsv().split(QLatin1Char('\n'));
        QVERIFY2(lines.contains(QStringLiteral("diverged,5,nan,no")), qPrintable(v.toCsv()));
        QCPGraph* front = frontGraph(v);
        QVERIFY(front);
        for (const QPointF& p : points(front)) QVERIFY(std::isfinite(p.y()));
        QCOMPARE(points(front), QVector<QPointF>{QPointF(100, 0.8)});
        QVERIFY(std::isfinite(v.scatter()->yAxis->range().lower) && std::isfinite(v.scatter()->yAxis->range().upper));
    }

    void curvesAgainstStepsOrTime() {
        MethodComparisonView v;
        v.addCurvePoint("lora", 10, 1.5, 0.6);
        v.addCurvePoint("lora", 20, 3.0, 0.7);
        v.addCurvePoint("bitfit", 10, 0.5, 0.55);
        QCOMPARE(v.curvePoints("lora"), 2);
        QCOMPARE(v.curvePoints("bitfit"), 1);
        QCOMPARE(v.curvePoints("none"), 0);
        QCOMPARE(v.methods(), (QStringList{"lora", "bitfit"}));
        QCOMPARE(v.curves()->graphCount(), 2);
        QCPGraph* lora = curveGraph(v, "lora");
        QVERIFY(lora);
        QCOMPARE(points(lora), (QVector<QPointF>{{10, 0.6}, {20, 0.7}}));
        QCOMPARE(v.curves()->xAxis->label(), QStringLiteral("step"));
        // Against wall time: the same values at their seconds; the check box follows.
        v.setTimeAxis(true);
        QVERIFY(v.findChild<QCheckBox*>()->isChecked());
        QCOMPARE(v.curves()->xAxis->label(), QStringLiteral("training time (s)"));
        QCOMPARE(points(lora), (QVector<QPointF>{{1.5, 0.6}, {3.0, 0.7}}));
        v.addCurvePoint("lora", 30, 4.5, 0.75);  // arrives in the current mode
        QCOMPARE(points(lora).last(), QPointF(4.5, 0.75));
        // The check box drives it too.
        v.findChild<QCheckBox*>()->setChecked(false);
        QCOMPARE(points(lora), (QVector<QPointF>{{10, 0.6}, {20, 0.7}, {30, 0.75}}));
        QCOMPARE(v.curves()->xAxis->label(), QStringLiteral("step"));
        // A whole curve replaces what arrived point by point.
        v.setCurve("lora", {100, 200}, {10, 20}, {0.8, 0.85});
        QCOMPARE(v.curvePoints("lora"), 2);
        QCOMPARE(points(lora), (QVector<QPointF>{{100, 0.8}, {200, 0.85}}));
        QCOMPARE(v.curves()->graphCount(), 2);
        // Each method keeps one colour, the same in both plots; methods differ.
        v.setMethodResult("lora", 1000, 0.85);
        v.setMethodResult("bitfit", 100, 0.55);
        QVERIFY(pointGraph(v, 1000, 0.85) && pointGraph(v, 100, 0.55) && curveGraph(v, "bitfit"));
        QCOMPARE(pointGraph(v, 1000, 0.85)->scatterStyle().brush().color(), lora->pen().color());
        QCOMPARE(pointGraph(v, 100, 0.55)->scatterStyle().brush().color(), curveGraph(v, "bitfit")->pen().color());
        QVERIFY(lora->pen().color() != curveGraph(v, "bitfit")->pen().color());
        QCOMPARE(v.curves()->legend->itemCount(), 2);
    }

    void flatCurvesGetAReadableRange() {
        MethodComparisonView v;
        v.addCurvePoint("a", 1, 1, 1.0);
        v.addCurvePoint("a", 2, 2, 1.0);
        v.addCurvePoint("b", 1, 1, 1.0);
        QTRY_VERIFY(std::abs(v.curves()->yAxis->range().size() - 0.1) < 1e-9);  // fitted on the coalescing timer
        QVERIFY(v.curves()->yAxis->range().contains(1.0));
        // More flat points, each fitted again: the range stays put instead of growing with every fit.
        for (int s = 3; s < 8; ++s) {
            v.addCurvePoint("a", s, s, 1.0);
            QTest::qWait(60);
        }
        QVERIFY2(std::abs(v.curves()->yAxis->range().size() - 0.1) < 1e-9, qPrintable(QString::number(v.curves()->yAxis->range().size())));
        // Spread values: all inside, with a margin.
        v.addCurvePoint("b", 2, 2, 0.5);
        QTRY_VERIFY(v.curves()->yAxis->range().lower < 0.5);
        QVERIFY(v.curves()->yAxis->range().upper > 1.0);
        QVERIFY(v.curves()->xAxis->range().contains(1) && v.curves()->xAxis->range().contains(2));
    }

    void clearEmptiesBoth() {
        MethodComparisonView v;
        v.addCurvePoint("lora", 10, 1.0, 0.6);
        v.setMethodResult("lora", 100, 0.6);
        v.setMethodResult("bitfit", 10, 0.5);
        v.clear(QStringLiteral("f1"));
        QVERIFY(v.methods().isEmpty());
        QVERIFY(!v.hasResult("lora"));
        QCOMPARE(v.curvePoints("lora"), 0);
        QCOMPARE(v.curves()->graphCount(), 0);
        QCOMPARE(v.scatter()->graphCount(), 0);
        QCOMPARE(v.scatter()->itemCount(), 0);
        QCOMPARE(v.scatter()->yAxis->label(), QStringLiteral("f1"));
        QCOMPARE(v.curves()->yAxis->label(), QStringLiteral("f1"));
        QCOMPARE(v.toCsv(), QStringLiteral("method,trainable_params,f1,pareto\n\nmethod,step,elapsed_s,f1\n"));
        // Filled again after clearing: colours start over, points are new.
        v.setMethodResult("ia3", 30, 0.7);
        QCOMPARE(v.methods(), QStringList{"ia3"});
        QCOMPARE(v.scatter()->graphCount(), 2);
    }

    void exports() {
        MethodComparisonView v;
        v.resize(800, 600);
        v.clear(QStringLiteral("accuracy"));
        v.addCurvePoint("lora", 10, 1.25, 0.6);
        v.addCurvePoint("lora", 20, 2.5, 0.7);
        v.addCurvePoint("bitfit", 10, 0.5, 0.55);
        v.setMethodResult("lora", 1234, 0.7);
        v.setMethodResult("bitfit", 56, 0.55);
        v.setMethodResult("adapter", 5000, 0.65);  // a result without a curve
        QCOMPARE(v.toCsv(), QStringLiteral("method,trainable_params,accuracy,pareto\n"
                                           "lora,1234,0.7,yes\n"
                                           "bitfit,56,0.55,yes\n"
                                           "adapter,5000,0.65,no\n"
                                           "\n"
                                           "method,step,elapsed_s,accuracy\n"
                                           "lora,10,1.25,0.6\n"
                                           "lora,20,2.5,0.7\n"
                                           "bitfit,10,0.5,0.55\n"));
        QTemporaryDir dir;
        QVERIFY(v.saveCsv(dir.filePath("c.csv")));
        QFile f(dir.filePath("c.csv"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(QString::fromUtf8(f.readAll()), v.toCsv());
        QVERIFY(!v.saveCsv(dir.filePath("no/such/folder/c.csv")));
        QVERIFY(v.savePng(dir.filePath("c.png")));
        const QImage png(dir.filePath("c.png"));
        QCOMPARE(png.size(), v.size() * v.devicePixelRatioF());
        QVERIFY(v.savePdf(dir.filePath("c.pdf")));
        QFile pdf(dir.filePath("c.pdf"));
        QVERIFY(pdf.open(QIODevice::ReadOnly));
        QVERIFY(pdf.read(5) == "%PDF-");
        QVERIFY(pdf.size() > 1000);
    }

    void darkPalette() {
        {
            const dttest::DarkPalette dark;  // restored at the end of the block
            MethodComparisonView v;
            v.setMethodResult("lora", 100, 0.8);
            v.setMethodResult("bitfit", 10, 0.6);
            for (QCustomPlot* p : {v.scatter(), v.curves()}) {
                const QImage img = p->toPixmap(400, 300).toImage();
                QCOMPARE(img.pixelColor(3, 3), QColor(25, 25, 25));  // the palette's base
                for (QCPAxis* ax : {p->xAxis, p->yAxis}) {
                    QCOMPARE(ax->tickLabelColor(), QColor(230, 230, 230));
                    QCOMPARE(ax->labelColor(), QColor(230, 230, 230));
                    QCOMPARE(ax->basePen().color(), QColor(230, 230, 230));
                }
            }
            // The front line and the method names are drawn in the text colour, not black.
            QVERIFY(frontGraph(v));
        QCOMPARE(frontGraph(v)->pen().color(), QColor(230, 230, 230));
            for (int i = 0; i < v.scatter()->itemCount(); ++i)
                if (auto* t = qobject_cast<QCPItemText*>(v.scatter()->item(i))) QCOMPARE(t->color(), QColor(230, 230, 230));
        }
    }
};

DT_REGISTER_TEST(TestMethodComparisonView);
#include "test_method_comparison_view.moc"
