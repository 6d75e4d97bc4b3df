#include "theme.h"

#include <QApplication>
#include <QPainter>
#include <QStyleFactory>
#include <QStyleOption>

QPalette darkPalette() {
    QPalette p(QColor(55, 55, 60), QColor(45, 45, 48));  // button, window: derives Light/Mid/Dark/Shadow
    p.setColor(QPalette::WindowText, QColor(220, 220, 220));
    p.setColor(QPalette::Base, QColor(30, 30, 32));
    p.setColor(QPalette::AlternateBase, QColor(40, 40, 44));
    p.setColor(QPalette::Text, QColor(220, 220, 220));
    p.setColor(QPalette::BrightText, QColor(255, 120, 120));
    p.setColor(QPalette::ButtonText, QColor(220, 220, 220));
    p.setColor(QPalette::Highlight, QColor(42, 130, 218));
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::Link, QColor(110, 170, 255));
    p.setColor(QPalette::ToolTipBase, QColor(30, 30, 32));
    p.setColor(QPalette::ToolTipText, QColor(220, 220, 220));
    p.setColor(QPalette::PlaceholderText, QColor(140, 140, 140));
    for (auto role : {QPalette::Text, QPalette::ButtonText, QPalette::WindowText}) p.setColor(QPalette::Disabled, role, QColor(120, 120, 120));
    return p;
}

ContrastStyle::ContrastStyle() : QProxyStyle(QStyleFactory::create(QStringLiteral("Fusion"))) {}

void ContrastStyle::drawPrimitive(PrimitiveElement pe, const QStyleOption* opt, QPainter* p, const QWidget* w) const {
    QProxyStyle::drawPrimitive(pe, opt, p, w);
    if (pe != PE_IndicatorItemViewItemCheck && pe != PE_IndicatorCheckBox) return;
    // A frame in the text colour at 60%: visible on any base, light or dark.
    QColor frame = opt->palette.text().color();
    frame.setAlpha(150);
    p->save();
    p->setRenderHint(QPainter::Antialiasing, false);
    p->setPen(frame);
    p->setBrush(Qt::NoBrush);
    const QRect r = opt->rect.adjusted(1, 1, -2, -2);
    const int side = std::min(r.width(), r.height());
    p->drawRect(QRect(r.left(), r.top() + (r.height() - side) / 2, side, side));
    p->restore();
}

void applyDarkTheme() {
    QApplication::setStyle(new ContrastStyle);
    QApplication::setPalette(darkPalette());
}
