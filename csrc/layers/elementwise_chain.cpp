#include "elementwise_chain.h"

#include <algorithm>
#include <cassert>
#include <numeric>

#include "layers/activation_kernels.h"
#include "layers/norm_kernels.h"
#include "layers/norm_threads.h"

namespace fusedprop::layers {
namespace {

// Rows per block: about 8k elements (32 KiB of f32 per array), and a
// multiple of 32 / gcd(n, 32) rows, so that every block starts on a dropout
// group of 32 elements (dropout.h), where the SIMD kernels run.
index_t block_rows(index_t n) {
    const index_t step = 32 / std::gcd<index_t>(n, 32);
    const index_t rows = std::max<index_t>(1, 8192 / std::max<index_t>(n, 1));
    return std::max(step, rows / step * step);
}

template <class T>
MatrixRef<T> rows_at(T* base, index_t r0, index_t r1, index_t n) {
    return {base + r0 * n, r1 - r0, n, n, 1};
}
template <class T>
MatrixRef<const T> rows_at(const T* base, index_t r0, index_t r1, index_t n) {
    return {base + r0 * n, r1 - r0, n, n, 1};
}

}  // namespace

template <class T>
void chain_forward(const T* x, index_t m, index_t n, const ChainForward<T>& chain, int max_threads) {
    using Norm = typename ChainForward<T>::Norm;
    assert(chain.a != nullptr);
    const auto& kernels = detail::norm_kernels<T>();
    detail::row_blocks(m, n, block_rows(n), max_threads, [&](index_t r0, index_t r1) {
        const T* in = x;
        if (chain.norm != Norm::none) {
            T* out = chain.y != nullptr ? chain.y : chain.a;
            if (chain.norm == Norm::layer_norm)
                kernels.ln_forward(x, r0, r1, n, chain.eps, chain.gamma, chain.beta, out, chain.mean, chain.rstd);
            else
                kernels.affine_rows(x, r0, r1, n, chain.scale, chain.shift, out);
            in = out;
        }
        activation_forward<T>(chain.act, chain.slope, rows_at(in, r0, r1, n), rows_at(chain.a, r0, r1, n));
        if (chain.d != nullptr) dropout_apply_range<T>(chain.a, chain.d, r0 * n, r1 * n, chain.p, chain.key);
    });
}

template <class T>
void dropout_act_backward(const T* grad_d, double p, DropoutKey key, math::Activation act, T slope, const T* saved,
                          index_t m, index_t n, T* grad_x, int max_threads) {
    detail::row_blocks(m, n, block_rows(n), max_threads, [&](index_t r0, index_t r1) {
        dropout_apply_range<T>(grad_d, grad_x, r0 * n, r1 * n, p, key);
        const MatrixRef<T> g = rows_at(grad_x, r0, r1, n);
        activation_backward<T>(act, slope, g, rows_at(saved, r0, r1, n), g, nullptr);
    });
}

template void chain_forward<float>(const float*, index_t, index_t, const ChainForward<float>&, int);
template void chain_forward<double>(const double*, index_t, index_t, const ChainForward<double>&, int);
template void dropout_act_backward<float>(const float*, double, DropoutKey, math::Activation, float, const float*,
                                          index_t, index_t, float*, int);
template void dropout_act_backward<double>(const double*, double, DropoutKey, math::Activation, double, const double*,
                                           index_t, index_t, double*, int);

}  // namespace fusedprop::layers
