#include "playground_tab.h"

#include "worker_thread.h"
#include "workbench.h"

#include "core/error.h"
#include "io/json_util.h"
#include "generate/playground.h"
#include "models/loader.h"
#include "tokenizers/tokenizer.h"
#include "train/run.h"
#include "train/run_folder.h"
#include "train/run_spec.h"

#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QThread>
#include <QVBoxLayout>

#include <QFontDatabase>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace {

std::string tokenizer_for(const dt::RunSpec* spec, const std::string& model) {
    if (spec && !spec->tokenizer_file.empty()) return spec->tokenizer_file;
    if (std::filesystem::exists(model + "/tokenizer.json")) return model + "/tokenizer.json";
    throw dt::Error("no tokenizer.json beside the model", model, "open a model folder that has one, or a run whose task names one");
}

// One line per entry: the word or label, its probability and a bar (outputs use a fixed-width font).
QString scoreLines(const dt::PlaygroundAnswer& a) {
    QString s;
    for (const auto& [w, p] : a.scores)
        s += QStringLiteral("%1 %2  %3\n")
                 .arg(QString::fromStdString(w).left(16), -16)
                 .arg(p, 5, 'f', 3)
                 .arg(QString(static_cast<int>(std::lround(std::clamp(p, 0.0, 1.0) * 20)), QChar(0x2588)));
    return s;
}

}  // namespace

void PlaygroundWorker::run() {
    QString error;
    try {
        dt::PlaygroundRequest rq;
        rq.input = m_job.input;
        rq.generation = m_job.generation;
        std::unique_ptr<dt::LoadedRun> tuned;
        std::string model = m_job.model;
        if (!m_job.run_dir.empty()) {
            tuned = std::make_unique<dt::LoadedRun>(dt::load_run(m_job.run_dir, m_job.checkpoint));
            model = tuned->spec.model;
            rq.labels = tuned->spec.labels;
            rq.label_words = tuned->spec.text.label_words;
            rq.mask_token = tuned->spec.text.mask_token;
            if (rq.labels.empty())
                for (const auto& [l, w] : rq.label_words) rq.labels.push_back(l);
        }
        if (model.empty()) throw dt::Error("no model is open", "Playground", "open a model or pick a run");
        const auto tk = dt::tok::Tokenizer::from_file(tokenizer_for(tuned ? &tuned->spec : nullptr, model));
        dt::LoadOptions lo;
        if (tuned) lo = tuned->spec.load_options;
        if (tuned && lo.num_labels <= 0) lo.num_labels = tuned->model.model->config().get_int_or("num_labels", 0);
        auto base = dt::load_model(model, lo);
        for (int side = 0; side < (tuned ? 2 : 1); ++side) {
            if (m_cancel->load()) break;
            auto& m = side == 0 ? *base.model : *tuned->model.model;
            rq.generation.max_new_tokens = m_job.generation.max_new_tokens;
            const dt::PlaygroundAnswer a = dt::playground_answer(m, tk, rq, [&](const std::string& text) {
                Q_EMIT partial(side, QString::fromStdString(text));
                return !m_cancel->load();
            });
            Q_EMIT answered(side, QString::fromStdString(a.text), scoreLines(a));
        }
    } catch (const std::exception& e) {
        error = QString::fromUtf8(e.what());
    }
    Q_EMIT finished(error);
}

