#include "elementwise_chain.h"

#include <algorithm>
#include <cassert>
#include <numeric>

#include "layers/activation_kernels.h"
#include "layers/norm_kernels.h"
#include "layers/norm_threads.h"

namespace fusedprop::layers {
namespace {

// Rows per block: about 8k elements (32 KiB of f32 per array), and a multiple of 32 / gcd(n, 32) rows so that every block
// starts on a dropout group of 32 elements (dropout.h), where the SIMD
// kernels run.
index_t block_rows(index_t n) {
    const index_t step = 32 / std::gcd<index_t>(n, 32);
    const index_t rows = std::max<index_t>(1, 8192 / std::max<index_t>(n, 1));
    return std::max(step, rows / step * step);
}

// fn(r0, r1) over blocks of rows, on the pool once the problem is large.
template <class F>
void row_blocks(index_t m, index_t n, int max_threads, F&& fn) {
    if (m <= 0 || n <= 0) return;
    const int threads = detail::norm_threads(m * n, max_threads);
    detail::for_blocks(m, block_rows(n), threads != 1, threads, fn);
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
    const bool norm = chain.scale != nullptr || chain.layer_norm;
    assert(!norm || chain.y != nullptr || (chain.has_act && chain.a != nullptr));
    assert(!chain.has_act || chain.a != nullptr);
    assert(!chain.has_dropout || chain.d != nullptr);
    const auto& kernels = detail::norm_kernels<T>();
    row_blocks(m, n, max_threads, [&](index_t r0, index_t r1) {
        const T* in = x;
        if (norm) {
            T* out = chain.y != nullptr ? chain.y : chain.a;
            if (chain.layer_norm)
                kernels.ln_forward(x, r0, r1, n, chain.eps, chain.gamma, chain.beta, out, chain.mean, chain.rstd);
            else
                kernels.affine_rows(x, r0, r1, n, chain.scale, chain.shift, out);
            in = out;
        }
        if (chain.has_act) {
            activation_forward<T>(chain.act, chain.slope, rows_at(in, r0, r1, n), rows_at(chain.a, r0, r1, n));
            in = chain.a;
        }
        if (chain.has_dropout) dropout_apply_range<T>(in, chain.d, r0 * n, r1 * n, chain.p, chain.key);
    });
}

template <class T>
void dropout_act_backward(const T* grad_d, double p, DropoutKey key, math::Activation act, T slope, const T* saved,
                          index_t m, index_t n, T* grad_x, int max_threads) {
    row_blocks(m, n, max_threads, [&](index_t r0, index_t r1) {
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
