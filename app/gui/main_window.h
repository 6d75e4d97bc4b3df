// MainWindow: wires the docks, tabs, menus and actions; no logic of its own (see DESIGN.md, "The
// window"). The session facts live in Workbench, the docks' logic in ModelController, each tab in
// its own class, delta export and import in DeltaFiles.
#pragma once

#include <QMainWindow>

class CompareTab;
class PlaygroundTab;
class ScaleTab;
class DeltaFiles;
class DeltaTab;
class MethodPanel;
class ModelController;
class ModelPanel;
class QMenu;
class QMimeData;
class QPlainTextEdit;
class QTabWidget;
class TaskPanel;
class DataInspector;
class QDialog;
class TrainingTab;
class TransferTab;
class Workbench;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    // Loads a model folder or built-in name; on bad input shows the message and keeps the old model.
    bool openModel(const QString& source);
    // A folder dropped on the window: an exported delta is imported, anything else opened as a model.
    bool openDropped(const QMimeData* mime);
    QStringList recentModels() const;
    QString lastError() const;

    Workbench* workbench() const { return m_session; }
    ModelController* models() const { return m_models; }
    ModelPanel* modelPanel() const { return m_panel; }
    MethodPanel* methodPanel() const { return m_method; }
    TrainingTab* trainingTab() const { return m_training; }
    TransferTab* transferTab() const { return m_transfer; }
    CompareTab* compareTab() const { return m_compare; }
    PlaygroundTab* playgroundTab() const { return m_playground; }
    void clampToScreen();  // the window inside its screen's available area (restored geometry too)
    ScaleTab* scaleTab() const { return m_scale; }
    DeltaTab* deltaTab() const { return m_deltaTab; }
    TaskPanel* taskPanel() const { return m_taskPanel; }
    // Task Data > Inspect Data: reads the task with the open model's tokenizer into the inspector
    // (a non-modal window); false with lastError() when there is no model or the data cannot be read.
    bool inspectTaskData();
    DataInspector* dataInspector() const { return m_dataInspector; }
    DeltaFiles* deltaFiles() const { return m_files; }
    QTabWidget* tabs() const { return m_tabs; }

protected:
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;
    void closeEvent(QCloseEvent* e) override;
    void showEvent(QShowEvent* e) override;  // the first show clamps again, now that the frame is known

private:
    void buildTabs();
    void buildDocks();
    void buildMenus();
    void buildFileActions(QMenu* fileMenu);  // main_window_files.cpp
    void rememberModel(const QString& source);
    void restoreLayout();  // window geometry and dock layout of the last session, clamped to the screen
    void refreshRecentMenu();

    Workbench* m_session;
    ModelPanel* m_panel;
    MethodPanel* m_method;
    ModelController* m_models;
    TrainingTab* m_training = nullptr;
    TransferTab* m_transfer = nullptr;
    CompareTab* m_compare = nullptr;
    PlaygroundTab* m_playground = nullptr;
    ScaleTab* m_scale = nullptr;
    DeltaTab* m_deltaTab = nullptr;
    TaskPanel* m_taskPanel = nullptr;
    bool m_shownOnce = false;
    QDialog* m_dataWindow = nullptr;
    DataInspector* m_dataInspector = nullptr;
    DeltaFiles* m_files = nullptr;
    QTabWidget* m_tabs = nullptr;
    QPlainTextEdit* m_log = nullptr;
    QPlainTextEdit* m_inspect = nullptr;
    QMenu* m_recentMenu = nullptr;
};
