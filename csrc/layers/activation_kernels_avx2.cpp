// AVX2+FMA row kernels for the elementwise activations (compiled with
// -mavx2 -mfma; entered only after the run-time CPU check in
// activation_kernels.cpp). The math is activation_avx2.h's.
#include <immintrin.h>

#include "layers/activation_avx2.h"
#include "layers/activation_kernels_impl.h"

namespace fusedprop::layers::detail {
namespace {

template <class T>
struct V;

template <>
struct V<float> {
    using reg = __m256;
    static constexpr index_t width = 8;
    static reg load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
    static __m256i mask(index_t n) {  // first n lanes on
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static reg load(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
    static void store(float* p, __m256i m, reg v) { _mm256_maskstore_ps(p, m, v); }
    static reg zero() { return _mm256_setzero_ps(); }
    static reg set1(float v) { return _mm256_set1_ps(v); }
    static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
    static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
    static reg le0(reg a) { return _mm256_cmp_ps(a, zero(), _CMP_LE_OQ); }
    static reg gt0(reg a) { return _mm256_cmp_ps(a, zero(), _CMP_GT_OQ); }
    static reg andnot(reg m, reg a) { return _mm256_andnot_ps(m, a); }
    static reg blend(reg f, reg t, reg m) { return _mm256_blendv_ps(f, t, m); }
};

template <>
struct V<double> {
    using reg = __m256d;
    static constexpr index_t width = 4;
    static reg load(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
    static __m256i mask(index_t n) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static reg load(const double* p, __m256i m) { return _mm256_maskload_pd(p, m); }
    static void store(double* p, __m256i m, reg v) { _mm256_maskstore_pd(p, m, v); }
    static reg zero() { return _mm256_setzero_pd(); }
    static reg set1(double v) { return _mm256_set1_pd(v); }
    static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
    static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
    static reg le0(reg a) { return _mm256_cmp_pd(a, zero(), _CMP_LE_OQ); }
    static reg gt0(reg a) { return _mm256_cmp_pd(a, zero(), _CMP_GT_OQ); }
    static reg andnot(reg m, reg a) { return _mm256_andnot_pd(m, a); }
    static reg blend(reg f, reg t, reg m) { return _mm256_blendv_pd(f, t, m); }
};

template <class T, Activation A>
void forward_loop(T slope, const T* x, T* y, index_t n) {
    using v = V<T>;
    constexpr index_t w = v::width;
    index_t k = 0;
    for (; k + 2 * w <= n; k += 2 * w) {  // two independent chains per step
        const auto a = avx2::forward<A>(v::load(x + k), slope);
        const auto b = avx2::forward<A>(v::load(x + k + w), slope);
        v::store(y + k, a);
        v::store(y + k + w, b);
    }
    for (; k < n; k += w) {
        if (n - k >= w) {
            v::store(y + k, avx2::forward<A>(v::load(x + k), slope));
        } else {
            const __m256i m = v::mask(n - k);
            v::store(y + k, m, avx2::forward<A>(v::load(x + k, m), slope));
        }
    }
}

// dZ for one vector: selects for relu / leaky_relu, a product otherwise.
template <class T, Activation A>
typename V<T>::reg grad(typename V<T>::reg gy, typename V<T>::reg s, T slope) {
    using v = V<T>;
    if constexpr (A == Activation::identity) {
        (void)s;
        return gy;
    } else if constexpr (A == Activation::relu) {
        return v::andnot(v::le0(s), gy);  // Y <= 0 ? 0 : dY (NaN Y passes dY)
    } else if constexpr (A == Activation::leaky_relu) {
        return v::blend(v::mul(gy, v::set1(slope)), gy, v::gt0(s));
    } else {
        return v::mul(gy, avx2::derivative<A>(s, slope));
    }
}

template <class T, Activation A>
void backward_loop(T slope, const T* gy, const T* saved, T* gz, index_t n, T* colsum) {
    using v = V<T>;
    constexpr index_t w = v::width;
    constexpr bool uses_saved = A != Activation::identity;
    index_t k = 0;
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
void forward(Activation a, T slope, const T* x, T* y, index_t n) {
    switch (a) {
        case Activation::identity: forward_loop<T, Activation::identity>(slope, x, y, n); break;
        case Activation::relu: forward_loop<T, Activation::relu>(slope, x, y, n); break;
        case Activation::leaky_relu: forward_loop<T, Activation::leaky_relu>(slope, x, y, n); break;
        case Activation::sigmoid: forward_loop<T, Activation::sigmoid>(slope, x, y, n); break;
        case Activation::tanh: forward_loop<T, Activation::tanh>(slope, x, y, n); break;
        case Activation::gelu: forward_loop<T, Activation::gelu>(slope, x, y, n); break;
        case Activation::gelu_tanh: forward_loop<T, Activation::gelu_tanh>(slope, x, y, n); break;
        case Activation::silu: forward_loop<T, Activation::silu>(slope, x, y, n); break;
    }
}

template <class T>
void backward(Activation a, T slope, const T* gy, const T* saved, T* gz, index_t n, T* colsum) {
    switch (a) {
        case Activation::identity: backward_loop<T, Activation::identity>(slope, gy, saved, gz, n, colsum); break;
        case Activation::relu: backward_loop<T, Activation::relu>(slope, gy, saved, gz, n, colsum); break;
        case Activation::leaky_relu: backward_loop<T, Activation::leaky_relu>(slope, gy, saved, gz, n, colsum); break;
        case Activation::sigmoid: backward_loop<T, Activation::sigmoid>(slope, gy, saved, gz, n, colsum); break;
        case Activation::tanh: backward_loop<T, Activation::tanh>(slope, gy, saved, gz, n, colsum); break;
        case Activation::gelu: backward_loop<T, Activation::gelu>(slope, gy, saved, gz, n, colsum); break;
        case Activation::gelu_tanh: backward_loop<T, Activation::gelu_tanh>(slope, gy, saved, gz, n, colsum); break;
        case Activation::silu: backward_loop<T, Activation::silu>(slope, gy, saved, gz, n, colsum); break;
    }
}

}  // namespace

template <class T>
ActivationRowKernels<T> avx2_row_kernels() {
    return {&forward<T>, &backward<T>};
}
template ActivationRowKernels<float> avx2_row_kernels<float>();
template ActivationRowKernels<double> avx2_row_kernels<double>();

}  // namespace fusedprop::layers::detail
