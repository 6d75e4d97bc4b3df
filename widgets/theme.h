// The workbench's dark theme, in one place: a complete dark palette (every role, so no light
// default leaks through: Light/Mid/Dark/Shadow included) on the Fusion style, with check boxes in
// item views (the module tree, the run table) drawn with a visible frame. Fusion frames them with
// the window colour darkened, which on a dark base is invisible.
#pragma once

#include <QPalette>
#include <QProxyStyle>

QPalette darkPalette();

class ContrastStyle : public QProxyStyle {
public:
    ContrastStyle();  // on Fusion
    void drawPrimitive(PrimitiveElement pe, const QStyleOption* opt, QPainter* p, const QWidget* w = nullptr) const override;
};

// Fusion with the dark palette and ContrastStyle for the whole application.
void applyDarkTheme();
