// The element loops of BatchNorm1d and LayerNorm, written once and compiled
// twice: baseline (norm_dispatch.cpp) and AVX2 (norm_avx2.cpp), picked at
// run time (norm_kernels.h).
// batch_norm.cpp and layer_norm.cpp split the work into blocks and threads;
// these loops do one block.
//
// Both copies give the same bits: the loops use only +, -, *, / and sqrt, each
// correctly rounded whatever the vector width; the column sums run down the
// rows and the vectors go across columns, so a vector changes no order; the
// row sums (LayerNorm) keep eight explicit partial sums (lane_sum); and the
// AVX2 file is compiled with -ffp-contract=off, so no a * b + c becomes an
// FMA (which rounds once instead of twice).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "layers/norm_reduce.h"
#include "runtime/isa_tag.h"

namespace fusedprop::layers::detail {
inline namespace FUSEDPROP_ISA_TAG {

// ------------------------------------------------------------- BatchNorm1d
// One block of columns [c0, c1) of a C-contiguous m x n matrix, at most
// kNormColBlock wide; each column is reduced over the rows in row order.

// y = x * a + c on the columns [c0, c0 + w) of every row.
template <class T>
void affine_columns(const T* x, index_t m, index_t n, index_t c0, index_t w, const T* a, const T* c, T* y) {
    for (index_t i = 0; i < m; ++i) {
        const T* xr = x + i * n + c0;
        T* yr = y + i * n + c0;
        for (index_t j = 0; j < w; ++j) yr[j] = xr[j] * a[j] + c[j];
    }
}

// a = invstd * gamma, c = beta - mean * a for the block's columns.
template <class T>
void scale_shift(const T* mean, const T* invstd, const T* gamma, const T* beta, index_t c0, index_t w, T* a, T* c) {
    for (index_t j = 0; j < w; ++j) {
        a[j] = gamma != nullptr ? invstd[j] * gamma[c0 + j] : invstd[j];
        c[j] = (beta != nullptr ? beta[c0 + j] : T(0)) - mean[j] * a[j];
    }
}

// scale_shift with the running statistics (eval): invstd = 1 / sqrt(running_var + eps).
template <class T>
void eval_scale_shift(const T* running_mean, const T* running_var, double eps, const T* gamma, const T* beta,
                      index_t c0, index_t w, T* a, T* c) {
    T is[kNormColBlock];
    for (index_t j = 0; j < w; ++j) is[j] = T(1) / std::sqrt(running_var[c0 + j] + static_cast<T>(eps));
    scale_shift(running_mean + c0, is, gamma, beta, c0, w, a, c);
}

// The batch statistics of the block's columns: mean, invstd = 1 / sqrt(var_biased
// + eps), and var_unbiased (nullptr: skipped; NaN for m == 1).
template <class T>
void bn_stats_block(const T* x, index_t m, index_t n, index_t c0, index_t c1, double eps, T* mean, T* invstd,
                    T* var_unbiased) {
    const T nan = std::numeric_limits<T>::quiet_NaN();
    const index_t w = c1 - c0;
    T* const mu = mean + c0;
    T acc[kNormColBlock];
    std::fill(acc, acc + w, T(0));
    for (index_t i = 0; i < m; ++i) {
        const T* xr = x + i * n + c0;
        for (index_t j = 0; j < w; ++j) acc[j] += xr[j];
    }
    for (index_t j = 0; j < w; ++j) mu[j] = acc[j] / static_cast<T>(m);
    // Two passes (mean, then squared deviations): no cancellation when |mean| >> std.
    std::fill(acc, acc + w, T(0));
    for (index_t i = 0; i < m; ++i) {
        const T* xr = x + i * n + c0;
        for (index_t j = 0; j < w; ++j) {
            const T d = xr[j] - mu[j];
            acc[j] += d * d;
        }
    }
    for (index_t j = 0; j < w; ++j) {
        invstd[c0 + j] = T(1) / std::sqrt(acc[j] / static_cast<T>(m) + static_cast<T>(eps));
        if (var_unbiased != nullptr) var_unbiased[c0 + j] = m > 1 ? acc[j] / static_cast<T>(m - 1) : nan;
    }
}

template <class T>
void bn_forward_train_block(const T* x, index_t m, index_t n, index_t c0, index_t c1, double eps, const T* gamma,
                            const T* beta, T* y, T* mean, T* invstd, T* var_unbiased) {
    const index_t w = c1 - c0;
    T a[kNormColBlock], c[kNormColBlock];
    bn_stats_block(x, m, n, c0, c1, eps, mean, invstd, var_unbiased);
    if (m == 0) return;
    scale_shift(mean + c0, invstd + c0, gamma, beta, c0, w, a, c);
    affine_columns(x, m, n, c0, w, a, c, y);
}

// y = x * a + c on the rows [r0, r1), all n columns (a, c: n values each).
template <class T>
void affine_rows(const T* x, index_t r0, index_t r1, index_t n, const T* a, const T* c, T* y) {
    affine_columns(x + r0 * n, r1 - r0, n, 0, n, a, c, y + r0 * n);
}

template <class T>
void bn_forward_eval_block(const T* x, index_t m, index_t n, index_t c0, index_t c1, double eps,
                           const T* running_mean, const T* running_var, const T* gamma, const T* beta, T* y) {
    const index_t w = c1 - c0;
    T a[kNormColBlock], c[kNormColBlock];
    eval_scale_shift(running_mean, running_var, eps, gamma, beta, c0, w, a, c);
    affine_columns(x, m, n, c0, w, a, c, y);
}

template <class T>
void bn_backward_block(const T* dy, const T* x, index_t m, index_t n, index_t c0, index_t c1, const T* mean,
                       const T* invstd, const T* gamma, T* dx, T* dgamma, T* dbeta) {
    const index_t w = c1 - c0;
    T sum_dy[kNormColBlock], dot[kNormColBlock];
    std::fill(sum_dy, sum_dy + w, T(0));
    std::fill(dot, dot + w, T(0));
    const T* mu = mean + c0;
    const T* is = invstd + c0;
    for (index_t i = 0; i < m; ++i) {
        const T* xr = x + i * n + c0;
        const T* gr = dy + i * n + c0;
        for (index_t j = 0; j < w; ++j) {
            sum_dy[j] += gr[j];
            dot[j] += (xr[j] - mu[j]) * gr[j];
        }
    }
    for (index_t j = 0; j < w; ++j) {
        if (dbeta != nullptr) dbeta[c0 + j] = sum_dy[j];
        if (dgamma != nullptr) dgamma[c0 + j] = m > 0 ? dot[j] * is[j] : T(0);
    }
    if (dx == nullptr || m == 0) return;
    T k[kNormColBlock], mean_dy[kNormColBlock], g[kNormColBlock];
    const T inv_m = T(1) / static_cast<T>(m);
    for (index_t j = 0; j < w; ++j) {
        k[j] = dot[j] * is[j] * is[j] * inv_m;
        mean_dy[j] = sum_dy[j] * inv_m;
        g[j] = gamma != nullptr ? is[j] * gamma[c0 + j] : is[j];
    }
    for (index_t i = 0; i < m; ++i) {
        const T* xr = x + i * n + c0;
        const T* gr = dy + i * n + c0;
        T* dr = dx + i * n + c0;
        for (index_t j = 0; j < w; ++j) dr[j] = (gr[j] - mean_dy[j] - (xr[j] - mu[j]) * k[j]) * g[j];
    }
}

// --------------------------------------------------------------- LayerNorm
// Rows [r0, r1) of a C-contiguous m x d matrix; each row is reduced with
// lane_sum's eight partial sums.

template <class T>
void ln_forward_rows(const T* x, index_t r0, index_t r1, index_t d, double eps, const T* gamma, const T* beta, T* y,
                     T* mean, T* rstd) {
    for (index_t i = r0; i < r1; ++i) {
        const T* xr = x + i * d;
        T* yr = y + i * d;
        const T mu = lane_sum<T>(d, [&](index_t j) { return xr[j]; }) / static_cast<T>(d);
        const T var = lane_sum<T>(d, [&](index_t j) {
                          const T t = xr[j] - mu;
                          return t * t;
                      }) /
                      static_cast<T>(d);
        const T rs = T(1) / std::sqrt(var + static_cast<T>(eps));
        mean[i] = mu;
        rstd[i] = rs;
        if (gamma != nullptr && beta != nullptr)
            for (index_t j = 0; j < d; ++j) yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
        else if (gamma != nullptr)
            for (index_t j = 0; j < d; ++j) yr[j] = (xr[j] - mu) * rs * gamma[j];
        else
            for (index_t j = 0; j < d; ++j) yr[j] = (xr[j] - mu) * rs;
    }
}

template <class T, bool kGamma>
void ln_backward_rows_with(const T* dy, const T* x, index_t r0, index_t r1, index_t d, const T* mean, const T* rstd,
                           const T* gamma, T* dx) {
    for (index_t i = r0; i < r1; ++i) {
        const T* xr = x + i * d;
        const T* gr = dy + i * d;
        T* dr = dx + i * d;
        const T mu = mean[i], rs = rstd[i];
        auto g = [&](index_t j) {
            if constexpr (kGamma) return gr[j] * gamma[j];
            else return gr[j];
        };
        const T inv_d = T(1) / static_cast<T>(d);
        const T mean_g = lane_sum<T>(d, g) * inv_d;
        const T mean_gx = lane_sum<T>(d, [&](index_t j) { return g(j) * ((xr[j] - mu) * rs); }) * inv_d;
        for (index_t j = 0; j < d; ++j) dr[j] = rs * (g(j) - mean_g - ((xr[j] - mu) * rs) * mean_gx);
    }
}

// gamma: nullptr for 1 (a branch per element kept the loops scalar).
template <class T>
void ln_backward_rows(const T* dy, const T* x, index_t r0, index_t r1, index_t d, const T* mean, const T* rstd,
                      const T* gamma, T* dx) {
    if (gamma != nullptr) ln_backward_rows_with<T, true>(dy, x, r0, r1, d, mean, rstd, gamma, dx);
    else ln_backward_rows_with<T, false>(dy, x, r0, r1, d, mean, rstd, gamma, dx);
}

// The weight gradients of the columns [c0, c1): sums over the rows in row order.
template <class T>
void ln_weight_grad_block(const T* dy, const T* x, index_t m, index_t d, index_t c0, index_t c1, const T* mean,
                          const T* rstd, T* dgamma, T* dbeta) {
    const index_t w = c1 - c0;
    T sg[kNormColBlock], sb[kNormColBlock];
    std::fill(sg, sg + w, T(0));
    std::fill(sb, sb + w, T(0));
    for (index_t i = 0; i < m; ++i) {
        const T* xr = x + i * d + c0;
        const T* gr = dy + i * d + c0;
        const T mu = mean[i], rs = rstd[i];
        for (index_t j = 0; j < w; ++j) {
            sg[j] += gr[j] * ((xr[j] - mu) * rs);
            sb[j] += gr[j];
        }
    }
    for (index_t j = 0; j < w; ++j) {
        if (dgamma != nullptr) dgamma[c0 + j] = sg[j];
        if (dbeta != nullptr) dbeta[c0 + j] = sb[j];
    }
}

}  // namespace FUSEDPROP_ISA_TAG
}  // namespace fusedprop::layers::detail
