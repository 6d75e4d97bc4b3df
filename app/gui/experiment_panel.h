// Pieces the experiment tabs' side panels share (Compare Methods, Scale): the ticked entries of a
// checkable list, and the PNG / PDF / CSV export row with its save dialog.
#pragma once

#include "workbench.h"

#include <QBoxLayout>
#include <QFileDialog>
#include <QListWidget>
#include <QPushButton>
#include <QStringList>

#include <functional>

namespace gui {

inline QStringList checkedTexts(const QListWidget* list) {
    QStringList out;
    for (int i = 0; i < list->count(); ++i)
        if (list->item(i)->checkState() == Qt::Checked) out << list->item(i)->text();
    return out;
}

// Adds "PNG…  PDF…  CSV…" to `form`; each asks for a file (`base`.ext by default) and calls
// save(ext, path), then reports "Saved path" or "Could not save path" through `log`.
inline void addExportRow(QWidget* owner, QBoxLayout* form, const QString& title, const QString& base,
                         std::function<bool(const QString& ext, const QString& path)> save, std::function<void(const QString&)> log) {
    auto* row = new QHBoxLayout;
    const std::pair<const char*, QString> kinds[] = {{"png", QObject::tr("PNG images (*.png)")},
                                                     {"pdf", QObject::tr("PDF files (*.pdf)")},
                                                     {"csv", QObject::tr("CSV files (*.csv)")}};
    for (const auto& [ext, filter] : kinds) {
        auto* b = new QPushButton(QString::fromLatin1(ext).toUpper() + QStringLiteral("…"), owner);
        QObject::connect(b, &QPushButton::clicked, owner, [=, e = QString::fromLatin1(ext)] {
            const QString f = QFileDialog::getSaveFileName(owner, title, Workbench::dialogStart(QStringLiteral("exports"), base + QLatin1Char('.') + e), filter);
            if (f.isEmpty()) return;
            Workbench::remember(QStringLiteral("exports"), f, false);
            log(save(e, f) ? QObject::tr("Saved %1").arg(f) : QObject::tr("Could not save %1").arg(f));
        });
        row->addWidget(b);
    }
    form->addLayout(row);
}

}  // namespace gui
