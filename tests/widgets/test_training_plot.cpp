// TrainingPlot's exports: the CSV holds exactly the points added (raw, smoothed, validation), and
// PNG/PDF files are written.
#include "test_registry.h"

#include "training_plot.h"
#include "qcustomplot_compat.h"

#include <cmath>

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

class TestTrainingPlot : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // The legend sits in its own row above the axes, so no curve runs under it (inside the axis
    // rect it covered the loss curve whatever corner it took).
    void legendNeverCoversTheCurves() {
        TrainingPlot p;
        p.resize(600, 400);
        p.show();
        QVERIFY(QTest::qWaitForWindowExposed(&p));
        for (int s = 1; s <= 50; ++s) p.addStep(s, 2.0 / s);
        p.plot()->replot();
        QCPLegend* legend = p.plot()->legend;
        QVERIFY(legend->visible());
        QCOMPARE(legend->layout(), static_cast<QCPLayout*>(p.plot()->plotLayout()));
        QVERIFY(!legend->outerRect().intersects(p.plot()->axisRect()->rect()));
        QVERIFY(legend->outerRect().bottom() <= p.plot()->axisRect()->outerRect().top());
    }

    void exportsWhatWasPlotted() {
        TrainingPlot p;
        p.resize(600, 400);
        p.addStep(1, 2.0);
        p.addStep(2, 1.0);
        p.addEvaluation(2, 0.75);
        const QStringList lines = p.toCsv().split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 6);
        QCOMPARE(lines[0], QStringLiteral("kind,step,value"));
        QCOMPARE(lines[1], QStringLiteral("loss,1,2"));
        QCOMPARE(lines[2], QStringLiteral("loss,2,1"));
        QVERIFY(lines[3].startsWith(QStringLiteral("loss_smoothed,1,")));
        QVERIFY(lines[4].startsWith(QStringLiteral("loss_smoothed,2,")));
        const double smoothed = lines[4].section(QLatin1Char(','), 2).toDouble();
        QVERIFY(smoothed > 1.0 && smoothed < 2.0);  // an average of the two losses, not either
        QCOMPARE(lines[5], QStringLiteral("validation,2,0.75"));
        QTemporaryDir dir;
        QVERIFY(p.saveCsv(dir.filePath("c.csv")));
        QFile f(dir.filePath("c.csv"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(QString::fromUtf8(f.readAll()), p.toCsv());
        QVERIFY(p.savePng(dir.filePath("c.png"), 600, 400));
        QVERIFY(QFile(dir.filePath("c.png")).size() > 1000);
        QVERIFY(p.savePdf(dir.filePath("c.pdf")));
        QVERIFY(QFile(dir.filePath("c.pdf")).size() > 1000);
        QVERIFY(!p.saveCsv(dir.filePath("no/such/folder/c.csv")));
    }

    void ratesOverlaysAndLogScale() {
        TrainingPlot p;
        p.resize(600, 400);
        p.addStep(1, 2.0, 1e-3, 500.0);
        p.addStep(2, 1.0, 2e-3, 600.0);
        QVERIFY(p.toCsv().contains(QStringLiteral("lr,2,0.002\n")));
        QVERIFY(p.toCsv().contains(QStringLiteral("tokens_per_s,1,500\n")));
        QCOMPARE(p.ratesPlot()->graph(0)->data()->size(), 2);
        p.setOverlay(QStringLiteral("earlier"), {1, 2, 3}, {3.0, 2.5, 2.0});
        QCOMPARE(p.overlays(), QStringList{QStringLiteral("earlier")});
        QCOMPARE(p.plot()->graphCount(), 4);
        p.setOverlay(QStringLiteral("earlier"), {1}, {1.0});  // replaced, not added
        QCOMPARE(p.plot()->graphCount(), 4);
        p.removeOverlay(QStringLiteral("earlier"));
        QCOMPARE(p.plot()->graphCount(), 3);
        p.setLogScale(true);
        QCOMPARE(p.plot()->yAxis->scaleType(), QCPAxis::stLogarithmic);
        p.setLogScale(false);
        QCOMPARE(p.plot()->yAxis->scaleType(), QCPAxis::stLinear);
    }

    void aMillionPoints() {
        // A million steps go in and draw; the graphs hold every point (sampling happens at draw time).
        TrainingPlot p;
        p.resize(800, 500);
        p.show();
        for (int i = 1; i <= 1000000; ++i) p.addStep(i, 2.0 / std::sqrt(static_cast<double>(i)) + 0.01 * (i % 7), 1e-3, 1000.0);
        QCOMPARE(p.pointCount(), 1000000);
        QCOMPARE(p.plot()->graph(0)->data()->size(), 1000000);
        QCOMPARE(p.plot()->graph(1)->data()->size(), 1000000);
        const double ms = p.replotMilliseconds();
        QVERIFY(ms > 0);
        qInfo("replot of 1,000,000 points: %.1f ms", ms);
        QCOMPARE(p.plot()->xAxis->range().upper, 1000000.0);
    }
};

DT_REGISTER_TEST(TestTrainingPlot);
#include "test_training_plot.moc"
