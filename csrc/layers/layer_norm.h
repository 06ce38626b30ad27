// LayerNorm over the last d elements of each row of a C-contiguous (m x d)
// matrix (d = the product of normalized_shape): PyTorch's semantics, the
// biased variance, gamma and beta of d elements (nullptr: 1 and 0).
//
// Rows are independent (tasks are blocks of rows); the weight gradients are
// column sums over the rows, each column summed in row order by one task.
// Every result is bitwise the same for every thread count.
#pragma once

#include "runtime/matrix_ref.h"

namespace fusedprop::layers {

// mean[i], rstd[i] = 1 / sqrt(var_i + eps), y = (x - mean) * rstd * gamma + beta. y may be x.
template <class T>
void layer_norm_forward(const T* x, index_t m, index_t d, double eps, const T* gamma, const T* beta, T* y, T* mean,
                        T* rstd, int max_threads = 0);

// With xhat = (x - mean) rstd and g = dy * gamma:
//   dx = rstd * (g - mean_j(g) - xhat * mean_j(g xhat)),
//   dgamma = sum_i dy xhat, dbeta = sum_i dy.
// dx, dgamma, dbeta: nullptr to skip. dx must not be dy (the weight
// gradients read dy after dx is written).
template <class T>
void layer_norm_backward(const T* dy, const T* x, index_t m, index_t d, const T* mean, const T* rstd, const T* gamma,
                         T* dx, T* dgamma, T* dbeta, int max_threads = 0);

}  // namespace fusedprop::layers
