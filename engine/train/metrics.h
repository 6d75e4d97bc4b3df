// Evaluation metrics: accuracy, macro F1, Matthews correlation (multi-class), Pearson, Spearman.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dt {

std::map<std::string, double> classification_metrics(const std::vector<std::int64_t>& pred, const std::vector<std::int64_t>& gold,
                                                     std::int64_t num_classes);
double pearson(const std::vector<double>& a, const std::vector<double>& b);
double spearman(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace dt