PlaygroundTab::PlaygroundTab(Workbench* session, std::function<QStringList()> runs, QWidget* parent)
    : QWidget(parent), m_session(session), m_runs(std::move(runs)) {
    auto* top = new QHBoxLayout;
    m_run = new QComboBox(this);
    m_run->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_run->setMinimumContentsLength(16);
    m_run->setToolTip(tr("The delta shown beside the base model: a run of the history and its checkpoint"));
    m_checkpoint = new QComboBox(this);
    m_checkpoint->addItems({QStringLiteral("best"), QStringLiteral("final"), QStringLiteral("latest")});
    m_checkpoint->setToolTip(tr("best: the best evaluation; final: the end of training; latest: the newest periodic checkpoint"));
    auto* refresh = new QPushButton(tr("Refresh"), this);
    top->addWidget(new QLabel(tr("Delta:"), this));
    top->addWidget(m_run, 1);
    top->addWidget(new QLabel(tr("Checkpoint:"), this));
    top->addWidget(m_checkpoint);
    top->addWidget(refresh);

    m_example = new QComboBox(this);
    m_example->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_example->setMinimumContentsLength(16);
    m_example->setToolTip(tr("A validation example of the run's task, as the model sees it"));
    m_input = new QPlainTextEdit(this);
    m_input->setPlaceholderText(tr("Type an input, or pick an example above. Masked LMs need the mask token ([MASK]) where the word goes."));
    m_input->setMaximumHeight(90);

    auto* settings = new QHBoxLayout;
    m_maxNew = new QSpinBox(this);
    m_maxNew->setRange(1, 512);
    m_maxNew->setValue(20);
    m_maxNew->setToolTip(tr("The most tokens to generate"));
    m_beams = new QSpinBox(this);
    m_beams->setRange(1, 16);
    m_beams->setToolTip(tr("Beam search with this many beams (1: greedy or sampling)"));
    m_temperature = new QDoubleSpinBox(this);
    m_temperature->setRange(0.0, 5.0);
    m_temperature->setSingleStep(0.1);
    m_temperature->setValue(0.0);
    m_temperature->setToolTip(tr("0: greedy; above 0: sampling at this temperature"));
    m_topP = new QDoubleSpinBox(this);
    m_topP->setRange(0.05, 1.0);
    m_topP->setSingleStep(0.05);
    m_topP->setValue(1.0);
    m_topP->setToolTip(tr("Sampling: keep the smallest set of tokens whose probability reaches this"));
    m_seed = new QSpinBox(this);
    m_seed->setRange(0, 999999);
    m_seed->setToolTip(tr("Sampling seed: the same seed gives the same text"));
    for (auto [label, w] : {std::pair<QString, QWidget*>{tr("New tokens"), m_maxNew}, {tr("Beams"), m_beams},
                            {tr("Temp."), m_temperature}, {tr("Top-p"), m_topP}, {tr("Seed"), m_seed}}) {
        settings->addWidget(new QLabel(label, this));
        settings->addWidget(w);
    }
    settings->addStretch(1);
    auto* actions = new QHBoxLayout;
    m_go = new QPushButton(tr("Generate"), this);
    m_go->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Return));
    m_go->setToolTip(tr("Answer with the base model and with the delta (Ctrl+Enter)"));
    m_stop = new QPushButton(tr("Stop"), this);
    m_stop->setEnabled(false);
    actions->addWidget(m_go);
    actions->addWidget(m_stop);

    auto* outs = new QHBoxLayout;
    for (int side = 0; side < 2; ++side) {
        auto* box = new QVBoxLayout;
        m_title[side] = new QLabel(this);
        m_title[side]->setTextFormat(Qt::PlainText);
        m_title[side]->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
        m_out[side] = new QPlainTextEdit(this);
        m_out[side]->setReadOnly(true);
        m_out[side]->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
        box->addWidget(m_title[side]);
        box->addWidget(m_out[side], 1);
        outs->addLayout(box, 1);
    }
    m_status = new QLabel(tr("Pick a run (or none), type or pick an input, then Generate."), this);
    m_status->setWordWrap(true);
    m_status->setTextFormat(Qt::PlainText);
    m_status->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    actions->addWidget(m_status, 1);

    auto* v = new QVBoxLayout(this);
    v->addLayout(top);
    auto* ex = new QHBoxLayout;
    ex->addWidget(new QLabel(tr("Example:"), this));
    ex->addWidget(m_example, 1);
    v->addLayout(ex);
    v->addWidget(m_input);
    v->addLayout(settings);
    v->addLayout(actions);
    v->addLayout(outs, 1);

    connect(refresh, &QPushButton::clicked, this, &PlaygroundTab::refreshRuns);
    connect(m_run, &QComboBox::currentIndexChanged, this, [this] { loadExamples(); });
    connect(m_run, &QComboBox::activated, this, [this] {
        m_chosen = m_run->currentData().toString();
        m_chosenSet = true;
    });
    connect(m_example, &QComboBox::activated, this, [this](int i) {
        if (i > 0) m_input->setPlainText(m_example->itemText(i));
    });
    connect(m_go, &QPushButton::clicked, this, [this] { generate(); });
    connect(m_stop, &QPushButton::clicked, this, &PlaygroundTab::stop);
    refreshRuns();
}

