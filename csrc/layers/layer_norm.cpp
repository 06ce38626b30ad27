#include "layer_norm.h"

#include <algorithm>
#include <cmath>

#include "layers/norm_reduce.h"
#include "runtime/thread_pool.h"

namespace fusedprop::layers {
namespace {

using detail::kNormColBlock;
using detail::lane_sum;

// fn(r0, r1) for blocks of rows of about 16k elements.
template <class F>
void row_blocks(index_t m, index_t d, int max_threads, F&& fn) {
    const index_t rows = std::max<index_t>(1, (index_t(1) << 14) / std::max<index_t>(d, 1));
    const index_t blocks = (m + rows - 1) / rows;
    const int threads = detail::norm_threads(m * d, max_threads);
    if (blocks <= 1 || threads == 1) {
        if (m > 0) fn(0, m);
        return;
    }
    runtime::parallel_for(
        static_cast<std::size_t>(blocks),
        [&](std::size_t b) {
            const index_t r0 = static_cast<index_t>(b) * rows;
            fn(r0, std::min(m, r0 + rows));
        },
        threads);
}

}  // namespace

template <class T>
void layer_norm_forward(const T* x, index_t m, index_t d, double eps, const T* gamma, const T* beta, T* y, T* mean,
                        T* rstd, int max_threads) {
    row_blocks(m, d, max_threads, [&](index_t r0, index_t r1) {
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
    });
}

template <class T>
void layer_norm_backward(const T* dy, const T* x, index_t m, index_t d, const T* mean, const T* rstd, const T* gamma,
                         T* dx, T* dgamma, T* dbeta, int max_threads) {
    if (dx != nullptr) {
        row_blocks(m, d, max_threads, [&](index_t r0, index_t r1) {
            for (index_t i = r0; i < r1; ++i) {
                const T* xr = x + i * d;
                const T* gr = dy + i * d;
                T* dr = dx + i * d;
                const T mu = mean[i], rs = rstd[i];
                auto g = [&](index_t j) { return gamma != nullptr ? gr[j] * gamma[j] : gr[j]; };
                const T inv_d = T(1) / static_cast<T>(d);
                const T mean_g = lane_sum<T>(d, g) * inv_d;
                const T mean_gx = lane_sum<T>(d, [&](index_t j) { return g(j) * ((xr[j] - mu) * rs); }) * inv_d;
                for (index_t j = 0; j < d; ++j) dr[j] = rs * (g(j) - mean_g - ((xr[j] - mu) * rs) * mean_gx);
            }
        });
    }
    if (dgamma == nullptr && dbeta == nullptr) return;
    // The weight gradients: column sums over the rows, blocks of columns per task.
    const index_t blocks = (d + kNormColBlock - 1) / kNormColBlock;
    auto block = [&](index_t c0, index_t c1) {
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
    };
    const int threads = detail::norm_threads(m * d, max_threads);
    if (blocks <= 1 || threads == 1) {
        for (index_t b = 0; b < blocks; ++b) block(b * kNormColBlock, std::min(d, (b + 1) * kNormColBlock));
        return;
    }
    runtime::parallel_for(
        static_cast<std::size_t>(blocks),
        [&](std::size_t b) {
            const index_t c0 = static_cast<index_t>(b) * kNormColBlock;
            block(c0, std::min(d, c0 + kNormColBlock));
        },
        threads);
}

#define FUSEDPROP_LAYER_NORM(T)                                                                                  \
    template void layer_norm_forward<T>(const T*, index_t, index_t, double, const T*, const T*, T*, T*, T*, int); \
    template void layer_norm_backward<T>(const T*, const T*, index_t, index_t, const T*, const T*, const T*, T*, \
                                         T*, T*, int);
FUSEDPROP_LAYER_NORM(float)
FUSEDPROP_LAYER_NORM(double)
#undef FUSEDPROP_LAYER_NORM

}  // namespace fusedprop::layers
