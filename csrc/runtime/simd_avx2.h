// One YMM register of floats or doubles and the operations the AVX2 kernels
// use on it, so a kernel is written once for both dtypes. Include only from
// translation units compiled with -mavx2 -mfma.
#pragma once

#include <immintrin.h>

#include "runtime/isa_tag.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::simd {
inline namespace FUSEDPROP_ISA_TAG {

template <class T>
struct Avx2;

template <>
struct Avx2<float> {
    using reg = __m256;
    static constexpr index_t width = 8;
    static reg load(const float* p) { return _mm256_loadu_ps(p); }
    static reg load_aligned(const float* p) { return _mm256_load_ps(p); }  // 32-byte aligned p
    static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
    static __m256i mask(index_t n) {  // first n lanes on
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static reg load(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
    static void store(float* p, __m256i m, reg v) { _mm256_maskstore_ps(p, m, v); }
    static reg zero() { return _mm256_setzero_ps(); }
    static reg set1(float v) { return _mm256_set1_ps(v); }
    static reg broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
    static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
    static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }  // a * b + c
    static reg le0(reg a) { return _mm256_cmp_ps(a, zero(), _CMP_LE_OQ); }
    static reg gt0(reg a) { return _mm256_cmp_ps(a, zero(), _CMP_GT_OQ); }
    static reg andnot(reg m, reg a) { return _mm256_andnot_ps(m, a); }
    static reg blend(reg f, reg t, reg m) { return _mm256_blendv_ps(f, t, m); }
};

template <>
struct Avx2<double> {
    using reg = __m256d;
    static constexpr index_t width = 4;
    static reg load(const double* p) { return _mm256_loadu_pd(p); }
    static reg load_aligned(const double* p) { return _mm256_load_pd(p); }
    static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
    static __m256i mask(index_t n) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static reg load(const double* p, __m256i m) { return _mm256_maskload_pd(p, m); }
    static void store(double* p, __m256i m, reg v) { _mm256_maskstore_pd(p, m, v); }
    static reg zero() { return _mm256_setzero_pd(); }
    static reg set1(double v) { return _mm256_set1_pd(v); }
    static reg broadcast(const double* p) { return _mm256_broadcast_sd(p); }
    static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
    static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
    static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
    static reg le0(reg a) { return _mm256_cmp_pd(a, zero(), _CMP_LE_OQ); }
    static reg gt0(reg a) { return _mm256_cmp_pd(a, zero(), _CMP_GT_OQ); }
    static reg andnot(reg m, reg a) { return _mm256_andnot_pd(m, a); }
    static reg blend(reg f, reg t, reg m) { return _mm256_blendv_pd(f, t, m); }
};

}  // namespace FUSEDPROP_ISA_TAG
}  // namespace fusedprop::simd
