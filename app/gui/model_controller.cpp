// ModelController: the Model and Method docks' logic (see model_controller.h).
#include "model_controller.h"

#include <QRegularExpression>

#include "budget_chart.h"
#include "method_panel.h"
#include "model_panel.h"
#include "module_tree_model.h"
#include "workbench.h"

#include "core/error.h"
#include "delta/budget.h"
#include "delta/delta_set.h"
#include "models/loader.h"
#include "models/quantize.h"
#include "train/defaults.h"
#include "tree/module_tree.h"
#include "tree/selection.h"

#include <nlohmann/json.hpp>

#include <QLocale>
#include <QTimer>

ModelController::ModelController(Workbench* session, ModelPanel* panel, MethodPanel* method, QObject* parent)
    : QObject(parent), m_session(session), m_panel(panel), m_method(method) {
    connect(m_method, &MethodPanel::specChanged, this, &ModelController::queueUpdate);
    connect(m_panel->model(), &ModuleTreeModel::checkedChanged, this, &ModelController::queueUpdate);
    connect(m_session, &Workbench::deltaNeeded, this, &ModelController::flush);
    connect(m_panel, &ModelPanel::quickSelectionRequested, this, [this](const QString& pattern) {
        if (pattern == QLatin1String("biases")) m_method->setMethod(QStringLiteral("bitfit"));
    });
    connect(m_method, &MethodPanel::combineRequested, this, [this] {
        updateBudget();
        if (m_formSpec.empty()) return;
        m_method->addToCombination(nlohmann::json::parse(m_formSpec));
        m_panel->model()->setCheckedPaths({});  // the next method's targets start from nothing
    });
    connect(m_method, &MethodPanel::specChanged, this, [this] {
        if (m_session->importedDelta().isEmpty()) return;
        m_session->log(tr("The method panel changed: training uses its delta again instead of %1").arg(m_session->importedDelta()));
        m_session->setImportedDelta(QString());
    });
}

bool ModelController::openModel(const QString& source) {
    try {
        dt::LoadedModel loaded = dt::load_model(source.toStdString());
        dt::ModuleTree tree = dt::ModuleTree::build(*loaded.model);
        const QString text = QString::fromStdString(tree.to_text());
        m_panel->model()->setTree(std::move(tree));
        m_session->setModel(loaded.model, source);
        updateBudget();
        m_session->log(tr("Opened %1 (%2)").arg(source, QString::fromStdString(loaded.report.weights_source)));
        if (!loaded.report.missing.empty())
            m_session->log(tr("%n parameter(s) not in the checkpoint were randomly initialised", nullptr,
                              static_cast<int>(loaded.report.missing.size())));
        if (!loaded.report.unexpected.empty())
            m_session->log(tr("%n checkpoint tensor(s) were not used", nullptr, static_cast<int>(loaded.report.unexpected.size())));
        m_session->showStatus(tr("Loaded %1").arg(source));
        Q_EMIT modelOpened(source, text);
        return true;
    } catch (const dt::Error& e) {
        m_session->fail(QString::fromStdString(e.what()));
    } catch (const std::exception& e) {
        m_session->fail(tr("Internal error: %1").arg(QString::fromUtf8(e.what())));
    }
    return false;
}

void ModelController::queueUpdate() {
    if (m_queued) return;  // coalesce bursts of tick changes into one update
    m_queued = true;
    QTimer::singleShot(0, this, &ModelController::flush);
}

void ModelController::flush() {
    if (!m_queued) return;  // already up to date
    m_queued = false;
    updateBudget();
}

