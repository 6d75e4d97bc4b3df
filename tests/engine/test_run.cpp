// The run builder, train_run(), the run folder and the training events: the spec a front end writes
// for a user's choices (the MaskedLM -> SequenceClassification rule), one training into a run folder
// whose files are named in one place, events that round-trip through JSON, and a trained run loaded
// back without reading its data.
#include "test_registry.h"

#include "core/error.h"
#include "delta/delta_set.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "train/events.h"
#include "train/run.h"
#include "train/run_folder.h"
#include "train/tensorboard.h"

#include "tfevents_reader.h"

#include <torch/torch.h>

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <fstream>

namespace {

const std::string kDemo = std::string(DT_SOURCE_DIR) + "/resources/demo";
const std::string kModel = kDemo + "/models/synth-bert-small";

// A copy of a demo task without its label words: a plain classification task (200 + 100 lines).
std::string classificationTask(const QTemporaryDir& dir) {
    nlohmann::json task = dt::json::load_file(kDemo + "/tasks/reviews/task.json");
    task.erase("label_words");
    task.erase("template");
    for (const char* part : {"train", "validation"}) {
        std::ifstream in(kDemo + "/tasks/reviews/" + part + ".jsonl");
        std::ofstream out(dir.filePath(QString::fromLatin1(part) + ".jsonl").toStdString());
        std::string line;
        for (int i = 0; i < (std::string(part) == "train" ? 200 : 100) && std::getline(in, line); ++i) out << line << "\n";
    }
    const std::string path = dir.filePath("task.json").toStdString();
    std::ofstream(path) << task.dump(2);
    return path;
}

std::vector<nlohmann::json> readEvents(const std::string& run) {
    std::vector<nlohmann::json> out;
    std::ifstream f(dt::run_folder::events_path(run));
    std::string line;
    while (std::getline(f, line)) out.push_back(nlohmann::json::parse(line));
    return out;
}

}  // namespace

class TestRun : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void builderOwnsTheHeadRule() {
        QTemporaryDir dir;
        dt::RunChoices c;
        c.model = kModel;
        c.task_file = classificationTask(dir);
        c.delta = {{"method", "lora"}, {"r", 4}};
        c.steps = 40;
        const nlohmann::json spec = dt::build_run_spec(c);
        QCOMPARE(spec["architecture"].get<std::string>(), std::string("BertForSequenceClassification"));
        QCOMPARE(spec["delta"]["methods"][0]["method"].get<std::string>(), std::string("lora"));
        QCOMPARE(spec["delta"]["modules_to_save"], nlohmann::json::array({"classifier"}));
        QCOMPARE(spec["training"]["lr"].get<double>(), dt::TrainingDefaults::lr);
        QCOMPARE(spec["training"]["batch_size"].get<std::int64_t>(), dt::TrainingDefaults::batch_size);
        QCOMPARE(spec["training"]["eval_every"].get<std::int64_t>(), dt::TrainingDefaults::eval_every(40));
        QVERIFY(!spec["training"].contains("device"));  // cpu and fp32 are the defaults, not written

