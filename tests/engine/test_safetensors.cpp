// safetensors reader/writer: round trips for every dtype, byte-identical output to the reference
// writer, each validation rule with a crafted bad file, sharded folders, atomic writes.
#include "test_registry.h"
#include "test_util.h"

#include "core/error.h"
#include "core/torch_compat.h"
#include "io/atomic_file.h"
#include "io/weight_set.h"
#include "io/safetensors.h"

#include <torch/torch.h>

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

using namespace dttest;

namespace {

// Expects st::File::open(path) to throw a dt::Error whose text contains every needle.
void expectRejected(const QString& path, const QStringList& needles) {
    try {
        dt::st::File::open(path.toStdString());
        QFAIL(qPrintable("accepted a bad file: " + path));
    } catch (const dt::Error& e) {
        const QString msg = QString::fromStdString(e.what());
        QVERIFY2(msg.contains(path), qPrintable("message does not name the file: " + msg));
        for (const auto& n : needles) QVERIFY2(msg.contains(n, Qt::CaseInsensitive), qPrintable("'" + n + "' not in: " + msg));
    }
}

QByteArray zeros(int n) { return QByteArray(n, '\0'); }

}  // namespace

class TestSafetensors : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void roundTripEveryDtype() {
        QTemporaryDir dir;
        const auto path = dir.filePath("all.safetensors").toStdString();
        torch::manual_seed(1);
        dt::st::NamedTensors in = {
            {"f64", torch::randn({3, 5}, torch::kDouble)},
            {"f32", torch::randn({2, 3, 4})},
            {"f16", torch::randn({7}).to(torch::kHalf)},
            {"bf16", torch::randn({3, 3}).to(torch::kBFloat16)},
            {"i64", torch::randint(-1000000, 1000000, {4, 2}, torch::kLong)},
            {"i32", torch::randint(-100000, 100000, {5}, torch::kInt)},
            {"i16", torch::randint(-3000, 3000, {6}, torch::kShort)},
            {"i8", torch::randint(-128, 127, {9}, torch::kChar)},
            {"u8", torch::randint(0, 255, {3, 1}, torch::kByte)},
            {"bool", torch::randint(0, 2, {11}, torch::kLong).to(torch::kBool)},
            {"scalar", torch::tensor(3.5)},
            {"empty", torch::empty({0, 4})},
        };
        dt::st::save(path, in, {{"format", "pt"}, {"note", "round trip"}});
        auto f = dt::st::File::open(path);
        QCOMPARE(f->tensors().size(), in.size());
        QCOMPARE(f->metadata().at("note"), std::string("round trip"));
        for (const auto& [name, t] : in) {
            at::Tensor got = f->tensor(name);
            QCOMPARE(got.scalar_type(), t.scalar_type());
            QCOMPARE(got.sizes().vec(), t.sizes().vec());
            QVERIFY2(torch::equal(got, t), name.c_str());
            QVERIFY2(f->is_zero_copy(name), name.c_str());
        }
        QFile raw(QString::fromStdString(path));
        QVERIFY(raw.open(QIODevice::ReadOnly));
        const QByteArray head = raw.read(8);
        quint64 n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(head[i]);
        QCOMPARE(n % 8, 0ull);
    }

    void byteIdenticalToReferenceWriter() {
        // The fixture was written by the Rust safetensors writer; re-saving its tensors and metadata
        // must give the same bytes (same order, compact JSON, space padding).
        const QString src = dataDir() + "/hf/bert-mlm/model.safetensors";
        auto f = dt::st::File::open(src.toStdString());
        dt::st::NamedTensors ts;
        for (const auto& info : f->tensors()) ts.emplace_back(info.name, f->tensor(info.name));
        QTemporaryDir dir;
        const QString out = dir.filePath("copy.safetensors");
        dt::st::save(out.toStdString(), ts, f->metadata());
        QFile a(src), b(out);
        QVERIFY(a.open(QIODevice::ReadOnly) && b.open(QIODevice::ReadOnly));
        QCOMPARE(b.readAll(), a.readAll());
    }

    void zeroCopyIsCopyOnWrite() {
        QTemporaryDir dir;
        const QString path = dir.filePath("w.safetensors");
        dt::st::save(path.toStdString(), {{"w", torch::ones({4, 4})}});
        QFile before(path);
        QVERIFY(before.open(QIODevice::ReadOnly));
        const QByteArray bytes = before.readAll();
        auto f = dt::st::File::open(path.toStdString());
        at::Tensor t = f->tensor("w");
        QVERIFY(f->is_zero_copy("w"));
        t.mul_(3);  // must not reach the file
        QCOMPARE(t.sum().item<float>(), 48.0f);
        QFile after(path);
        QVERIFY(after.open(QIODevice::ReadOnly));
        QCOMPARE(after.readAll(), bytes);
    }

    void unalignedDataIsCopied() {
        QTemporaryDir dir;
        const QString path = dir.filePath("u.safetensors");
        // header padded so data starts at a multiple of 8; u8 of 1 byte puts the f32 at offset 1.
        std::string h = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
        h.append((8 - h.size() % 8) % 8, ' ');
        QByteArray data;
        data.append('\x07');
        float vals[2] = {1.5f, -2.25f};
        data.append(reinterpret_cast<const char*>(vals), 8);
        writeBytes(path, rawSafetensors(h, data));
        auto f = dt::st::File::open(path.toStdString());
        QVERIFY(!f->is_zero_copy("b"));
        QVERIFY(f->is_zero_copy("a"));
        at::Tensor b = f->tensor("b");
        QCOMPARE(b[0].item<float>(), 1.5f);
        QCOMPARE(b[1].item<float>(), -2.25f);
        QCOMPARE(f->tensor("a")[0].item<int>(), 7);
    }

    void rejectsBadFiles_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QStringList>("needles");
        const std::string ok = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
        QTest::newRow("too short") << QByteArray("abc") << QStringList{"too short"};
        QTest::newRow("header too large") << rawSafetensors("{}", {}, 100000001) << QStringList{"exceeds the limit"};
        QTest::newRow("header past end") << rawSafetensors(ok, zeros(8), 500) << QStringList{"past the end"};
        QTest::newRow("not an object") << rawSafetensors(R"(["t"])", {}) << QStringList{"start with '{'"};
        QTest::newRow("invalid json") << rawSafetensors(R"({"t":{"dtype":"F32",)", {}) << QStringList{"invalid JSON"};
        QTest::newRow("invalid utf8") << rawSafetensors("{\"t\xff\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", zeros(4))
                                      << QStringList{"invalid JSON"};
        QTest::newRow("duplicate key")
            << rawSafetensors(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", zeros(8))
            << QStringList{"duplicate key 't'"};
        QTest::newRow("unknown dtype") << rawSafetensors(R"({"t":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", zeros(8))
                                       << QStringList{"tensor 't'", "unknown dtype 'F33'"};
        QTest::newRow("negative dim") << rawSafetensors(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", zeros(8))
                                      << QStringList{"tensor 't'", "non-negative"};
        QTest::newRow("missing offsets") << rawSafetensors(R"({"t":{"dtype":"F32","shape":[2]}})", zeros(8))
                                         << QStringList{"tensor 't'", "data_offsets"};
        QTest::newRow("span mismatch") << rawSafetensors(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", zeros(8))
                                       << QStringList{"tensor 't'", "needs 12"};
        QTest::newRow("overflow")
            << rawSafetensors(R"({"t":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", zeros(8))
            << QStringList{"tensor 't'", "overflow"};
        QTest::newRow("not from zero") << rawSafetensors(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", zeros(8))
                                       << QStringList{"tensor 't'", "gap"};
        QTest::newRow("gap")
            << rawSafetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", zeros(12))
            << QStringList{"tensor 'b'", "gap"};
        QTest::newRow("overlap")
            << rawSafetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", zeros(8))
            << QStringList{"overlaps"};
        QTest::newRow("end before begin") << rawSafetensors(R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", zeros(8))
                                          << QStringList{"tensor 't'", "end before"};
        QTest::newRow("truncated data") << rawSafetensors(ok, zeros(5)) << QStringList{"truncated"};
        QTest::newRow("trailing bytes") << rawSafetensors(ok, zeros(12)) << QStringList{"trailing bytes"};
        QTest::newRow("metadata not string")
            << rawSafetensors(R"({"__metadata__":{"format":1},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", zeros(8))
            << QStringList{"__metadata__", "format", "must be a string"};
        QTest::newRow("entry not object") << rawSafetensors(R"({"t":5})", {}) << QStringList{"tensor 't'", "must be an object"};
    }
    void rejectsBadFiles() {
        QFETCH(QByteArray, bytes);
        QFETCH(QStringList, needles);
        QTemporaryDir dir;
        const QString path = dir.filePath("bad.safetensors");
        writeBytes(path, bytes);
        expectRejected(path, needles);
    }

    void float8IsHandled() {
        QTemporaryDir dir;
        const QString path = dir.filePath("f8.safetensors");
        writeBytes(path, rawSafetensors(R"({"t":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", zeros(4)));
        auto f = dt::st::File::open(path.toStdString());  // the header is valid
#if DT_HAS_FLOAT8
        QCOMPARE(f->tensor("t").numel(), 4);
#else
        try {
            f->tensor("t");
            QFAIL("F8 accepted by a LibTorch without float8");
        } catch (const dt::Error& e) {
            const QString msg = QString::fromStdString(e.what());
            QVERIFY(msg.contains("F8_E4M3") && msg.contains("not supported") && msg.contains("tensor 't'"));
        }
#endif
    }

    void shardedFolder() {
        QTemporaryDir dir;
        dt::st::save(dir.filePath("model-00001-of-00002.safetensors").toStdString(), {{"a", torch::ones({2})}});
        dt::st::save(dir.filePath("model-00002-of-00002.safetensors").toStdString(), {{"b", torch::full({3}, 2.0)}});
        writeBytes(dir.filePath("model.safetensors.index.json"),
                   R"({"metadata":{"total_size":20},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})");
        auto w = dt::WeightSet::open_folder(dir.path().toStdString());
        QCOMPARE(w.names(), (std::vector<std::string>{"a", "b"}));
        QCOMPARE(w.tensor("b").sum().item<float>(), 6.0f);
        QCOMPARE(w.files().size(), std::size_t(2));
    }

    void shardNamesStayInFolder_data() {
        QTest::addColumn<QString>("shard");
        QTest::newRow("parent") << "../outside.safetensors";
        QTest::newRow("absolute") << "/etc/passwd";
        QTest::newRow("subdir") << "sub/model.safetensors";
        QTest::newRow("dotdot") << "..";
    }
    void shardNamesStayInFolder() {
        QFETCH(QString, shard);
        QTemporaryDir dir;
        writeBytes(dir.filePath("model.safetensors.index.json"),
                   QStringLiteral(R"({"weight_map":{"a":"%1"}})").arg(shard).toUtf8());
        try {
            dt::WeightSet::open_folder(dir.path().toStdString());
            QFAIL("accepted a shard outside the folder");
        } catch (const dt::Error& e) {
            const QString msg = QString::fromStdString(e.what());
            QVERIFY2(msg.contains("model.safetensors.index.json") && msg.contains("'a'"), qPrintable(msg));
        }
    }

    void indexNamesMissingTensor() {
        QTemporaryDir dir;
        dt::st::save(dir.filePath("s1.safetensors").toStdString(), {{"a", torch::ones({2})}});
        writeBytes(dir.filePath("model.safetensors.index.json"), R"({"weight_map":{"a":"s1.safetensors","zz":"s1.safetensors"}})");
        try {
            dt::WeightSet::open_folder(dir.path().toStdString());
            QFAIL("accepted an index naming a missing tensor");
        } catch (const dt::Error& e) {
            QVERIFY(QString::fromStdString(e.what()).contains("'zz'"));
        }
    }

    void atomicSaveKeepsOldFileOnFailure() {
        QTemporaryDir dir;
        const QString path = dir.filePath("keep.safetensors");
        dt::st::save(path.toStdString(), {{"x", torch::ones({3})}});
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray before = f.readAll();
        f.close();
        // Duplicate names are refused before anything is written.
        QVERIFY_THROWS_EXCEPTION(dt::Error,
                                 dt::st::save(path.toStdString(), {{"x", torch::zeros({3})}, {"x", torch::zeros({1})}}));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), before);
        QCOMPARE(QDir(dir.path()).entryList(QDir::Files), QStringList{"keep.safetensors"});  // no temporaries left
        // A folder that does not exist: clear error, nothing created.
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::st::save(dir.filePath("nope/x.safetensors").toStdString(), {{"x", torch::ones({1})}}));
    }

    void appendedLinesSurviveATornLastLine() {
        // A log whose writer was killed mid-line: the next line starts on a line of its own, so only
        // the torn line is lost, not the one appended after it.
        QTemporaryDir dir;
        const std::string path = dir.filePath("cells.jsonl").toStdString();
        dt::append_line(path, R"({"a":1})");  // created
        writeBytes(dir.filePath("cells.jsonl"), "{\"a\":1}\n{\"b\":");
        dt::append_line(path, R"({"c":3})");
        dt::end_torn_line(path);  // nothing torn now: unchanged
        dt::append_line(path, R"({"d":4})");
        QFile f(QString::fromStdString(path));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), QByteArray("{\"a\":1}\n{\"b\":\n{\"c\":3}\n{\"d\":4}\n"));
        writeBytes(dir.filePath("events.jsonl"), "{\"step\":1");
        dt::end_torn_line(dir.filePath("events.jsonl").toStdString());
        QFile e(dir.filePath("events.jsonl"));
        QVERIFY(e.open(QIODevice::ReadOnly));
        QCOMPARE(e.readAll(), QByteArray("{\"step\":1\n"));
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::append_line(dir.filePath("nope/x.jsonl").toStdString(), "{}"));
    }
};

DT_REGISTER_TEST(TestSafetensors);
#include "test_safetensors.moc"
