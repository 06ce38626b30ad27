// AVX2+FMA row kernels for the elementwise activations (compiled with
// -mavx2 -mfma; entered only after the run-time CPU check in
// activation_kernels.cpp). The math is activation_avx2.h's.
#include <immintrin.h>

#include "math/activation_avx2.h"
#include "layers/activation_kernels_impl.h"
#include "runtime/simd_avx2.h"

namespace fusedprop::layers::detail {
namespace {

template <class T>
using V = simd::Avx2<T>;

// The transcendental activations are long dependency chains (gelu: ~70
// instructions, latency ~80 cycles a vector), so the loops below hand the
// core several independent vectors per step, and this file is compiled with
// GCC's pre-register-allocation scheduler (-fschedule-insns -fsched-pressure,
// CMakeLists.txt), which interleaves them; x86 GCC leaves that pass off by
// default. Measured on 1M floats, against one vector at a time (backward)
// or two (forward) without the pass: forward gelu 15-25% faster, gelu_tanh
// 35%, silu 28%; backward gelu 25-35%. Same operations, same results.
template <math::Activation A>
inline constexpr bool kPiecewiseLinear =
    A == math::Activation::identity || A == math::Activation::relu || A == math::Activation::leaky_relu;
template <math::Activation A>
inline constexpr int kUnroll = kPiecewiseLinear<A> ? 2 : 4;

template <class T, math::Activation A>
void forward_loop(T slope, const T* x, T* y, index_t n) {
    using v = V<T>;
    constexpr index_t w = v::width;
    constexpr int U = kUnroll<A>;
    index_t k = 0;
    for (; k + U * w <= n; k += U * w) {
        typename v::reg r[U];
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) r[u] = math::avx2::forward<A>(v::load(x + k + u * w), slope);
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) v::store(y + k + u * w, r[u]);
    }
    for (; k < n; k += w) {
        if (n - k >= w) {
            v::store(y + k, math::avx2::forward<A>(v::load(x + k), slope));
        } else {
            const __m256i m = v::mask(n - k);
            v::store(y + k, m, math::avx2::forward<A>(v::load(x + k, m), slope));
        }
    }
}

// dZ for one vector: selects for relu / leaky_relu, a product otherwise.
template <class T, math::Activation A>
typename V<T>::reg grad(typename V<T>::reg gy, typename V<T>::reg s, T slope) {
    using v = V<T>;
    if constexpr (A == math::Activation::identity) {
        (void)s;
        return gy;
    } else if constexpr (A == math::Activation::relu) {
        return v::andnot(v::le0(s), gy);  // Y <= 0 ? 0 : dY (NaN Y passes dY)
    } else if constexpr (A == math::Activation::leaky_relu) {
        return v::blend(v::mul(gy, v::set1(slope)), gy, v::gt0(s));
    } else {
        return v::mul(gy, math::avx2::derivative<A>(s, slope));
    }
}

template <class T, math::Activation A>
void backward_loop(T slope, const T* gy, const T* saved, T* gz, index_t n, T* colsum) {
    using v = V<T>;
    constexpr index_t w = v::width;
    constexpr bool uses_saved = A != math::Activation::identity;
    constexpr int U = kUnroll<A>;
    index_t k = 0;
    for (; k + U * w <= n; k += U * w) {
        typename v::reg g[U];
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u)
            g[u] = grad<T, A>(v::load(gy + k + u * w), uses_saved ? v::load(saved + k + u * w) : v::zero(), slope);
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) {
            v::store(gz + k + u * w, g[u]);
            if (colsum) v::store(colsum + k + u * w, v::add(v::load(colsum + k + u * w), g[u]));
        }
    }
    for (; k < n; k += w) {
        typename v::reg g;
        if (n - k >= w) {
            g = grad<T, A>(v::load(gy + k), uses_saved ? v::load(saved + k) : v::zero(), slope);
            v::store(gz + k, g);
            if (colsum) v::store(colsum + k, v::add(v::load(colsum + k), g));
        } else {
            const __m256i m = v::mask(n - k);
            g = grad<T, A>(v::load(gy + k, m), uses_saved ? v::load(saved + k, m) : v::zero(), slope);
            v::store(gz + k, m, g);
            if (colsum) v::store(colsum + k, m, v::add(v::load(colsum + k, m), g));
        }
    }
}

template <class T>
void exp_loop(T* x, index_t n) {
    using v = V<T>;
    constexpr index_t w = v::width;
    index_t k = 0;
    for (; k + 2 * w <= n; k += 2 * w) {
        const typename v::reg e0 = math::avx2::exp(v::load(x + k)), e1 = math::avx2::exp(v::load(x + k + w));
        v::store(x + k, e0);
        v::store(x + k + w, e1);
    }
    for (; k < n; k += w) {
        if (n - k >= w) {
            v::store(x + k, math::avx2::exp(v::load(x + k)));
        } else {
            const __m256i m = v::mask(n - k);
            v::store(x + k, m, math::avx2::exp(v::load(x + k, m)));
        }
    }
}

template <class T>
void forward(math::Activation a, T slope, const T* x, T* y, index_t n) {
    switch (a) {
        case math::Activation::identity: forward_loop<T, math::Activation::identity>(slope, x, y, n); break;
        case math::Activation::relu: forward_loop<T, math::Activation::relu>(slope, x, y, n); break;
        case math::Activation::leaky_relu: forward_loop<T, math::Activation::leaky_relu>(slope, x, y, n); break;
        case math::Activation::sigmoid: forward_loop<T, math::Activation::sigmoid>(slope, x, y, n); break;
        case math::Activation::tanh: forward_loop<T, math::Activation::tanh>(slope, x, y, n); break;
        case math::Activation::gelu: forward_loop<T, math::Activation::gelu>(slope, x, y, n); break;
        case math::Activation::gelu_tanh: forward_loop<T, math::Activation::gelu_tanh>(slope, x, y, n); break;
        case math::Activation::silu: forward_loop<T, math::Activation::silu>(slope, x, y, n); break;
    }
}

template <class T>
void backward(math::Activation a, T slope, const T* gy, const T* saved, T* gz, index_t n, T* colsum) {
    switch (a) {
        case math::Activation::identity: backward_loop<T, math::Activation::identity>(slope, gy, saved, gz, n, colsum); break;
        case math::Activation::relu: backward_loop<T, math::Activation::relu>(slope, gy, saved, gz, n, colsum); break;
        case math::Activation::leaky_relu: backward_loop<T, math::Activation::leaky_relu>(slope, gy, saved, gz, n, colsum); break;
        case math::Activation::sigmoid: backward_loop<T, math::Activation::sigmoid>(slope, gy, saved, gz, n, colsum); break;
        case math::Activation::tanh: backward_loop<T, math::Activation::tanh>(slope, gy, saved, gz, n, colsum); break;
        case math::Activation::gelu: backward_loop<T, math::Activation::gelu>(slope, gy, saved, gz, n, colsum); break;
        case math::Activation::gelu_tanh: backward_loop<T, math::Activation::gelu_tanh>(slope, gy, saved, gz, n, colsum); break;
        case math::Activation::silu: backward_loop<T, math::Activation::silu>(slope, gy, saved, gz, n, colsum); break;
    }
}

}  // namespace

template <class T>
ActivationRowKernels<T> avx2_row_kernels() {
    return {&forward<T>, &backward<T>, &exp_loop<T>};
}
template ActivationRowKernels<float> avx2_row_kernels<float>();
template ActivationRowKernels<double> avx2_row_kernels<double>();

}  // namespace fusedprop::layers::detail
