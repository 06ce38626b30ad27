#include "losses.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace fusedprop::train {
namespace {

double scale_for(Reduction reduction, index_t count) {
    return reduction == Reduction::mean && count > 0 ? 1.0 / static_cast<double>(count) : 1.0;
}

}  // namespace

template <class T>
double mse_loss(MatrixRef<const T> output, MatrixRef<const T> target, Reduction reduction, MatrixRef<T> grad) {
    const double scale = scale_for(reduction, output.rows * output.cols);
    double total = 0.0;
    for (index_t i = 0; i < output.rows; ++i) {
        for (index_t j = 0; j < output.cols; ++j) {
            const double diff = static_cast<double>(output(i, j)) - static_cast<double>(target(i, j));
            total += diff * diff;
            grad(i, j) = static_cast<T>(2.0 * diff * scale);
        }
    }
    if (reduction == Reduction::mean && output.rows * output.cols == 0)
        return std::numeric_limits<double>::quiet_NaN();  // as torch: mean of nothing
    return total * scale;
}

template <class T>
double bce_with_logits_loss(MatrixRef<const T> logits, MatrixRef<const T> target, Reduction reduction,
                            MatrixRef<T> grad) {
    const double scale = scale_for(reduction, logits.rows * logits.cols);
    double total = 0.0;
    for (index_t i = 0; i < logits.rows; ++i) {
        for (index_t j = 0; j < logits.cols; ++j) {
            const double z = logits(i, j), t = target(i, j);
            total += std::max(z, 0.0) - z * t + std::log1p(std::exp(-std::fabs(z)));
            const double sigmoid = z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
            grad(i, j) = static_cast<T>((sigmoid - t) * scale);
        }
    }
    if (reduction == Reduction::mean && logits.rows * logits.cols == 0) return std::numeric_limits<double>::quiet_NaN();
    return total * scale;
}

template <class T>
double cross_entropy_loss(MatrixRef<const T> logits, const std::int64_t* target, double label_smoothing,
                          Reduction reduction, MatrixRef<T> grad) {
    const index_t classes = logits.cols;
    const double scale = scale_for(reduction, logits.rows);
    const double eps = label_smoothing;
    const double off_target = classes > 0 ? eps / static_cast<double>(classes) : 0.0;
    std::vector<double> log_probs(static_cast<std::size_t>(classes));
    std::vector<double> exps(static_cast<std::size_t>(classes));
    double total = 0.0;
    for (index_t i = 0; i < logits.rows; ++i) {
        double row_max = -std::numeric_limits<double>::infinity();
        for (index_t j = 0; j < classes; ++j) row_max = std::max(row_max, static_cast<double>(logits(i, j)));
        if (std::isinf(row_max) && row_max < 0) row_max = 0;  // every logit -inf: keep exp() finite
        double sum_exp = 0.0;
        for (index_t j = 0; j < classes; ++j) {
            exps[j] = std::exp(static_cast<double>(logits(i, j)) - row_max);
            sum_exp += exps[j];
        }
        const double log_sum = row_max + std::log(sum_exp);
        // softmax = exp(z - max) / sum: one exp per logit, not a second exp(log_prob).
        const double inv_sum = 1.0 / sum_exp;
        double sum_log_probs = 0.0;
        for (index_t j = 0; j < classes; ++j) {
            log_probs[j] = static_cast<double>(logits(i, j)) - log_sum;
            sum_log_probs += log_probs[j];
        }
        const index_t y = static_cast<index_t>(target[i]);
        total += -(1.0 - eps) * log_probs[y] - off_target * sum_log_probs;
        for (index_t j = 0; j < classes; ++j) {
            const double hit = j == y ? 1.0 - eps : 0.0;
            grad(i, j) = static_cast<T>((exps[j] * inv_sum - hit - off_target) * scale);
        }
    }
    if (reduction == Reduction::mean && logits.rows == 0) return std::numeric_limits<double>::quiet_NaN();
    return total * scale;
}

index_t first_invalid_class(const std::int64_t* target, index_t n, index_t classes) {
    for (index_t i = 0; i < n; ++i)
        if (target[i] < 0 || target[i] >= classes) return i;
    return -1;
}

template double mse_loss<float>(MatrixRef<const float>, MatrixRef<const float>, Reduction, MatrixRef<float>);
template double mse_loss<double>(MatrixRef<const double>, MatrixRef<const double>, Reduction, MatrixRef<double>);
template double bce_with_logits_loss<float>(MatrixRef<const float>, MatrixRef<const float>, Reduction,
                                            MatrixRef<float>);
template double bce_with_logits_loss<double>(MatrixRef<const double>, MatrixRef<const double>, Reduction,
                                             MatrixRef<double>);
template double cross_entropy_loss<float>(MatrixRef<const float>, const std::int64_t*, double, Reduction,
                                          MatrixRef<float>);
template double cross_entropy_loss<double>(MatrixRef<const double>, const std::int64_t*, double, Reduction,
                                           MatrixRef<double>);

}  // namespace fusedprop::train