        // Label words: the masked-LM model scores them itself, no head.
        c.task_file = kDemo + "/tasks/reviews/task.json";
        c.device = "cuda:0";
        const nlohmann::json words = dt::build_run_spec(c);
        QVERIFY(!words.contains("architecture"));
        QCOMPARE(words["delta"], c.delta);
        QCOMPARE(words["training"]["device"].get<std::string>(), std::string("cuda:0"));
        // The spec parses as a run spec.
        dt::RunSpec::from_json(spec, "built", ".");
    }

    void trainsIntoARunFolderAndLoadsWithoutData() {
        QTemporaryDir dir;
        dt::RunChoices c;
        c.model = kModel;
        c.task_file = classificationTask(dir);
        c.delta = {{"method", "lora"}, {"r", 4}};
        c.steps = 20;
        c.batch_size = 8;
        const std::string run = dir.filePath("run").toStdString();
        dt::PreparedRun p = dt::prepare_run(dt::RunSpec::from_json(dt::build_run_spec(c), "built", "."));
        QVERIFY(dt::validation_set(p) != nullptr);
        dt::create_run_folder(run, p.spec);
        const dt::TrainResult res = dt::train_run(p, run, nullptr, nullptr);
        QCOMPARE(res.status, std::string("finished"));
        const std::string final_ckpt = dt::run_folder::checkpoint_path(run, dt::run_folder::kFinal);
        QVERIFY(dt::run_folder::has_checkpoint(final_ckpt));
        QCOMPARE(dt::run_folder::latest_name(run), dt::run_folder::kFinal);
        // Periodic checkpoints every TrainingDefaults::checkpoint_every(20) = 2 steps, the oldest trimmed.
        QVERIFY(dt::run_folder::has_checkpoint(dt::run_folder::checkpoint_path(run, dt::run_folder::step_name(18))));
        QVERIFY(!QDir(QString::fromStdString(dt::run_folder::checkpoint_path(run, dt::run_folder::step_name(2)))).exists());
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::create_run_folder(run, p.spec));  // a run is there

        // events.jsonl: one step event per step, evaluations, then the status; each parses back.
        int steps = 0, evals = 0;
        std::string status;
        std::vector<double> losses;
        std::vector<std::pair<std::int64_t, double>> accuracies;
        for (const auto& j : readEvents(run)) {
            const std::string kind = dt::event_kind(j);
            QVERIFY(!kind.empty());
            if (kind == "step") {
                const dt::StepEvent e = dt::StepEvent::from_json(j);
                QCOMPARE(e.step, std::int64_t(++steps));
                QVERIFY(std::isfinite(e.loss) && e.lr > 0);
                QCOMPARE(e.to_json(), j);
                losses.push_back(e.loss);
            } else if (kind == "eval") {
                const dt::EvalEvent e = dt::EvalEvent::from_json(j);
                QVERIFY(e.metrics.count("accuracy"));
                accuracies.emplace_back(e.step, e.metrics.at("accuracy"));
                // The confusion matrix of the 100 validation examples, gold x predicted, with the
                // task's label names; its diagonal is the accuracy and its rows the supports.
                QCOMPARE(e.confusion.labels.size(), std::size_t(2));
                std::int64_t total = 0, diagonal = 0;
                for (std::size_t g = 0; g < 2; ++g)
                    for (std::size_t q = 0; q < 2; ++q) total += e.confusion.counts[g][q], diagonal += g == q ? e.confusion.counts[g][q] : 0;
                QCOMPARE(total, std::int64_t(100));
                QCOMPARE(static_cast<double>(diagonal) / 100.0, e.metrics.at("accuracy"));
                const auto classes = dt::per_class_metrics(e.confusion);
                QCOMPARE(classes[0].support + classes[1].support, std::int64_t(100));
                ++evals;
            } else {
                status = dt::StatusEvent::from_json(j).status;
            }
        }
        QCOMPARE(steps, 20);
        QCOMPARE(evals, 10);  // every TrainingDefaults::eval_every(20) = 2 steps
        QCOMPARE(status, std::string("finished"));

        // The run wrote its TensorBoard event file; an independent reader finds every scalar.
        const std::string tb = dt::tensorboard::event_file_path(run);
        QVERIFY(QFile::exists(QString::fromStdString(tb)));
        const tfevents::File tf = tfevents::read(tb);
        QVERIFY2(tf.error.empty(), tf.error.c_str());
        QCOMPARE(tf.file_version, std::string("brain.Event:2"));
        std::vector<double> tbLosses;
        std::vector<std::pair<std::int64_t, double>> tbAccuracies;
        for (const auto& s : tf.scalars) {
            if (s.tag == "train/loss") {
                QCOMPARE(s.step, std::int64_t(tbLosses.size() + 1));
                tbLosses.push_back(s.value);
            }
            if (s.tag == "eval/accuracy") tbAccuracies.emplace_back(s.step, s.value);
        }
        QCOMPARE(tbLosses.size(), losses.size());
        for (std::size_t i = 0; i < losses.size(); ++i) QCOMPARE(tbLosses[i], static_cast<double>(static_cast<float>(losses[i])));
        QCOMPARE(tbAccuracies.size(), accuracies.size());
        for (std::size_t i = 0; i < accuracies.size(); ++i) {
            QCOMPARE(tbAccuracies[i].first, accuracies[i].first);
            QCOMPARE(tbAccuracies[i].second, static_cast<double>(static_cast<float>(accuracies[i].second)));
        }
        QCOMPARE(tf.records, 1 + static_cast<int>(tf.scalars.size()));  // the version record, then one scalar each

        // The data is gone; the run still loads, with the checkpoint's values in every trained tensor.
        QVERIFY(QFile::remove(dir.filePath("train.jsonl")));
        QVERIFY(QFile::remove(dir.filePath("validation.jsonl")));
        dt::LoadedRun r = dt::load_run(run);
        QCOMPARE(r.checkpoint, final_ckpt);
        auto f = dt::st::File::open(dt::run_folder::trainable_path(final_ckpt));
        int compared = 0;
        for (const auto& [name, t] : dt::named_trainable_parameters(*r.model.model)) {
            QVERIFY(torch::equal(t, f->tensor(dt::run_folder::param_key(name))));
            ++compared;
        }
        QVERIFY(compared >= 8);  // the LoRA pairs and the classifier
        // A spec.json without the recorded label count needs the data, and says which file is missing.
        nlohmann::json spec = dt::json::load_file(dt::run_folder::spec_path(run));
        QCOMPARE(spec["num_labels"].get<int>(), 2);
        spec.erase("num_labels");
        std::ofstream(dt::run_folder::spec_path(run)) << spec.dump(2);
        try {
            dt::load_run(run);
            QFAIL("loaded a classification run without its label count or data");
        } catch (const dt::Error& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains(QLatin1String("train.jsonl")), e.what());
        }
    }

    void eventsRoundTrip() {
        dt::StepEvent s;
        s.step = 7;
        s.loss = std::nan("");
        s.skipped = true;
        s.lr = 1e-3;
        s.grad_norms = {{"x", 1.0}};
        const nlohmann::json j = s.to_json();
        QVERIFY(j["loss"].is_null());
        QVERIFY(!j.contains("grad_norms"));
        const dt::StepEvent back = dt::StepEvent::from_json(j);
        QVERIFY(back.skipped && std::isnan(back.loss));
        QCOMPARE(back.step, std::int64_t(7));
        QCOMPARE(back.lr, 1e-3);
        dt::EvalEvent e{40, {{"accuracy", 0.75}, {"loss", 0.5}}, {}};
        QCOMPARE(dt::EvalEvent::from_json(e.to_json()).metrics, e.metrics);
        // A confusion matrix round-trips; one whose rows do not match its labels is left out.
        e.confusion = dt::confusion_matrix({0, 1, 1, 2, -1}, {0, 1, 2, 2, 1}, 3);
        e.confusion.labels = {"a", "b", "c"};
        nlohmann::json cj = e.to_json();
        const dt::EvalEvent ce = dt::EvalEvent::from_json(cj);
        QCOMPARE(ce.metrics, e.metrics);
        QCOMPARE(ce.confusion.counts, e.confusion.counts);
        QCOMPARE(ce.confusion.unmatched, (std::vector<std::int64_t>{0, 1, 0}));
        QCOMPARE(ce.confusion.labels, e.confusion.labels);
        cj["confusion"]["counts"][1] = {1};
        QVERIFY(dt::EvalEvent::from_json(cj).confusion.empty());
        QCOMPARE(dt::EvalEvent::from_json(cj).metrics, e.metrics);
        // Per class: b was predicted twice (once right), c once of its two; b's unmatched answer
        // counts against its recall.
        const auto pc = dt::per_class_metrics(e.confusion);
        QCOMPARE(pc[1].precision, 0.5);
        QCOMPARE(pc[1].recall, 0.5);
        QCOMPARE(pc[1].support, std::int64_t(2));
        QCOMPARE(pc[2].precision, 1.0);
        QCOMPARE(pc[2].recall, 0.5);
        QCOMPARE(pc[2].f1, 2.0 / 3.0);
        QCOMPARE(pc[0].f1, 1.0);
        QCOMPARE(dt::event_kind(nlohmann::json::parse(R"({"event": "done"})")), std::string());
        QCOMPARE(dt::event_kind(nlohmann::json::parse("[1]")), std::string());
    }

    void tensorboardFileFromEvents() {
        // CRC-32C's check value (the CRC catalogue's "123456789"), in the writer and the test's reader.
        QCOMPARE(dt::tensorboard::crc32c("123456789", 9), 0xE3069283u);
        QCOMPARE(tfevents::crc32c_bitwise(reinterpret_cast<const unsigned char*>("123456789"), 9), 0xE3069283u);
        QTemporaryDir dir;
        const std::string run = dir.path().toStdString();
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::tensorboard::export_run(run));  // no events.jsonl
        std::ofstream(dt::run_folder::spec_path(run)) << "{}\n";
        {
            std::ofstream ev(dt::run_folder::events_path(run));
            dt::StepEvent s;
            s.step = 1, s.loss = 0.75, s.lr = 1e-3, s.grad_norm = 2, s.tokens_per_s = 900, s.elapsed_s = 1.5;
            ev << s.to_json().dump() << "\n";
            s.step = 2, s.skipped = true, s.loss = std::nan("");
            ev << s.to_json().dump() << "\n";  // skipped: no scalars
            ev << dt::EvalEvent{2, {{"accuracy", 0.625}}, {}}.to_json().dump() << "\n";
            ev << "{\"event\": \"step\", \"step\": 3, \"lo";  // torn by a kill
        }
        const std::string path = dt::tensorboard::export_run(run);
        QVERIFY(QString::fromStdString(path).contains(QLatin1String("/events.out.tfevents.")));
        tfevents::File f = tfevents::read(path);
        QVERIFY2(f.error.empty(), f.error.c_str());
        QCOMPARE(f.scalars.size(), std::size_t(5));
        QCOMPARE(f.scalars[0].tag, std::string("train/loss"));
        QCOMPARE(f.scalars[0].value, 0.75f);
        QCOMPARE(f.scalars[2].tag, std::string("train/grad_norm"));
        QCOMPARE(f.scalars[4].tag, std::string("eval/accuracy"));
        QCOMPARE(f.scalars[4].step, std::int64_t(2));
        QCOMPARE(f.scalars[4].value, 0.625f);
        QVERIFY(std::abs(f.scalars[1].wall_time - f.scalars[0].wall_time) < 1e-9);
        // A flipped byte is caught by the reader's CRC check (the framing is what TensorBoard verifies).
        std::string bytes;
        {
            std::ifstream in(path, std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(in), {});
        }
        bytes[bytes.size() / 2] ^= 0x20;
        std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
        QVERIFY(!tfevents::read(path).error.empty());
    }

    void runFolderRefusesPathsOutsideIt() {
        QTemporaryDir dir;
        const std::string run = dir.path().toStdString();
        QCOMPARE(dt::run_folder::latest_name(run), std::string());
        QVERIFY(QDir(dir.path()).mkpath("checkpoints"));
        std::ofstream(dt::run_folder::latest_path(run)) << "../../etc\n";
        QVERIFY_THROWS_EXCEPTION(dt::Error, dt::run_folder::latest_name(run));
        try {
            dt::run_folder::pick_checkpoint(run, "step-3");
            QFAIL("picked a checkpoint that does not exist");
        } catch (const dt::Error& e) {
            QVERIFY(QString::fromUtf8(e.what()).contains(QLatin1String("step-3")));
        }
    }
};

DT_REGISTER_TEST(TestRun);
#include "test_run.moc"