void ModelController::updateBudget() {
    const auto model = m_session->model();
    if (!model) return;
    m_session->setDeltaSpec({}, m_budgetText);
    nlohmann::json spec = m_method->spec();
    const auto& tree = m_panel->model()->tree();
    QString targetsNote;
    if (m_method->usesTargets()) {
        const bool selective = spec["method"] == "selective";
        std::vector<std::string> ticked;
        for (const auto& p : m_panel->model()->checkedPaths()) {
            const int n = tree.find(p.toStdString());
            if (selective || (n > 0 && tree.nodes()[static_cast<std::size_t>(n)].is_linear())) ticked.push_back(p.toStdString());
        }
        if (!ticked.empty()) {
            spec["target_modules"] = ticked;
            const std::vector<std::string> targets = dt::target_modules_for(tree, ticked, !selective);
            m_targetModules = QString::fromStdString(nlohmann::json(targets).dump());
            targetsNote = targets != ticked ? m_targetModules : tr("%n explicit module path(s)", nullptr, static_cast<int>(ticked.size()));
            if (targets == ticked) {  // a layer-restricted selection reads as PEFT writes it
                const auto [names, layers] = dt::targets_and_layers_for(tree, ticked, !selective);
                if (!names.empty())
                    targetsNote = tr("%1, layers_to_transform %2")
                                      .arg(QString::fromStdString(nlohmann::json(names).dump()), QString::fromStdString(nlohmann::json(layers).dump()));
            }
        } else {
            targetsNote = tr("none ticked: the method's defaults");
            m_targetModules.clear();
        }
    } else if (!m_panel->model()->checkedPaths().isEmpty()) {
        // BitFit, prefix and prompt tuning choose their own places: say that the ticks are not used.
        targetsNote = tr("%1 does not use the ticks: it chooses its own places (its settings are in this panel)").arg(m_method->method());
    }
    m_panel->setTickNote(m_method->usesTargets() ? QString() : tr("not used by %1").arg(m_method->method()));
    m_formSpec = spec.dump();
    // Methods set aside in the panel's combination train together with the form's.
    // A targeted method with nothing ticked adds nothing to a combination (its default targets would
    // clash with the entry just set aside, e.g. LoRA twice on query and value).
    if (!m_method->combination().empty()) {
        nlohmann::json all = nlohmann::json::array();
        for (const auto& m : m_method->combination()) all.push_back(m);
        const bool idle = m_method->usesTargets() && !spec.contains("target_modules");
        if (!idle) all.push_back(spec);
        else targetsNote = tr("none ticked: the combination alone (tick modules to add %1)").arg(m_method->method());
        spec = {{"methods", all}};
    }
    try {
        const dt::Budget b = dt::budget(*model, tree, dt::DeltaSpec::from_json(spec, "method panel"));
        showTrainable(b);
        m_session->setMemoryEstimate(b.accounting.weight_bytes + b.accounting.gradient_bytes + b.accounting.adamw_bytes, b.activation_bytes,
                                     b.activation_batch, b.activation_tokens);
        m_session->setAllReduceBytes(b.accounting.trainable_params * static_cast<qint64>(sizeof(float)));
        m_budgetText = QStringLiteral("%1 trainable").arg(b.accounting.trainable_params);
        m_session->setDeltaSpec(spec.dump(), m_budgetText);
        // What the Training settings' "Frozen base" choice would make of the weights' memory.
        const dt::StorageBytes st = dt::base_storage_bytes(*model);
        auto fmt = [](std::int64_t v) { return QString::fromStdString(dt::format_bytes(v)); };
        const QString storage = tr("<br>Frozen base kept as bf16: weights %1 · int8: %2 · nf4: %3 (Training settings)")
                                    .arg(fmt(st.bf16), fmt(st.int8), fmt(st.nf4));
        m_method->setBudgetText(budgetHtml(b, targetsNote) + storage);
        m_targetsNote = targetsNote;
    } catch (const dt::Error& e) {
        m_panel->model()->setTrainable({});
        m_method->budgetChart()->setBudget({}, {}, {});
        m_budgetText = QString::fromStdString(e.what());
        m_session->setDeltaSpec({}, m_budgetText);
        m_method->setBudgetText(QStringLiteral("<span style='color:#c0392b'>%1</span>").arg(m_budgetText.toHtmlEscaped()));
    }
}

