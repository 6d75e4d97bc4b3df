// DeltaTab: delta inspection while a run trains. Two layer-by-module heatmaps that the training
// worker refreshes every few steps: how far each module's delta has moved (||dW|| / ||W|| for LoRA
// and IA3, the relative change of the trained tensors otherwise) and the gradient norm per module.
#pragma once

#include <QStringList>
#include <QVector>
#include <QWidget>

class HeatmapView;
class QLabel;

class DeltaTab : public QWidget {
    Q_OBJECT
public:
    explicit DeltaTab(QWidget* parent = nullptr);
    HeatmapView* magnitudes() const { return m_delta; }
    HeatmapView* gradients() const { return m_grad; }
    int updates() const { return m_updates; }

public Q_SLOTS:
    void clear();
    // kind: "delta_magnitude" or "grad_norm"; values row-major, NaN = no value.
    void showGrid(qint64 step, const QString& kind, const QStringList& rows, const QStringList& cols, const QVector<double>& values);

private:
    HeatmapView* m_delta;
    HeatmapView* m_grad;
    QLabel* m_caption;
    int m_updates = 0;
};
