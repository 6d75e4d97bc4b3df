// MainWindow's file handling: the File menu's spec, export and import actions (the work is done by
// TrainingTab and DeltaFiles), recent models, drag and drop of a model or delta folder, and the
// window layout kept between sessions.
#include "main_window.h"

#include "delta_files.h"
#include "training_tab.h"

#include "export/delta_format.h"

#include <QAction>
#include <QCloseEvent>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileInfo>
#include <QMenu>
#include <QMimeData>
#include <QGuiApplication>
#include <QScreen>
#include <QTimer>
#include <QSettings>

#include <algorithm>
#include <QUrl>

namespace {
constexpr int kRecentMax = 8;
const char* kRecentKey = "recentModels";

QString droppedFolder(const QMimeData* mime) {
    if (!mime || !mime->hasUrls()) return {};
    for (const QUrl& u : mime->urls())
        if (u.isLocalFile() && QFileInfo(u.toLocalFile()).isDir()) return u.toLocalFile();
    return {};
}
}  // namespace

void MainWindow::buildFileActions(QMenu* fileMenu) {
    m_recentMenu = fileMenu->addMenu(tr("Recent &Models"));
    refreshRecentMenu();
    fileMenu->addSeparator();
    auto* save = fileMenu->addAction(tr("&Save Run Spec…"), m_training, &TrainingTab::chooseSaveRunSpec);
    save->setShortcut(QKeySequence::Save);
    save->setToolTip(tr("The Training tab's task, delta and training arguments as the JSON `deltatune train --spec` takes"));
    auto* exp = fileMenu->addAction(tr("&Export Delta…"), this, [this] { m_files->chooseExport(this); });
    exp->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_E));
    exp->setToolTip(tr("The last run's delta as a PEFT adapter, a DeltaTune delta or a merged model folder"));
    auto* imp = fileMenu->addAction(tr("&Import Delta…"), this, [this] { m_files->chooseImport(this); });
    imp->setToolTip(tr("A folder saved by PEFT or exported by DeltaTune: training continues from its values"));
    auto* merge = fileMenu->addAction(tr("&Merge Deltas…"), this, [this] { m_files->chooseMerge(this); });
    merge->setToolTip(tr("One delta from several runs (PEFT's add_weighted_adapter), added as a row of the transfer heatmap"));
    setAcceptDrops(true);
}

void MainWindow::restoreLayout() {
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
    restoreState(settings.value(QStringLiteral("window/state")).toByteArray());
    clampToScreen();
}

void MainWindow::clampToScreen() {
    // A geometry saved on a larger screen (or with an older, wider layout) comes back inside this one.
    const QScreen* s = screen() ? screen() : QGuiApplication::primaryScreen();
    if (!s) return;
    const QRect avail = s->availableGeometry();
    // The window manager's frame (title bar, borders) counts too; it is known once shown.
    const QRect f = frameGeometry();
    QRect g = geometry();
    const QMargins m(g.left() - f.left(), g.top() - f.top(), f.right() - g.right(), f.bottom() - g.bottom());
    g.setWidth(std::max(1, std::min(g.width(), avail.width() - m.left() - m.right())));
    g.setHeight(std::max(1, std::min(g.height(), avail.height() - m.top() - m.bottom())));
    g.moveLeft(std::clamp(g.left(), avail.left() + m.left(), std::max(avail.left() + m.left(), avail.right() - m.right() - g.width() + 1)));
    g.moveTop(std::clamp(g.top(), avail.top() + m.top(), std::max(avail.top() + m.top(), avail.bottom() - m.bottom() - g.height() + 1)));
    if (g != geometry()) setGeometry(g);
}

void MainWindow::showEvent(QShowEvent* e) {
    QMainWindow::showEvent(e);
    if (!m_shownOnce) {
        m_shownOnce = true;
        QTimer::singleShot(0, this, &MainWindow::clampToScreen);  // after the window manager framed it
    }
}

QStringList MainWindow::recentModels() const { return QSettings().value(QLatin1String(kRecentKey)).toStringList(); }

void MainWindow::rememberModel(const QString& source) {
    const QFileInfo f(source);
    const QString entry = f.exists() ? f.absoluteFilePath() : source;
    QStringList list = recentModels();
    list.removeAll(entry);
    list.prepend(entry);
    while (list.size() > kRecentMax) list.removeLast();
    QSettings().setValue(QLatin1String(kRecentKey), list);
    refreshRecentMenu();
}

void MainWindow::refreshRecentMenu() {
    if (!m_recentMenu) return;
    m_recentMenu->clear();
    const QStringList list = recentModels();
    for (const QString& m : list) m_recentMenu->addAction(m, this, [this, m] { openModel(m); });
    m_recentMenu->setEnabled(!list.isEmpty());
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
    if (!droppedFolder(e->mimeData()).isEmpty()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
    if (openDropped(e->mimeData())) e->acceptProposedAction();
}

bool MainWindow::openDropped(const QMimeData* mime) {
    const QString dir = droppedFolder(mime);
    if (dir.isEmpty()) return false;
    // A delta folder is imported; anything else is opened as a model.
    return dt::is_exported_delta(dir.toStdString()) ? m_files->importDelta(dir) : openModel(dir);
}

void MainWindow::closeEvent(QCloseEvent* e) {
    QSettings settings;
    settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
    settings.setValue(QStringLiteral("window/state"), saveState());
    QMainWindow::closeEvent(e);
}
