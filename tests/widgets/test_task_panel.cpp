// TaskPanel: the task JSON it builds from a JSONL/CSV/TSV file and its controls (fields, pair,
// classification or regression, label words or a head, template, split, name and category), the
// validation split's bounds, writeTask's file (atomic, read back by the engine's run spec and data
// reader), and the message for each kind of bad input, with nothing written.
#include "test_registry.h"

#include "task_panel.h"

#include "train/run_spec.h"

#include <nlohmann/json.hpp>

#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>

namespace {

void writeText(const QString& path, const QByteArray& text) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(text);
}

// Twelve sentiment lines, labels "pos"/"neg".
QString sentimentJsonl(const QTemporaryDir& dir) {
    QByteArray s;
    for (int i = 0; i < 12; ++i)
        s += QByteArrayLiteral("{\"text\": \"line ") + QByteArray::number(i) + "\", \"label\": \"" + (i % 3 ? "pos" : "neg") + "\"}\n";
    const QString path = dir.filePath("sst.jsonl");
    writeText(path, s);
    return path;
}

QString pairsCsv(const QTemporaryDir& dir) {
    const QString path = dir.filePath("pairs.csv");
    writeText(path, "sentence1,sentence2,label\n"
                    "\"a man, sleeping\",a person rests,entailment\n"
                    "a dog,a cat,contradiction\n"
                    "two kids,children,entailment\n");
    return path;
}

QString scoresTsv(const QTemporaryDir& dir) {
    const QString path = dir.filePath("scores.tsv");
    writeText(path, "text\tscore\nfine\t3.5\nbad\t1.0\ngood\t4.25\n");
    return path;
}

QDoubleSpinBox* splitBox(TaskPanel& p) { return p.findChild<QDoubleSpinBox*>(); }

QLabel* status(TaskPanel& p) {
    for (QLabel* l : p.findChildren<QLabel*>())
        if (l->wordWrap()) return l;
    return nullptr;
}

QPushButton* useButton(TaskPanel& p) {
    for (QPushButton* b : p.findChildren<QPushButton*>())
        if (b->text() == QStringLiteral("Use for Training")) return b;
    return nullptr;
}

QLineEdit* templateEdit(TaskPanel& p) {
    for (QLineEdit* e : p.findChildren<QLineEdit*>())
        if (e->text().contains(QStringLiteral("[MASK]"))) return e;
    return nullptr;
}

// The label-word table (label, word).
QString js(const nlohmann::json& j) { return QString::fromStdString(j.dump()); }

QTableWidget* wordsTable(TaskPanel& p) {
    for (QTableWidget* t : p.findChildren<QTableWidget*>())
        if (t->columnCount() == 2 && t->horizontalHeaderItem(0) && t->horizontalHeaderItem(0)->text() == QStringLiteral("label")) return t;
    return nullptr;
}

// The engine reads the spec that names this task file.
dt::RunSpec engineSpec(const QString& taskPath) {
    const nlohmann::json j = {{"model", "tiny-bert"}, {"task", taskPath.toStdString()}, {"delta", "lora"}};
    return dt::RunSpec::from_json(j, "test", "");
}

}  // namespace

