#include "layer_norm.h"

#include <algorithm>

#include "layers/norm_kernels.h"
#include "layers/norm_threads.h"

namespace fusedprop::layers {
namespace {

// Rows per task: about 16k elements.
index_t block_rows(index_t d) { return std::max<index_t>(1, (index_t(1) << 14) / std::max<index_t>(d, 1)); }

}  // namespace

template <class T>
void layer_norm_forward(const T* x, index_t m, index_t d, double eps, const T* gamma, const T* beta, T* y, T* mean,
                        T* rstd, int max_threads) {
    const auto kernel = detail::norm_kernels<T>().ln_forward;
    detail::row_blocks(m, d, block_rows(d), max_threads,
                       [&](index_t r0, index_t r1) { kernel(x, r0, r1, d, eps, gamma, beta, y, mean, rstd); });
}

template <class T>
void layer_norm_backward(const T* dy, const T* x, index_t m, index_t d, const T* mean, const T* rstd, const T* gamma,
                         T* dx, T* dgamma, T* dbeta, int max_threads) {
    const auto& kernels = detail::norm_kernels<T>();
    if (dx != nullptr) {
        detail::row_blocks(m, d, block_rows(d), max_threads, [&](index_t r0, index_t r1) {
            kernels.ln_backward(dy, x, r0, r1, d, mean, rstd, gamma, dx);
        });
    }
    if (dgamma == nullptr && dbeta == nullptr) return;
    // The weight gradients: column sums over the rows, blocks of columns per task.
    detail::column_blocks(m, d, max_threads, [&](index_t c0, index_t c1) {
        kernels.ln_weight_grad(dy, x, m, d, c0, c1, mean, rstd, dgamma, dbeta);
    });
}

#define FUSEDPROP_LAYER_NORM(T)                                                                                  \
    template void layer_norm_forward<T>(const T*, index_t, index_t, double, const T*, const T*, T*, T*, T*, int); \
    template void layer_norm_backward<T>(const T*, const T*, index_t, index_t, const T*, const T*, const T*, T*, \
                                         T*, T*, int);
FUSEDPROP_LAYER_NORM(float)
FUSEDPROP_LAYER_NORM(double)
#undef FUSEDPROP_LAYER_NORM

}  // namespace fusedprop::layers
