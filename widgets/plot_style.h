// The widgets' plots take their colours from the palette (light and dark themes alike).
#pragma once

#include "qcustomplot_compat.h"

// Axes, ticks, labels and legend in the widget's text colour on its base colour; drag and zoom on.
inline void stylePlot(QCustomPlot* p) {
    const QPalette pal = p->palette();
    p->setBackground(pal.base());
    for (QCPAxis* ax : {p->xAxis, p->yAxis, p->xAxis2, p->yAxis2}) {
        ax->setBasePen(QPen(pal.text().color()));
        ax->setTickPen(QPen(pal.text().color()));
        ax->setSubTickPen(QPen(pal.text().color()));
        ax->setTickLabelColor(pal.text().color());
        ax->setLabelColor(pal.text().color());
    }
    // A see-through legend: the curves it covers stay visible underneath.
    QColor legendBg = pal.base().color(), legendBorder = pal.text().color();
    legendBg.setAlpha(190);
    legendBorder.setAlpha(90);
    p->legend->setBrush(legendBg);
    p->legend->setBorderPen(QPen(legendBorder));
    p->legend->setTextColor(pal.text().color());
    p->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
}

// The legend in a row of its own above the axes, its entries side by side: it can never cover a
// curve or a bar (inside the axes it did, whatever corner it took). It stays visible, empty or not:
// hiding a layout element squeezed the axes beside it.
inline void legendAbove(QCustomPlot* p) {
    p->legend->setVisible(true);
    if (p->plotLayout()->rowCount() == 1) {
        p->plotLayout()->insertRow(0);
        p->plotLayout()->addElement(0, 0, p->legend);  // moves it out of the axis rect's inset layout
        p->plotLayout()->setRowStretchFactor(0, 0.001);
    }
    p->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    p->legend->setWrap(6);
    p->legend->setBrush(Qt::NoBrush);
    p->legend->setBorderPen(Qt::NoPen);
    p->legend->setMargins(QMargins(4, 0, 4, 0));
}
