// The dZ + db pass of the backward, AVX2 (compiled with -mavx2 -mfma):
// dz = dY * act'(saved) eight floats (four doubles) at a time, with the
// derivative from activation_avx2.h; relu and leaky_relu by select. db sums
// go to double accumulators, row by row, in column order fixed by j.
#include <immintrin.h>

#include "activation_avx2.h"
#include "linear_backward.h"

namespace fusedprop::layers {
namespace {

template <class T>
struct Vec;
template <>
struct Vec<float> {
    using type = __m256;
    static constexpr int lanes = 8;
    static type load(const float* p) { return _mm256_loadu_ps(p); }
    static type load(const float* p, index_t stride) {
        if (stride == 1) return _mm256_loadu_ps(p);
        alignas(32) float lanes[8];
        for (int l = 0; l < 8; ++l) lanes[l] = p[l * stride];
        return _mm256_load_ps(lanes);
    }
    static void store(float* p, type v) { _mm256_storeu_ps(p, v); }
    static type set1(float v) { return _mm256_set1_ps(v); }
    static type zero() { return _mm256_setzero_ps(); }
    static type mul(type a, type b) { return _mm256_mul_ps(a, b); }
    static type le_zero_mask(type s) { return _mm256_cmp_ps(s, zero(), _CMP_LE_OQ); }
    static type gt_zero_mask(type s) { return _mm256_cmp_ps(s, zero(), _CMP_GT_OQ); }
    static type andnot(type m, type v) { return _mm256_andnot_ps(m, v); }
    static type blend(type f, type t, type m) { return _mm256_blendv_ps(f, t, m); }
    static void accumulate(double* acc, type v) {
        _mm256_storeu_pd(acc, _mm256_add_pd(_mm256_loadu_pd(acc), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
        _mm256_storeu_pd(acc + 4,
                         _mm256_add_pd(_mm256_loadu_pd(acc + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
    }
};
template <>
struct Vec<double> {
    using type = __m256d;
    static constexpr int lanes = 4;
    static type load(const double* p) { return _mm256_loadu_pd(p); }
    static type load(const double* p, index_t stride) {
        if (stride == 1) return _mm256_loadu_pd(p);
        alignas(32) double lanes[4];
        for (int l = 0; l < 4; ++l) lanes[l] = p[l * stride];
        return _mm256_load_pd(lanes);
    }
    static void store(double* p, type v) { _mm256_storeu_pd(p, v); }
    static type set1(double v) { return _mm256_set1_pd(v); }
    static type zero() { return _mm256_setzero_pd(); }
    static type mul(type a, type b) { return _mm256_mul_pd(a, b); }
    static type le_zero_mask(type s) { return _mm256_cmp_pd(s, zero(), _CMP_LE_OQ); }
    static type gt_zero_mask(type s) { return _mm256_cmp_pd(s, zero(), _CMP_GT_OQ); }
    static type andnot(type m, type v) { return _mm256_andnot_pd(m, v); }
    static type blend(type f, type t, type m) { return _mm256_blendv_pd(f, t, m); }
    static void accumulate(double* acc, type v) { _mm256_storeu_pd(acc, _mm256_add_pd(_mm256_loadu_pd(acc), v)); }
};

template <class T, Activation A>
inline T dz_one(T dy, T s, T slope) {
    if constexpr (A == Activation::identity) return dy;
    else if constexpr (A == Activation::relu) return s <= T(0) ? T(0) : dy;
    else if constexpr (A == Activation::leaky_relu) return s > T(0) ? dy : dy * slope;
    else return dy * scalar::derivative<T>(A, s, slope);
}

template <class T, Activation A>
inline typename Vec<T>::type dz_vec(typename Vec<T>::type dy, typename Vec<T>::type s, T slope) {
    using V = Vec<T>;
    if constexpr (A == Activation::identity) return dy;
    else if constexpr (A == Activation::relu) return V::andnot(V::le_zero_mask(s), dy);
    else if constexpr (A == Activation::leaky_relu) return V::blend(V::mul(dy, V::set1(slope)), dy, V::gt_zero_mask(s));
    else return V::mul(dy, avx2::derivative<A>(s, slope));
}

template <class T, Activation A>
void run(MatrixRef<const T> dy, MatrixRef<const T> saved, T slope, MatrixRef<T> dz, double* acc, index_t j0,
         index_t j1) {
    using V = Vec<T>;
    constexpr int L = V::lanes;
    for (index_t i = 0; i < dy.rows; ++i) {
        // Strided inputs are gathered lane by lane into the same vector math,
        // so the layout never changes the bits.
        const T* d = dy.row(i);
        const index_t ds = dy.col_stride;
        const T* s = A == Activation::identity ? nullptr : saved.row(i);
        const index_t ss = A == Activation::identity ? 1 : saved.col_stride;
        T* out = dz.data ? dz.row(i) : nullptr;
        index_t j = j0;
        for (; j + L <= j1; j += L) {
            const auto v = dz_vec<T, A>(V::load(d + j * ds, ds),
                                        A == Activation::identity ? V::zero() : V::load(s + j * ss, ss), slope);
            if (out) V::store(out + j, v);
            V::accumulate(acc + j, v);
        }
        for (; j < j1; ++j) {
            const T v = dz_one<T, A>(d[j * ds], A == Activation::identity ? T(0) : s[j * ss], slope);
            if (out) out[j] = v;
            acc[j] += static_cast<double>(v);
        }
    }
}

}  // namespace

template <class T>
bool dz_db_avx2(MatrixRef<const T> dy, MatrixRef<const T> saved, Activation act, T slope, MatrixRef<T> dz,
                double* acc, index_t j0, index_t j1) {
    if (dz.data && dz.col_stride != 1 && dz.cols > 1) return false;
    switch (act) {
        case Activation::identity: run<T, Activation::identity>(dy, saved, slope, dz, acc, j0, j1); break;
        case Activation::relu: run<T, Activation::relu>(dy, saved, slope, dz, acc, j0, j1); break;
        case Activation::leaky_relu: run<T, Activation::leaky_relu>(dy, saved, slope, dz, acc, j0, j1); break;
        case Activation::sigmoid: run<T, Activation::sigmoid>(dy, saved, slope, dz, acc, j0, j1); break;
        case Activation::tanh: run<T, Activation::tanh>(dy, saved, slope, dz, acc, j0, j1); break;
        case Activation::gelu: run<T, Activation::gelu>(dy, saved, slope, dz, acc, j0, j1); break;
        case Activation::gelu_tanh: run<T, Activation::gelu_tanh>(dy, saved, slope, dz, acc, j0, j1); break;
        case Activation::silu: run<T, Activation::silu>(dy, saved, slope, dz, acc, j0, j1); break;
    }
    return true;
}

template bool dz_db_avx2<float>(MatrixRef<const float>, MatrixRef<const float>, Activation, float, MatrixRef<float>,
                                double*, index_t, index_t);
template bool dz_db_avx2<double>(MatrixRef<const double>, MatrixRef<const double>, Activation, double,
                                 MatrixRef<double>, double*, index_t, index_t);

}  // namespace fusedprop::layers
