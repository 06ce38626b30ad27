#include "batch_norm.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "layers/norm_reduce.h"
#include "runtime/thread_pool.h"

namespace fusedprop::layers {
namespace {

using detail::kNormColBlock;

// fn(c0, c1) for each block of columns, on the pool when the problem is large.
template <class F>
void column_blocks(index_t m, index_t n, int max_threads, F&& fn) {
    const index_t blocks = (n + kNormColBlock - 1) / kNormColBlock;
    const int threads = detail::norm_threads(m * n, max_threads);
    if (blocks <= 1 || threads == 1) {
        for (index_t b = 0; b < blocks; ++b) fn(b * kNormColBlock, std::min(n, (b + 1) * kNormColBlock));
        return;
    }
    runtime::parallel_for(
        static_cast<std::size_t>(blocks),
        [&](std::size_t b) {
            const index_t c0 = static_cast<index_t>(b) * kNormColBlock;
            fn(c0, std::min(n, c0 + kNormColBlock));
        },
        threads);
}

// y = x * a + c on the columns [c0, c0 + w) of every row.
template <class T>
void affine_columns(const T* x, index_t m, index_t n, index_t c0, index_t w, const T* a, const T* c, T* y) {
    for (index_t i = 0; i < m; ++i) {
        const T* xr = x + i * n + c0;
        T* yr = y + i * n + c0;
        for (index_t j = 0; j < w; ++j) yr[j] = xr[j] * a[j] + c[j];
    }
}

template <class T>
void scale_shift(const T* mean, const T* invstd, const T* gamma, const T* beta, index_t c0, index_t w, T* a, T* c) {
    for (index_t j = 0; j < w; ++j) {
        a[j] = gamma != nullptr ? invstd[j] * gamma[c0 + j] : invstd[j];
        c[j] = (beta != nullptr ? beta[c0 + j] : T(0)) - mean[j] * a[j];
    }
}

}  // namespace

template <class T>
void batch_norm_forward_train(const T* x, index_t m, index_t n, double eps, const T* gamma, const T* beta, T* y,
                              T* mean, T* invstd, T* var_unbiased, int max_threads) {
    const T nan = std::numeric_limits<T>::quiet_NaN();
    column_blocks(m, n, max_threads, [&](index_t c0, index_t c1) {
        const index_t w = c1 - c0;
        T acc[kNormColBlock], mu[kNormColBlock], is[kNormColBlock], a[kNormColBlock], c[kNormColBlock];
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
            is[j] = T(1) / std::sqrt(acc[j] / static_cast<T>(m) + static_cast<T>(eps));
            mean[c0 + j] = mu[j];
            invstd[c0 + j] = is[j];
            if (var_unbiased != nullptr) var_unbiased[c0 + j] = m > 1 ? acc[j] / static_cast<T>(m - 1) : nan;
        }
        if (m == 0) return;
        scale_shift(mu, is, gamma, beta, c0, w, a, c);
        affine_columns(x, m, n, c0, w, a, c, y);
    });
}

template <class T>
void batch_norm_forward_eval(const T* x, index_t m, index_t n, double eps, const T* running_mean,
                             const T* running_var, const T* gamma, const T* beta, T* y, int max_threads) {
    if (m == 0) return;
    column_blocks(m, n, max_threads, [&](index_t c0, index_t c1) {
        const index_t w = c1 - c0;
        T is[kNormColBlock], a[kNormColBlock], c[kNormColBlock];
        for (index_t j = 0; j < w; ++j) is[j] = T(1) / std::sqrt(running_var[c0 + j] + static_cast<T>(eps));
        scale_shift(running_mean + c0, is, gamma, beta, c0, w, a, c);
        affine_columns(x, m, n, c0, w, a, c, y);
    });
}

template <class T>
void batch_norm_update_running(T* running_mean, T* running_var, const T* mean, const T* var_unbiased, index_t n,
                               double momentum) {
    const T keep = static_cast<T>(1.0 - momentum), take = static_cast<T>(momentum);
    for (index_t j = 0; j < n; ++j) {
        running_mean[j] = keep * running_mean[j] + take * mean[j];
        running_var[j] = keep * running_var[j] + take * var_unbiased[j];
    }
}

template <class T>
void batch_norm_backward(const T* dy, const T* x, index_t m, index_t n, const T* mean, const T* invstd,
                         const T* gamma, T* dx, T* dgamma, T* dbeta, int max_threads) {
    column_blocks(m, n, max_threads, [&](index_t c0, index_t c1) {
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
    });
}

#define FUSEDPROP_BATCH_NORM(T)                                                                                     \
    template void batch_norm_forward_train<T>(const T*, index_t, index_t, double, const T*, const T*, T*, T*, T*, \
                                              T*, int);                                                          \
    template void batch_norm_forward_eval<T>(const T*, index_t, index_t, double, const T*, const T*, const T*,    \
                                             const T*, T*, int);                                                  \
    template void batch_norm_update_running<T>(T*, T*, const T*, const T*, index_t, double);                      \
    template void batch_norm_backward<T>(const T*, const T*, index_t, index_t, const T*, const T*, const T*, T*,  \
                                         T*, T*, int);
FUSEDPROP_BATCH_NORM(float)
FUSEDPROP_BATCH_NORM(double)
#undef FUSEDPROP_BATCH_NORM

}  // namespace fusedprop::layers