class TestTaskPanel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void jsonlWithLabelWords() {
        QTemporaryDir dir;
        TaskPanel p;
        const QString path = sentimentJsonl(dir);
        QVERIFY2(p.loadFile(path), qPrintable(p.error()));
        QVERIFY(p.error().isEmpty());
        QStringList columns = p.columns();
        columns.sort();
        QCOMPARE(columns, (QStringList{"label", "text"}));
        QCOMPARE(p.previewRows(), 10);  // the first rows only
        QCOMPARE(p.labels(), (QStringList{"neg", "pos"}));
        QVERIFY(p.validate());
        const nlohmann::json want = {{"train", QFileInfo(path).absoluteFilePath().toStdString()},
                                     {"format", "jsonl"},
                                     {"validation_split", 0.1},
                                     {"name", "sst"},  // from the file name
                                     {"fields", {{"text", "text"}, {"label", "label"}}},
                                     {"labels", {"neg", "pos"}},
                                     {"template", "{text} It was [MASK] ."},
                                     {"label_words", {{"neg", "neg"}, {"pos", "pos"}}}};
        QCOMPARE(QString::fromStdString(p.taskJson().dump()), QString::fromStdString(want.dump()));
        // Label words, template, name and category reach the JSON.
        p.setLabelWord("pos", "great");
        p.setLabelWord("nope", "x");  // no such label: ignored
        p.setTemplate("Review: {text} [MASK]!");
        p.setName("  sst2 ", " sentiment ");
        const nlohmann::json t = p.taskJson();
        QCOMPARE(js(t["label_words"]), js({{"neg", "neg"}, {"pos", "great"}}));
        QCOMPARE(t["template"].get<std::string>(), std::string("Review: {text} [MASK]!"));
        QCOMPARE(t["name"].get<std::string>(), std::string("sst2"));
        QCOMPARE(t["category"].get<std::string>(), std::string("sentiment"));
    }

    void csvPairsAndAHead() {
        QTemporaryDir dir;
        TaskPanel p;
        QVERIFY2(p.loadFile(pairsCsv(dir)), qPrintable(p.error()));
        QCOMPARE(p.columns(), (QStringList{"sentence1", "sentence2", "label"}));
        QCOMPARE(p.previewRows(), 3);
        QCOMPARE(p.labels(), (QStringList{"contradiction", "entailment"}));
        // The usual names are picked: sentence1 as the text, sentence2 as the pair.
        nlohmann::json t = p.taskJson();
        QCOMPARE(t["format"].get<std::string>(), std::string("csv"));
        QCOMPARE(js(t["fields"]), js({{"text", "sentence1"}, {"pair", "sentence2"}, {"label", "label"}}));
        // A classification head: labels, no template or words; those controls are off.
        p.setLabelWords(false);
        t = p.taskJson();
        QCOMPARE(js(t["labels"]), js({"contradiction", "entailment"}));
        QVERIFY(!t.contains("template"));
        QVERIFY(!t.contains("label_words"));
        QVERIFY(!templateEdit(p)->isEnabled());
        QVERIFY(!wordsTable(p)->isEnabled());
        QVERIFY(p.validate());
        // No pair.
        p.setFields("sentence2", "", "label");
        t = p.taskJson();
        QCOMPARE(js(t["fields"]), js({{"text", "sentence2"}, {"label", "label"}}));
        p.setLabelWords(true);
        QVERIFY(templateEdit(p)->isEnabled());
        QVERIFY(wordsTable(p)->isEnabled());
        QCOMPARE(wordsTable(p)->rowCount(), 2);
    }

    void regression() {
        QTemporaryDir dir;
        TaskPanel p;
        QVERIFY2(p.loadFile(scoresTsv(dir)), qPrintable(p.error()));
        // No "label" column: the last one is the label.
        nlohmann::json t = p.taskJson();
        QCOMPARE(js(t["fields"]), js({{"text", "text"}, {"label", "score"}}));
        QCOMPARE(t["format"].get<std::string>(), std::string("tsv"));
        p.setRegression(true);
        t = p.taskJson();
        QCOMPARE(t["regression"].get<bool>(), true);
        QVERIFY(!t.contains("labels"));
        QVERIFY(!t.contains("template"));
        QVERIFY(!t.contains("label_words"));
        QVERIFY(!templateEdit(p)->isEnabled());
        QVERIFY(p.validate());
        const QString written = p.writeTask(dir.filePath("out"));
        QVERIFY(!written.isEmpty());
        const dt::RunSpec spec = engineSpec(written);
        QCOMPARE(spec.task_type, std::string("regression"));
        QVERIFY(spec.text.regression);
        QCOMPARE(spec.text.label_field, std::string("score"));
        QCOMPARE(spec.format, std::string("tsv"));
    }

    void validationSplitBounds() {
        QTemporaryDir dir;
        TaskPanel p;
        QVERIFY(p.loadFile(sentimentJsonl(dir)));
        QDoubleSpinBox* split = splitBox(p);
        QVERIFY(split);
        // Between 1% and half the file: never nothing held out, never most of it.
        split->setValue(0.9);
        QCOMPARE(p.taskJson()["validation_split"].get<double>(), 0.5);
        split->setValue(0.0);
        QCOMPARE(p.taskJson()["validation_split"].get<double>(), 0.01);
        split->setValue(-1.0);
        QCOMPARE(p.taskJson()["validation_split"].get<double>(), 0.01);
        split->setValue(0.25);
        QCOMPARE(p.taskJson()["validation_split"].get<double>(), 0.25);
        // Both ends are splits the engine accepts.
        for (double v : {0.01, 0.5}) {
            split->setValue(v);
            const QString written = p.writeTask(dir.filePath(QStringLiteral("split%1").arg(v)));
            QVERIFY(!written.isEmpty());
            QCOMPARE(engineSpec(written).validation_split, v);
        }
    }

    void writeTaskForTheEngine() {
        QTemporaryDir dir;
        TaskPanel p;
        const QString data = sentimentJsonl(dir);
        QVERIFY(p.loadFile(data));
        p.setLabelWord("pos", "free");   // single tokens of the test tokenizer's vocabulary
        p.setLabelWord("neg", "right");
        p.setName("sst", "sentiment");
        splitBox(p)->setValue(0.25);
        const QString out = dir.filePath("a/b/c");  // folders made as needed
        const QString written = p.writeTask(out);
        QCOMPARE(written, out + QStringLiteral("/task.json"));
        QVERIFY(p.error().isEmpty());
        QCOMPARE(status(p)->text(), QStringLiteral("Wrote %1").arg(written));
        QFile f(written);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray bytes = f.readAll();
        QVERIFY(bytes.endsWith('\n'));
        QCOMPARE(js(nlohmann::json::parse(bytes.toStdString())), js(p.taskJson()));
        QCOMPARE(QDir(out).entryList(QDir::Files | QDir::Hidden), QStringList{"task.json"});  // no temporary left
        // The engine's run spec reads every field back.
        dt::RunSpec spec = engineSpec(written);
        QCOMPARE(QString::fromStdString(spec.train_file), QFileInfo(data).absoluteFilePath());
        QCOMPARE(spec.format, std::string("jsonl"));
        QCOMPARE(spec.text.text_field, std::string("text"));
        QCOMPARE(spec.text.label_field, std::string("label"));
        QVERIFY(spec.text.pair_field.empty());
        QCOMPARE(spec.labels, (std::vector<std::string>{"neg", "pos"}));
        QCOMPARE(spec.text.template_text, std::string("{text} It was [MASK] ."));
        QCOMPARE(spec.text.label_words.size(), std::size_t(2));
        QCOMPARE(spec.validation_split, 0.25);
        QCOMPARE(spec.task_name, std::string("sst"));
        QCOMPARE(spec.task_category, std::string("sentiment"));
        QCOMPARE(spec.task_type, std::string("classification"));
        // ... and its data reader reads the file with it: 12 lines, a quarter held out.
        spec.tokenizer_file = (dttest::dataDir() + "/tokenizers/bert-wordpiece-uncased/tokenizer.json").toStdString();
        const dt::TaskData d = dt::load_task_data(spec);
        QCOMPARE(d.train.size() + d.valid.size(), std::size_t(12));
        QCOMPARE(d.valid.size(), std::size_t(3));
        QCOMPARE(d.train.labels, (std::vector<std::string>{"neg", "pos"}));
        QCOMPARE(d.train.label_word_ids.size(), std::size_t(2));
        // Written again: replaced whole.
        p.setName("sst-b");
        QCOMPARE(p.writeTask(out), written);
        QCOMPARE(engineSpec(written).task_name, std::string("sst-b"));
    }

    void badInputMessages() {
        QTemporaryDir dir;
        TaskPanel p;
        QSignalSpy used(&p, &TaskPanel::useRequested);
        QVERIFY(!useButton(p)->isEnabled());
        QVERIFY(!p.validate());
        QCOMPARE(p.error(), QStringLiteral("Open a data file first"));
        QVERIFY(p.writeTask(dir.filePath("none")).isEmpty());
        QVERIFY(!QFile::exists(dir.filePath("none/task.json")));
        // The path field takes a typed path (Enter loads it) instead of ignoring typing.
        writeText(dir.filePath("typed.jsonl"), "{\"text\": \"a b\", \"label\": \"x\"}\n{\"text\": \"c\", \"label\": \"y\"}\n");
        TaskPanel typed;
        auto* path = typed.findChild<QLineEdit*>();
        QVERIFY(path && !path->isReadOnly());
        path->setText(dir.filePath("typed.jsonl"));
        Q_EMIT path->returnPressed();
        QCOMPARE(typed.previewRows(), 2);
        QVERIFY(useButton(typed)->isEnabled());
        // Files that cannot be read: false, a message naming the file, the panel unchanged.
        QVERIFY(!p.loadFile(dir.filePath("missing.jsonl")));
        QVERIFY2(p.error().contains(QStringLiteral("missing.jsonl")), qPrintable(p.error()));
        writeText(dir.filePath("empty.jsonl"), "");
        QVERIFY(!p.loadFile(dir.filePath("empty.jsonl")));
        QVERIFY2(p.error().contains(QStringLiteral("no rows")), qPrintable(p.error()));
        writeText(dir.filePath("bad.jsonl"), "{\"text\": \"a\", \"label\": \"x\"}\n{not json\n");
        QVERIFY(!p.loadFile(dir.filePath("bad.jsonl")));
        QVERIFY2(p.error().contains(QStringLiteral("bad.jsonl:2")), qPrintable(p.error()));
        writeText(dir.filePath("notes.txt"), "text,label\na,b\n");
        QVERIFY(!p.loadFile(dir.filePath("notes.txt")));
        QVERIFY(!p.error().isEmpty());
        QVERIFY(p.columns().isEmpty());
        QVERIFY(!useButton(p)->isEnabled());

        const QString good = sentimentJsonl(dir);
        QVERIFY(p.loadFile(good));
        QVERIFY(useButton(p)->isEnabled());
        const QStringList columns = p.columns();
        QCOMPARE(columns.size(), 2);
        QVERIFY(!p.loadFile(dir.filePath("bad.jsonl")));
        QCOMPARE(p.columns(), columns);
        QCOMPARE(p.previewRows(), 10);
        QCOMPARE(QString::fromStdString(p.taskJson()["train"].get<std::string>()), QFileInfo(good).absoluteFilePath());

        auto refuses = [&](const QString& message) {
            QVERIFY(!p.validate());
            QCOMPARE(p.error(), message);
            QCOMPARE(status(p)->text(), message);
            const QString out = dir.filePath("refused");
            QVERIFY(p.writeTask(out).isEmpty());
            QVERIFY(!QFile::exists(out + "/task.json"));
            const int before = used.count();
            useButton(p)->click();
            QCOMPARE(used.count(), before);
        };
        p.setFields("text", "", "text");
        refuses(QStringLiteral("The text field and the label field are the same column"));
        p.setFields("text", "text", "label");
        refuses(QStringLiteral("The pair field and the text field are the same column"));
        p.setFields("text", "", "label");
        p.setName("   ");
        refuses(QStringLiteral("Give the task a name"));
        p.setName("sst");
        p.setTemplate("It was [MASK] .");
        refuses(QStringLiteral("The template needs {text}"));
        p.setTemplate("{text} It was [MASK] .");
        p.setLabelWord("pos", "  ");
        refuses(QStringLiteral("Label 'pos' has no word"));
        // A head needs no words.
        p.setLabelWords(false);
        QVERIFY(p.validate());
        p.setLabelWords(true);
        p.setLabelWord("pos", "pos");
        QVERIFY(p.validate());
        useButton(p)->click();
        QCOMPARE(used.count(), 1);

        // A label column with one value.
        writeText(dir.filePath("one.jsonl"), "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"x\"}\n");
        QVERIFY(p.loadFile(dir.filePath("one.jsonl")));
        refuses(QStringLiteral("The label column has fewer than two distinct values"));

        // A folder that cannot be made: an error, no path.
        QVERIFY(p.loadFile(good));
        writeText(dir.filePath("file"), "x");
        QVERIFY(p.writeTask(dir.filePath("file/sub")).isEmpty());
        QVERIFY(!p.error().isEmpty());
        QCOMPARE(status(p)->text(), p.error());
    }
};

DT_REGISTER_TEST(TestTaskPanel);
#include "test_task_panel.moc"
