// BatchNorm1d over a C-contiguous (m x n) matrix: rows are samples, columns
// features. PyTorch's semantics: the forward in training normalises with the
// batch mean and the biased variance, the running statistics take the
// unbiased one; eval normalises with the running statistics.
//
// Each column is reduced over the rows in row order by one task (tasks are
// blocks of columns), so every statistic and gradient is bitwise the same
// for every thread count.
#pragma once

#include "runtime/matrix_ref.h"

namespace fusedprop::layers {

// Training forward: per column mean, invstd = 1 / sqrt(var_biased + eps) and
// (var_unbiased: nullptr to skip; NaN for m == 1) the unbiased variance, then
// y = x * a + c with a = invstd * gamma, c = beta - mean * a (gamma, beta:
// nullptr for 1 and 0). y may be x. m == 0 writes NaN statistics, no y.
template <class T>
void batch_norm_forward_train(const T* x, index_t m, index_t n, double eps, const T* gamma, const T* beta, T* y,
                              T* mean, T* invstd, T* var_unbiased, int max_threads = 0);

// The statistics of batch_norm_forward_train alone (no y), and the per
// column a and c its y = x * a + c uses (n values each): for a caller that
// applies the affine itself, fused with what follows (elementwise_chain.h).
template <class T>
void batch_norm_stats(const T* x, index_t m, index_t n, double eps, T* mean, T* invstd, T* var_unbiased,
                      int max_threads = 0);
template <class T>
void batch_norm_scale_shift(const T* mean, const T* invstd, const T* gamma, const T* beta, index_t n, T* a, T* c);

// Eval forward with the running statistics: y = x * a + c as above with
// invstd = 1 / sqrt(running_var + eps). y may be x.
template <class T>
void batch_norm_forward_eval(const T* x, index_t m, index_t n, double eps, const T* running_mean,
                             const T* running_var, const T* gamma, const T* beta, T* y, int max_threads = 0);
// The a and c batch_norm_forward_eval uses (n values each), for a caller
// that applies the affine itself (elementwise_chain.h).
template <class T>
void batch_norm_eval_scale_shift(const T* running_mean, const T* running_var, double eps, const T* gamma,
                                 const T* beta, index_t n, T* a, T* c);

// running = (1 - momentum) * running + momentum * batch, for the mean and the variance.
template <class T>
void batch_norm_update_running(T* running_mean, T* running_var, const T* mean, const T* var_unbiased, index_t n,
                               double momentum);

// Training backward, given the forward's mean and invstd:
//   dbeta = sum_i dy,  dgamma = invstd * sum_i (x - mean) dy,
//   dx = (dy - dbeta / m - (x - mean) invstd^2 / m * sum_i (x - mean) dy) * invstd * gamma.
// dx may be dy; dx, dgamma, dbeta: nullptr to skip.
template <class T>
void batch_norm_backward(const T* dy, const T* x, index_t m, index_t n, const T* mean, const T* invstd,
                         const T* gamma, T* dx, T* dgamma, T* dbeta, int max_threads = 0);

}  // namespace fusedprop::layers