void ModelController::showRanks(const QVariantMap& pathToRank) {
    QMap<QString, int> ranks;
    std::map<int, std::map<QString, double>> perLayer;  // layer -> module kind -> kept rank
    QStringList kinds;
    static const QRegularExpression layer(QStringLiteral("\\.(\\d+)\\."));
    for (auto it = pathToRank.begin(); it != pathToRank.end(); ++it) {
        ranks.insert(it.key(), it.value().toInt());
        const auto m = layer.match(it.key());
        const int l = m.hasMatch() ? m.captured(1).toInt() : -1;
        const QString kind = it.key().section(QLatin1Char('.'), -1);
        if (!kinds.contains(kind)) kinds << kind;
        perLayer[l][kind] += it.value().toDouble();
    }
    m_panel->model()->setRanks(ranks);
    QStringList columns;
    QVector<QVector<double>> counts(kinds.size());
    for (const auto& [l, byKind] : perLayer) {
        columns << (l < 0 ? tr("other") : tr("L%1").arg(l));
        for (int k = 0; k < kinds.size(); ++k) counts[k] << (byKind.count(kinds[k]) ? byKind.at(kinds[k]) : 0.0);
    }
    QStringList rows;
    for (const auto& k : kinds) rows << tr("%1 rank").arg(k);
    m_method->budgetChart()->setValueLabel(tr("kept rank"));
    m_method->budgetChart()->setBudget(columns, rows, counts);
}

QString ModelController::budgetHtml(const dt::Budget& b, const QString& targetsNote) const {
    const dt::Accounting& acc = b.accounting;
    const QLocale loc;
    QString html = tr("<b>%1</b> trainable of %2 (%3%)<br>")
                       .arg(loc.toString(static_cast<qlonglong>(acc.trainable_params)), loc.toString(static_cast<qlonglong>(acc.total_params)))
                       .arg(acc.trainable_percent(), 0, 'f', 4);
    for (const auto& m : acc.per_method)
        html += tr("%1: %2 added, %3 unfrozen<br>")
                    .arg(QString::fromStdString(m.method), loc.toString(static_cast<qlonglong>(m.added)), loc.toString(static_cast<qlonglong>(m.unfrozen)));
    html += tr("Memory: weights %1, gradients %2, AdamW %3, activations about %4 (batch %6 × %7 tokens, fp32)<br>Delta file: about %5")
                .arg(QString::fromStdString(dt::format_bytes(acc.weight_bytes)), QString::fromStdString(dt::format_bytes(acc.gradient_bytes)),
                     QString::fromStdString(dt::format_bytes(acc.adamw_bytes)), QString::fromStdString(dt::format_bytes(b.activation_bytes)),
                     QString::fromStdString(dt::format_bytes(acc.gradient_bytes)))
                .arg(b.activation_batch)
                .arg(b.virtual_tokens > 0 ? tr("(%1 + %2 prompt)").arg(b.activation_tokens - b.virtual_tokens).arg(b.virtual_tokens)
                                          : QString::number(b.activation_tokens));
    if (!targetsNote.isEmpty()) html += tr("<br>target_modules: <tt>%1</tt>").arg(targetsNote.toHtmlEscaped());
    return html;
}

void ModelController::showTrainable(const dt::Budget& b) {
    m_panel->model()->setTrainable(b.per_node);
    m_panel->model()->setRanks({});
    m_method->budgetChart()->setValueLabel(tr("trainable"));
    QStringList columns, rows;
    for (const auto& c : b.columns) columns << (c == "other" ? tr("other") : QString::fromStdString(c));
    for (const auto& r : b.rows) rows << QString::fromStdString(r);
    QVector<QVector<double>> counts;
    for (const auto& row : b.counts) counts << QVector<double>(row.begin(), row.end());
    m_method->budgetChart()->setBudget(columns, rows, counts);
}
