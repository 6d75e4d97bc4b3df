// Writes text to a file as a whole (QSaveFile: a temporary, then a rename), for the views' CSV exports.
#pragma once

#include <QSaveFile>
#include <QString>

inline bool saveTextFile(const QString& path, const QString& text) {
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return false;
    f.write(text.toUtf8());
    return f.commit();
}
