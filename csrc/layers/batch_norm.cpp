#include "batch_norm.h"

#include <algorithm>

#include "layers/norm_kernels.h"
#include "layers/norm_threads.h"

namespace fusedprop::layers {

using detail::column_blocks;

template <class T>
void batch_norm_forward_train(const T* x, index_t m, index_t n, double eps, const T* gamma, const T* beta, T* y,
                              T* mean, T* invstd, T* var_unbiased, int max_threads) {
    const auto kernel = detail::norm_kernels<T>().bn_forward_train;
    column_blocks(m, n, max_threads, [&](index_t c0, index_t c1) {
        kernel(x, m, n, c0, c1, eps, gamma, beta, y, mean, invstd, var_unbiased);
    });
}

template <class T>
void batch_norm_stats(const T* x, index_t m, index_t n, double eps, T* mean, T* invstd, T* var_unbiased,
                      int max_threads) {
    const auto kernel = detail::norm_kernels<T>().bn_stats;
    column_blocks(m, n, max_threads,
                  [&](index_t c0, index_t c1) { kernel(x, m, n, c0, c1, eps, mean, invstd, var_unbiased); });
}

template <class T>
void batch_norm_scale_shift(const T* mean, const T* invstd, const T* gamma, const T* beta, index_t n, T* a, T* c) {
    detail::scale_shift(mean, invstd, gamma, beta, 0, n, a, c);
}

template <class T>
void batch_norm_forward_eval(const T* x, index_t m, index_t n, double eps, const T* running_mean,
                             const T* running_var, const T* gamma, const T* beta, T* y, int max_threads) {
    if (m == 0) return;
    const auto kernel = detail::norm_kernels<T>().bn_forward_eval;
    column_blocks(m, n, max_threads, [&](index_t c0, index_t c1) {
        kernel(x, m, n, c0, c1, eps, running_mean, running_var, gamma, beta, y);
    });
}

template <class T>
void batch_norm_eval_scale_shift(const T* running_mean, const T* running_var, double eps, const T* gamma,
                                 const T* beta, index_t n, T* a, T* c) {
    for (index_t c0 = 0; c0 < n; c0 += detail::kNormColBlock) {
        const index_t w = std::min(detail::kNormColBlock, n - c0);
        detail::eval_scale_shift(running_mean, running_var, eps, gamma, beta, c0, w, a + c0, c + c0);
    }
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
    const auto kernel = detail::norm_kernels<T>().bn_backward;
    column_blocks(m, n, max_threads, [&](index_t c0, index_t c1) {
        kernel(dy, x, m, n, c0, c1, mean, invstd, gamma, dx, dgamma, dbeta);
    });
}

#define FUSEDPROP_BATCH_NORM(T)                                                                                     \
    template void batch_norm_forward_train<T>(const T*, index_t, index_t, double, const T*, const T*, T*, T*, T*, \
                                              T*, int);                                                          \
    template void batch_norm_forward_eval<T>(const T*, index_t, index_t, double, const T*, const T*, const T*,    \
                                             const T*, T*, int);                                                  \
    template void batch_norm_stats<T>(const T*, index_t, index_t, double, T*, T*, T*, int);                    \
    template void batch_norm_scale_shift<T>(const T*, const T*, const T*, const T*, index_t, T*, T*);         \
    template void batch_norm_eval_scale_shift<T>(const T*, const T*, double, const T*, const T*, index_t, T*, T*); \
    template void batch_norm_update_running<T>(T*, T*, const T*, const T*, index_t, double);                      \
    template void batch_norm_backward<T>(const T*, const T*, index_t, index_t, const T*, const T*, const T*, T*,  \
                                         T*, T*, int);
FUSEDPROP_BATCH_NORM(float)
FUSEDPROP_BATCH_NORM(double)
#undef FUSEDPROP_BATCH_NORM

}  // namespace fusedprop::layers
