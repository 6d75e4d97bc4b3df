// BudgetChart: one stacked bar series per method with its counts per group, totals per group, the
// stack drawn in order (each method's colour at its own height), ticks named after the groups, the
// value range fitting the tallest stack, clearing, and palette colours under a dark palette.
#include "test_registry.h"
#include "test_util.h"

#include "budget_chart.h"
#include "qcustomplot_compat.h"

#include <QApplication>
#include <QImage>
#include <QTest>

namespace {

QList<QCPBars*> bars(const BudgetChart& c) {
    QList<QCPBars*> out;
    for (int i = 0; i < c.plot()->plottableCount(); ++i)
        if (auto* b = qobject_cast<QCPBars*>(c.plot()->plottable(i))) out << b;
    return out;
}

QVector<QPointF> points(const QCPBars* b) {
    QVector<QPointF> out;
    for (auto it = b->data()->constBegin(); it != b->data()->constEnd(); ++it) out << QPointF(it->key, it->value);
    return out;
}

bool near(const QColor& a, const QColor& b, int tol = 3) {
    return std::abs(a.red() - b.red()) <= tol && std::abs(a.green() - b.green()) <= tol && std::abs(a.blue() - b.blue()) <= tol;
}

}  // namespace

class TestBudgetChart : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void stacksPerMethod() {
        BudgetChart c;
        c.setBudget({"layer 0", "layer 1", "other"}, {"lora", "bitfit"}, {{100, 200, 0}, {10, 10, 50}});
        QCOMPARE(c.groups(), (QStringList{"layer 0", "layer 1", "other"}));
        const auto b = bars(c);
        QCOMPARE(b.size(), 2);
        QCOMPARE(b[0]->name(), QStringLiteral("lora"));
        QCOMPARE(b[1]->name(), QStringLiteral("bitfit"));
        QCOMPARE(points(b[0]), (QVector<QPointF>{{0, 100}, {1, 200}, {2, 0}}));
        QCOMPARE(points(b[1]), (QVector<QPointF>{{0, 10}, {1, 10}, {2, 50}}));
        // Stacked: the second method sits on the first.
        QCOMPARE(b[1]->barBelow(), b[0]);
        QVERIFY(!b[0]->barBelow());
        QVERIFY(b[0]->brush().color() != b[1]->brush().color());
        QCOMPARE(c.total(0), 110.0);
        QCOMPARE(c.total(1), 210.0);
        QCOMPARE(c.total(2), 50.0);
        QCOMPARE(c.total(3), 0.0);  // no such group
        QCOMPARE(c.total(-1), 0.0);
        // Ticks name the groups; the value axis fits the tallest stack with headroom; every bar in view.
        auto ticker = c.plot()->xAxis->ticker().dynamicCast<QCPAxisTickerText>();
        QVERIFY(ticker);
        QCOMPARE(ticker->ticks(), (QMap<double, QString>{{0, "layer 0"}, {1, "layer 1"}, {2, "other"}}));
        QCOMPARE(c.plot()->yAxis->range().lower, 0.0);
        QVERIFY(c.plot()->yAxis->range().upper > 210.0 && c.plot()->yAxis->range().upper < 300.0);
        QVERIFY(c.plot()->xAxis->range().contains(-0.35) && c.plot()->xAxis->range().contains(2.35));  // bars are 0.7 wide
        QCOMPARE(c.plot()->xAxis->tickLabelRotation(), 0.0);
        QCOMPARE(c.plot()->legend->itemCount(), 2);
        // Many groups: the labels turn so they do not overlap.
        QStringList many;
        for (int i = 0; i < 12; ++i) many << QStringLiteral("layer %1").arg(i);
        c.setBudget(many, {"lora"}, {QVector<double>(12, 5.0)});
        QVERIFY(c.plot()->xAxis->tickLabelRotation() > 0);
    }

    void stackDrawnInOrder() {
        BudgetChart c;
        c.resize(500, 400);
        c.setBudget({"g0", "g1"}, {"lora", "ia3"}, {{100, 40}, {60, 40}});
        c.show();
        QVERIFY(QTest::qWaitForWindowExposed(&c));
        c.plot()->replot();
        const QImage img = c.plot()->grab().toImage();
        const auto b = bars(c);
        auto pixel = [&](double key, double value) {
            return img.pixelColor(static_cast<int>(c.plot()->xAxis->coordToPixel(key)), static_cast<int>(c.plot()->yAxis->coordToPixel(value)));
        };
        // Group 0: lora from 0 to 100, ia3 from 100 to 160, nothing above.
        QVERIFY2(near(pixel(0, 50), b[0]->brush().color()), qPrintable(pixel(0, 50).name()));
        QVERIFY2(near(pixel(0, 130), b[1]->brush().color()), qPrintable(pixel(0, 130).name()));
        QVERIFY(!near(pixel(0, 175), b[0]->brush().color()) && !near(pixel(0, 175), b[1]->brush().color()));
        // Group 1: 40 + 40.
        QVERIFY(near(pixel(1, 20), b[0]->brush().color()));
        QVERIFY(near(pixel(1, 60), b[1]->brush().color()));
        QVERIFY(!near(pixel(1, 100), b[1]->brush().color()));
    }

    void replacingAndClearing() {
        BudgetChart c;
        c.setBudget({"a", "b"}, {"lora", "bitfit", "ia3"}, {{1, 2}, {3, 4}, {5, 6}});
        QCOMPARE(bars(c).size(), 3);
        // A new budget replaces the old series rather than adding to them.
        c.setBudget({"a"}, {"lora"}, {{7}});
        QCOMPARE(bars(c).size(), 1);
        QCOMPARE(c.total(0), 7.0);
        QCOMPARE(c.total(1), 0.0);
        QCOMPARE(c.plot()->legend->itemCount(), 1);
        // Cleared: no bars, no groups, zero totals, a plain value range.
        c.setBudget({}, {}, {});
        QCOMPARE(c.plot()->plottableCount(), 0);
        QVERIFY(c.groups().isEmpty());
        QCOMPARE(c.total(0), 0.0);
        QCOMPARE(c.plot()->yAxis->range(), QCPRange(0, 1));
        QCOMPARE(c.plot()->legend->itemCount(), 0);
        QVERIFY(!c.plot()->toPixmap(300, 200).isNull());
        // Methods with nothing trained anywhere: zero bars, still a usable range.
        c.setBudget({"a", "b"}, {"lora"}, {{0, 0}});
        QCOMPARE(c.plot()->yAxis->range(), QCPRange(0, 1));
        // Fewer count rows than methods: the missing method draws nothing and adds nothing.
        c.setBudget({"a", "b"}, {"lora", "ia3"}, {{3, 4}});
        QCOMPARE(bars(c).size(), 2);
        QCOMPARE(bars(c)[1]->data()->size(), 0);
        QCOMPARE(c.total(1), 4.0);
    }

    void darkPalette() {
        {
            const dttest::DarkPalette dark;  // restored at the end of the block
            BudgetChart c;
            c.setBudget({"a", "b"}, {"lora"}, {{3, 4}});
            const QImage img = c.plot()->toPixmap(400, 300).toImage();
            QCOMPARE(img.pixelColor(3, 3), QColor(25, 25, 25));
            for (QCPAxis* ax : {c.plot()->xAxis, c.plot()->yAxis}) {
                QCOMPARE(ax->tickLabelColor(), QColor(230, 230, 230));
                QCOMPARE(ax->labelColor(), QColor(230, 230, 230));
            }
            QCOMPARE(c.plot()->legend->textColor(), QColor(230, 230, 230));
        }
    }
};

DT_REGISTER_TEST(TestBudgetChart);
#include "test_budget_chart.moc"
