#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace dt {

ConfusionMatrix confusion_matrix(const std::vector<std::int64_t>& pred, const std::vector<std::int64_t>& gold, std::int64_t K) {
    ConfusionMatrix cm;
    const auto k = static_cast<std::size_t>(std::max<std::int64_t>(0, K));
    cm.counts.assign(k, std::vector<std::int64_t>(k, 0));
    cm.unmatched.assign(k, 0);
    for (std::size_t i = 0; i < k; ++i) cm.labels.push_back(std::to_string(i));
    for (std::size_t i = 0; i < std::min(pred.size(), gold.size()); ++i) {
        if (gold[i] < 0 || gold[i] >= K) continue;
        const auto g = static_cast<std::size_t>(gold[i]);
        if (pred[i] < 0 || pred[i] >= K) ++cm.unmatched[g];
        else ++cm.counts[g][static_cast<std::size_t>(pred[i])];
    }
    return cm;
}

std::vector<ClassMetrics> per_class_metrics(const ConfusionMatrix& cm) {
    const std::size_t K = cm.counts.size();
    std::vector<ClassMetrics> out(K);
    for (std::size_t k = 0; k < K; ++k) {
        double tp = static_cast<double>(cm.counts[k][k]), predicted = 0, gold = 0;
        for (std::size_t j = 0; j < K; ++j) predicted += static_cast<double>(cm.counts[j][k]), gold += static_cast<double>(cm.counts[k][j]);
        if (k < cm.unmatched.size()) gold += static_cast<double>(cm.unmatched[k]);
        auto& m = out[k];
        m.support = static_cast<std::int64_t>(gold);
        m.precision = predicted > 0 ? tp / predicted : 0.0;
        m.recall = gold > 0 ? tp / gold : 0.0;
        m.f1 = predicted + gold > 0 ? 2 * tp / (predicted + gold) : 0.0;
    }
    return out;
}

std::map<std::string, double> classification_metrics(const std::vector<std::int64_t>& pred, const std::vector<std::int64_t>& gold,
                                                     std::int64_t K) {
    // Predictions outside the classes (unmatched answers) count as neither right nor in any column,
    // as before; only n counts every example.
    const std::size_t n = std::min(pred.size(), gold.size());
    const ConfusionMatrix c = confusion_matrix(pred, gold, K);
    double correct = 0, f1 = 0;
    std::vector<double> t(static_cast<std::size_t>(K), 0), p(static_cast<std::size_t>(K), 0);
    for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k) {
        double tp = static_cast<double>(c.counts[k][k]), fp = 0, fn = 0;
        correct += tp;
        for (std::size_t j = 0; j < static_cast<std::size_t>(K); ++j) {
            const double v = static_cast<double>(c.counts[k][j]), w = static_cast<double>(c.counts[j][k]);
            if (j != k) fp += w, fn += v;
            t[k] += v;
            p[k] += w;
        }
        f1 += (tp + fp + fn) > 0 ? 2 * tp / (2 * tp + fp + fn) : 0.0;
    }
    // Gorodkin's multi-class MCC.
    const double s = static_cast<double>(n);
    double tk = 0, tt = 0, pp = 0;
    for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k) tk += t[k] * p[k], tt += t[k] * t[k], pp += p[k] * p[k];
    const double denom = std::sqrt((s * s - pp) * (s * s - tt));
    return {{"accuracy", n ? correct / s : 0.0},
            {"macro_f1", K ? f1 / static_cast<double>(K) : 0.0},
            {"mcc", denom > 0 ? (correct * s - tk) / denom : 0.0}};
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
    const std::size_t n = std::min(a.size(), b.size());
    if (n < 2) return 0.0;
    const double ma = std::accumulate(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n), 0.0) / static_cast<double>(n);
    const double mb = std::accumulate(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n), 0.0) / static_cast<double>(n);
    double sab = 0, saa = 0, sbb = 0;
    for (std::size_t i = 0; i < n; ++i) sab += (a[i] - ma) * (b[i] - mb), saa += (a[i] - ma) * (a[i] - ma), sbb += (b[i] - mb) * (b[i] - mb);
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

static std::vector<double> ranks(const std::vector<double>& v) {
    std::vector<std::size_t> idx(v.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](std::size_t x, std::size_t y) { return v[x] < v[y]; });
    std::vector<double> r(v.size());
    for (std::size_t i = 0; i < idx.size();) {
        std::size_t j = i;
        while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
        for (std::size_t k = i; k <= j; ++k) r[idx[k]] = 0.5 * static_cast<double>(i + j) + 1.0;  // average rank of ties
        i = j + 1;
    }
    return r;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) { return pearson(ranks(a), ranks(b)); }

}  // namespace dt
