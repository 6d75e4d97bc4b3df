// TrainingPlot's exports: the CSV holds exactly the points added (raw, smoothed, validation), and
// PNG/PDF files are written.
#include "test_registry.h"

#include "training_plot.h"

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

class TestTrainingPlot : public QObject {
    Q_OBJECT
private Q_SLOTS:
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
};

DT_REGISTER_TEST(TestTrainingPlot);
#include "test_training_plot.moc"
