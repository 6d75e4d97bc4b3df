#include "main_window.h"

#include "model_panel.h"
#include "module_tree_model.h"

#include "core/error.h"
#include "models/loader.h"
#include "tree/module_tree.h"

#include <QAction>
#include <QApplication>
#include <QDockWidget>
#include <QFileDialog>
#include <QFontDatabase>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QStatusBar>
#include <QTabWidget>

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setWindowTitle(tr("DeltaTune"));
    m_panel = new ModelPanel(this);
    auto* modelDock = new QDockWidget(tr("Model"), this);
    modelDock->setObjectName(QStringLiteral("modelDock"));
    modelDock->setWidget(m_panel);
    addDockWidget(Qt::LeftDockWidgetArea, modelDock);

    m_inspect = new QPlainTextEdit(this);
    m_inspect->setReadOnly(true);
    m_inspect->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_inspect->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    auto* tabs = new QTabWidget(this);
    tabs->addTab(m_inspect, tr("Inspect"));
    setCentralWidget(tabs);

    m_log = new QPlainTextEdit(this);
    m_log->setReadOnly(true);
    m_log->setMaximumBlockCount(5000);
    auto* logDock = new QDockWidget(tr("Log"), this);
    logDock->setObjectName(QStringLiteral("logDock"));
    logDock->setWidget(m_log);
    addDockWidget(Qt::BottomDockWidgetArea, logDock);

    auto* fileMenu = menuBar()->addMenu(tr("&File"));
    auto* open = fileMenu->addAction(tr("&Open Model Folder…"), this, &MainWindow::chooseModelFolder);
    open->setShortcut(QKeySequence::Open);
    auto* builtin = fileMenu->addAction(tr("Open Built-in &Tiny BERT"), this, [this] { openModel(QStringLiteral("tiny-bert")); });
    builtin->setToolTip(tr("A small BERT with random weights, for trying things out"));
    fileMenu->addSeparator();
    auto* quit = fileMenu->addAction(tr("&Quit"), qApp, &QApplication::quit);
    quit->setShortcut(QKeySequence::Quit);
    auto* viewMenu = menuBar()->addMenu(tr("&View"));
    viewMenu->addAction(modelDock->toggleViewAction());
    viewMenu->addAction(logDock->toggleViewAction());
    resize(1280, 800);
    resizeDocks({modelDock}, {560}, Qt::Horizontal);
    resizeDocks({logDock}, {140}, Qt::Vertical);
}

MainWindow::~MainWindow() = default;

void MainWindow::log(const QString& line) { m_log->appendPlainText(line); }

bool MainWindow::openModel(const QString& source) {
    try {
        dt::LoadedModel loaded = dt::load_model(source.toStdString());
        dt::ModuleTree tree = dt::ModuleTree::build(*loaded.model);
        m_inspect->setPlainText(QString::fromStdString(tree.to_text()));
        m_panel->model()->setTree(std::move(tree));
        m_model = loaded.model;
        m_lastError.clear();
        setWindowTitle(tr("DeltaTune — %1").arg(source));
        log(tr("Opened %1 (%2)").arg(source, QString::fromStdString(loaded.report.weights_source)));
        if (!loaded.report.missing.empty())
            log(tr("%n parameter(s) not in the checkpoint were randomly initialised", nullptr,
                   static_cast<int>(loaded.report.missing.size())));
        if (!loaded.report.unexpected.empty())
            log(tr("%n checkpoint tensor(s) were not used", nullptr, static_cast<int>(loaded.report.unexpected.size())));
        statusBar()->showMessage(tr("Loaded %1").arg(source), 5000);
        return true;
    } catch (const dt::Error& e) {
        m_lastError = QString::fromStdString(e.what());
    } catch (const std::exception& e) {
        m_lastError = tr("Internal error: %1").arg(QString::fromUtf8(e.what()));
    }
    log(m_lastError);
    statusBar()->showMessage(m_lastError);
    return false;
}

void MainWindow::chooseModelFolder() {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Model Folder"));
    if (dir.isEmpty()) return;
    if (!openModel(dir)) QMessageBox::warning(this, tr("Cannot open model"), m_lastError);
}
