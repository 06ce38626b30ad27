// Loss values and their gradients with respect to the network's output, in
// one pass: what a training step needs from the loss.
//
// Each function returns the loss (reduced) and writes dLoss/dOutput into
// `grad` (same shape as the output, any strides). Sums run in a fixed order
// in double precision: the same inputs give bitwise the same loss and
// gradient on every run. Definitions and reductions are PyTorch's.
#pragma once

#include <cstdint>

#include "runtime/matrix_ref.h"

namespace fusedprop::train {

enum class Reduction : std::uint8_t { mean, sum };

// nn.MSELoss: mean or sum of (output - target)^2 over all elements.
template <class T>
double mse_loss(MatrixRef<const T> output, MatrixRef<const T> target, Reduction reduction, MatrixRef<T> grad);

// nn.BCEWithLogitsLoss: max(z, 0) - z t + log1p(exp(-|z|)), stable for any z.
template <class T>
double bce_with_logits_loss(MatrixRef<const T> logits, MatrixRef<const T> target, Reduction reduction,
                            MatrixRef<T> grad);

// nn.CrossEntropyLoss over rows of logits (batch, classes) with class-index
// targets, label smoothing as PyTorch: (1 - eps) * NLL + eps * mean_c(-log p_c).
// Precondition (checked by the caller): 0 <= target[i] < classes.
template <class T>
double cross_entropy_loss(MatrixRef<const T> logits, const std::int64_t* target, double label_smoothing,
                          Reduction reduction, MatrixRef<T> grad);

// Index of the first target outside [0, classes), or -1 when all are valid.
index_t first_invalid_class(const std::int64_t* target, index_t n, index_t classes);

}  // namespace fusedprop::train
