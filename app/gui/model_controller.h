// ModelController: the logic behind the Model and Method docks. Opens a model into the module tree,
// and turns the ticked modules plus the method panel's form into the session's delta spec, its
// parameter budget (engine/delta/budget) and PEFT's target_modules (engine/tree/selection). Bursts
// of tick changes are coalesced into one update.
#pragma once

#include <QObject>
#include <QString>

#include <string>

namespace dt {
struct Budget;
}
class MethodPanel;
class ModelPanel;
class Workbench;

class ModelController : public QObject {
    Q_OBJECT
public:
    ModelController(Workbench* session, ModelPanel* panel, MethodPanel* method, QObject* parent = nullptr);
    // Loads a model folder or built-in name; on bad input the message reaches the session and the
    // old model stays.
    bool openModel(const QString& source);
    // Recomputes the delta spec and its budget (also runs, coalesced, on every change).
    void updateBudget();
    QString budgetText() const { return m_budgetText; }
    // The ticked modules as PEFT's target_modules JSON (Edit > Copy target_modules); empty: none ticked.
    QString targetModules() const { return m_targetModules; }
    // How the budget text names the ticked targets (PEFT's target_modules, with layers_to_transform
    // for a layer-restricted selection).
    QString targetsNote() const { return m_targetsNote; }
    // AdaLoRA's live allocation while a run trains: the module tree shows each module's rank and the
    // budget chart the kept ranks per layer.
    void showRanks(const QVariantMap& pathToRank);

Q_SIGNALS:
    // A model was opened: its source and the module tree as text (the Inspect tab).
    void modelOpened(QString source, QString treeText);

private:
    void queueUpdate();
    void flush();  // applies a queued update now
    void showTrainable(const dt::Budget& b);
    QString budgetHtml(const dt::Budget& b, const QString& targetsNote) const;

    Workbench* m_session;
    ModelPanel* m_panel;
    MethodPanel* m_method;
    QString m_budgetText, m_targetModules, m_targetsNote;
    std::string m_formSpec;  // the method panel's form alone, with its ticked targets
    bool m_queued = false;
};
