// MethodPanel: pick a delta method from the engine's table and set its hyperparameters (PEFT's
// defaults, one-line tooltips). It produces the method's JSON spec; targets come from the module tree.
#pragma once

#include <QWidget>

#include <nlohmann/json.hpp>

class QComboBox;
class QFormLayout;
class QLabel;
class BudgetChart;

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
    BudgetChart* budgetChart() const { return m_chart; }

Q_SIGNALS:
    void specChanged();

private:
    void rebuildForm();

    QComboBox* m_method;
    QFormLayout* m_form;
    QWidget* m_formHost;
    QLabel* m_summary;
    QLabel* m_budget;
    BudgetChart* m_chart = nullptr;
    std::vector<std::pair<std::string, QWidget*>> m_fields;
};
