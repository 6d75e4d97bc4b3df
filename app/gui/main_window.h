// MainWindow: wires the docks and actions; no logic of its own (see DESIGN.md, "The window").
#pragma once

#include <QMainWindow>

#include <memory>

namespace dt {
class TransformerModel;
}
class ModelPanel;
class QPlainTextEdit;
class QLabel;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;
    // Loads a model folder or built-in name; on bad input shows the message and keeps the old model.
    bool openModel(const QString& source);
    ModelPanel* modelPanel() const { return m_panel; }
    QString lastError() const { return m_lastError; }

private:
    void chooseModelFolder();
    void log(const QString& line);

    ModelPanel* m_panel;
    QPlainTextEdit* m_log;
    QPlainTextEdit* m_inspect;
    std::shared_ptr<dt::TransformerModel> m_model;
    QString m_lastError;
};
