#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace dt {

std::map<std::string, double> classification_metrics(const std::vector<std::int64_t>& pred, const std::vector<std::int64_t>& gold,
                                                     std::int64_t K) {
    const std::size_t n = std::min(pred.size(), gold.size());
    std::vector<std::vector<double>> cm(static_cast<std::size_t>(K), std::vector<double>(static_cast<std::size_t>(K), 0.0));
    double correct = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (pred[i] < 0 || pred[i] >= K || gold[i] < 0 || gold[i] >= K) continue;
        cm[static_cast<std::size_t>(gold[i])][static_cast<std::size_t>(pred[i])] += 1;
        correct += pred[i] == gold[i];
    }
    double f1 = 0;
    std::vector<double> t(static_cast<std::size_t>(K), 0), p(static_cast<std::size_t>(K), 0);
    for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k) {
        double tp = cm[k][k], fp = 0, fn = 0;
        for (std::size_t j = 0; j < static_cast<std::size_t>(K); ++j) {
            if (j != k) fp += cm[j][k], fn += cm[k][j];
            t[k] += cm[k][j];
            p[k] += cm[j][k];
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
