// MethodPanel: pick a delta method from the engine's table and set its hyperparameters. The form is
// built from the engine's option declarations (kinds, ranges, PEFT's defaults, one-line tooltips). It produces the method's JSON spec; targets come from the module tree.
#pragma once

#include <QWidget>

#include <nlohmann/json.hpp>

#include <map>
#include <string>

class QComboBox;
class QFormLayout;
class QLabel;
class BudgetChart;
namespace dt {
struct OptionDecl;
}

class MethodPanel : public QWidget {
    Q_OBJECT
public:
    explicit MethodPanel(QWidget* parent = nullptr);
    QString method() const;
    void setMethod(const QString& name);
    // {"method": ..., hyperparameters...} without targets.
    nlohmann::json spec() const;
    // Whether the method takes target_modules (ticked modules are then its targets).
    bool usesTargets() const;
    // Shows the budget or an error under the form.
    void setBudgetText(const QString& html);
    // Combination: methods set aside (each a full method spec with its targets) that train together
    // with the one in the form, e.g. LoRA on attention + BitFit.
    void addToCombination(const nlohmann::json& methodSpec);
    void removeFromCombination(int i);
    const std::vector<nlohmann::json>& combination() const { return m_combination; }
    BudgetChart* budgetChart() const { return m_chart; }

Q_SIGNALS:
    void specChanged();
    // "Add to combination" was clicked: the window adds the form's method with its ticked targets.
    void combineRequested();

private:
    void rebuildForm();
    void addField(const dt::OptionDecl& o);

    QComboBox* m_method;
    QFormLayout* m_form;
    QWidget* m_formHost;
    QLabel* m_summary;
    QLabel* m_budget;
    BudgetChart* m_chart = nullptr;
    class QListWidget* m_stack = nullptr;
    class QPushButton* m_removeCombined = nullptr;
    std::vector<nlohmann::json> m_combination;
    std::vector<std::pair<std::string, QWidget*>> m_fields;
    // Each method keeps its own settings: the form's values when the user switched away from it.
    std::map<std::string, nlohmann::json> m_saved;
    std::string m_shown;  // the method the form shows
    void applyValues(const nlohmann::json& values);
};