PlaygroundTab::~PlaygroundTab() {
    if (m_cancel) m_cancel->store(true);
    gui::endWorker(m_thread);
}

void PlaygroundTab::showEvent(QShowEvent* e) {
    QWidget::showEvent(e);
    if (!isRunning()) refreshRuns();
}

void PlaygroundTab::refreshRuns() {
    const QString keep = m_chosen;
    const QSignalBlocker block(m_run);
    m_run->clear();
    m_run->addItem(tr("(none: the open model alone)"), QString());
    for (const QString& r : m_runs ? m_runs() : QStringList()) {
        QString label = QFileInfo(r).fileName();
        if (!dt::run_folder::has_checkpoint(dt::run_folder::checkpoint_path(r.toStdString(), dt::run_folder::kFinal))) label += tr(" (unfinished)");
        m_run->addItem(label, r);
        m_run->setItemData(m_run->count() - 1, r, Qt::ToolTipRole);
    }
    int at = m_chosenSet ? m_run->findData(keep) : -1;
    if (!m_chosenSet) {  // until the user picks one: the newest run on the open model (else the newest run)
        const std::string open = m_session ? m_session->modelForSpec() : std::string();
        for (int i = 1; i < m_run->count() && at < 0; ++i) {
            try {
                const auto spec = dt::json::load_file(dt::run_folder::spec_path(m_run->itemData(i).toString().toStdString()));
                if (!open.empty() && spec.value("model", std::string()) == open) at = i;
            } catch (const std::exception&) {
            }
        }
        if (at < 0 && open.empty() && m_run->count() > 1) at = 1;
    }
    m_run->setCurrentIndex(std::max(at, 0));
    loadExamples();
}

void PlaygroundTab::setRun(const QString& runDir) {
    if (!runDir.isEmpty() && m_run->findData(runDir) < 0) m_run->addItem(QFileInfo(runDir).fileName(), runDir);
    m_chosen = runDir;
    m_chosenSet = true;
    {
        const QSignalBlocker block(m_run);
        m_run->setCurrentIndex(std::max(0, m_run->findData(runDir)));
    }
    loadExamples();
}

void PlaygroundTab::setInput(const QString& text) { m_input->setPlainText(text); }

QStringList PlaygroundTab::examples() const {
    QStringList out;
    for (int i = 1; i < m_example->count(); ++i) out << m_example->itemText(i);
    return out;
}

QString PlaygroundTab::statusText() const { return m_status->text(); }
QString PlaygroundTab::currentRun() const { return m_run->currentData().toString(); }

QString PlaygroundTab::output(int side) const { return m_out[side]->toPlainText(); }

void PlaygroundTab::loadExamples() {
    m_example->clear();
    m_example->addItem(tr("(pick a validation example)"));
    const QString run = m_run->currentData().toString();
    m_title[0]->setText(tr("Base model"));
    m_title[1]->setText(run.isEmpty() ? tr("Base + delta: pick a run above") : tr("Base + delta of %1").arg(QFileInfo(run).fileName()));
    if (run.isEmpty()) return;
    try {
        const auto spec = dt::RunSpec::load(dt::run_folder::spec_path(run.toStdString()));
        for (const auto& e : dt::task_examples(spec, 50)) m_example->addItem(QString::fromStdString(e));
        m_title[0]->setText(tr("Base model (%1)").arg(QFileInfo(QString::fromStdString(spec.model)).fileName()));
    } catch (const std::exception& e) {
        m_status->setText(QString::fromUtf8(e.what()));
    }
}

dt::GenerationOptions PlaygroundTab::settings() const {
    dt::GenerationOptions g;
    g.max_new_tokens = m_maxNew->value();
    g.num_beams = m_beams->value();
    g.do_sample = m_temperature->value() > 0 && g.num_beams == 1;
    g.temperature = m_temperature->value() > 0 ? m_temperature->value() : 1.0;
    g.top_p = m_topP->value();
    g.seed = static_cast<std::uint64_t>(m_seed->value());
    return g;
}

