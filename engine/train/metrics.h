// Evaluation metrics: accuracy, macro F1, Matthews correlation (multi-class), Pearson, Spearman.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dt {

// Counts of gold class (row) against predicted class (column); predictions outside 0..K-1 (a generated
// answer that is no label word) are counted in `unmatched` of their gold row.
struct ConfusionMatrix {
    std::vector<std::string> labels;                  // class names, index = class
    std::vector<std::vector<std::int64_t>> counts;    // [gold][predicted]
    std::vector<std::int64_t> unmatched;              // per gold class
    bool empty() const { return counts.empty(); }
};
ConfusionMatrix confusion_matrix(const std::vector<std::int64_t>& pred, const std::vector<std::int64_t>& gold, std::int64_t num_classes);

// One class's precision, recall, F1 and support (gold count), from a confusion matrix; 0 where a
// denominator is 0 (as scikit-learn's zero_division=0).
struct ClassMetrics {
    double precision = 0, recall = 0, f1 = 0;
    std::int64_t support = 0;
};
std::vector<ClassMetrics> per_class_metrics(const ConfusionMatrix& cm);

std::map<std::string, double> classification_metrics(const std::vector<std::int64_t>& pred, const std::vector<std::int64_t>& gold,
                                                     std::int64_t num_classes);
// The score an evaluation is ranked by (best checkpoint, early stopping): accuracy, else pearson,
// else exact match (ties by loss), else the negated loss; and that metric's name.
double eval_score(const std::map<std::string, double>& m);
std::string eval_score_name(const std::map<std::string, double>& m);

double pearson(const std::vector<double>& a, const std::vector<double>& b);
double spearman(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace dt