bool PlaygroundTab::generate() {
    if (isRunning()) return false;
    m_lastError.clear();
    PlaygroundWorker::Job job;
    job.input = m_input->toPlainText().toStdString();
    job.run_dir = m_run->currentData().toString().toStdString();
    job.checkpoint = m_checkpoint->currentText().toStdString();
    job.model = m_session ? m_session->modelForSpec() : std::string();
    if (job.checkpoint == "latest" && !job.run_dir.empty()) job.checkpoint = dt::run_folder::latest_name(job.run_dir);
    QString note;
    if (job.checkpoint == dt::run_folder::kBest && !job.run_dir.empty() &&
        !dt::run_folder::has_checkpoint(dt::run_folder::checkpoint_path(job.run_dir, job.checkpoint)) &&
        dt::run_folder::has_checkpoint(dt::run_folder::checkpoint_path(job.run_dir, dt::run_folder::kFinal))) {
        job.checkpoint = dt::run_folder::kFinal;  // runs without evaluation keep no best checkpoint
        note = tr(" (the run kept no best checkpoint: its final one is used)");
    }
    if (!job.run_dir.empty() && !dt::run_folder::has_checkpoint(dt::run_folder::checkpoint_path(job.run_dir, job.checkpoint))) {
        m_lastError = tr("The run has no '%1' checkpoint: pick another checkpoint (final or latest) or a finished run.")
                          .arg(m_checkpoint->currentText());
        m_status->setText(m_lastError);
        return false;
    }
    // Base models may be built-ins, which the worker cannot take tokenizers from: say so up front.
    const dt::GenerationOptions g = settings();
    job.generation = g;
    if (job.run_dir.empty() && job.model.empty()) {
        m_lastError = tr("Open a model or pick a run first.");
        m_status->setText(m_lastError);
        return false;
    }
    if (!job.model.empty() && !job.run_dir.empty()) job.model.clear();  // the run names its own model
    // The model's own EOS and pad.
    try {
        const std::string folder = job.run_dir.empty() ? job.model : dt::RunSpec::load(dt::run_folder::spec_path(job.run_dir)).model;
        if (!dt::is_builtin_model(folder)) {
            const auto cfg = dt::ModelConfig::load(folder + "/config.json");
            const auto defaults = dt::GenerationOptions::for_model(cfg, folder);
            job.generation.eos_token_ids = defaults.eos_token_ids;
            job.generation.pad_token_id = defaults.pad_token_id;
            job.generation.decoder_start_token_id = defaults.decoder_start_token_id;
        }
    } catch (const std::exception& e) {
        m_lastError = QString::fromUtf8(e.what());
        m_status->setText(m_lastError);
        return false;
    }
    for (auto* o : m_out) o->clear();
    m_cancel = std::make_shared<std::atomic<bool>>(false);
    auto* worker = new PlaygroundWorker(job, m_cancel);
    connect(worker, &PlaygroundWorker::partial, this, [this](int side, const QString& text) { m_out[side]->setPlainText(text); });
    connect(worker, &PlaygroundWorker::answered, this, [this](int side, const QString& text, const QString& scores) {
        m_out[side]->setPlainText(scores.isEmpty() ? text : scores);
    });
    connect(worker, &PlaygroundWorker::finished, this, [this](const QString& error) {
        gui::endWorker(m_thread);
        m_go->setEnabled(true);
        m_stop->setEnabled(false);
        m_lastError = error;
        if (!error.isEmpty()) m_status->setText(error);
        else m_status->setText(m_status->text().replace(tr("Generating..."), m_cancel && m_cancel->load() ? tr("Stopped.") : tr("Done.")));
        if (!error.isEmpty() && m_session) m_session->fail(tr("Playground: %1").arg(error));
        Q_EMIT finished();
    });
    m_go->setEnabled(false);
    m_stop->setEnabled(true);
    m_status->setText(tr("Generating...") + note);
    m_thread = gui::startWorker(this, worker, [worker] { worker->run(); });
    return true;
}

void PlaygroundTab::stop() {
    if (m_cancel) m_cancel->store(true);
}
