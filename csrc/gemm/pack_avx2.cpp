// AVX2 packing of B micro-panels from a transposed operand (B = W^T, W
// row-major: each column of B is contiguous in k). The scalar walk of
// pack.h reads NR columns one element at a time; here 8x8 (f32) and 4x4
// (f64) register transposes move whole vectors. Same result, bit for bit.
// Compiled with -mavx2 -mfma; called only when the AVX2 kernels are active.
#include <immintrin.h>

#include "pack.h"

namespace fusedprop::gemm {
namespace {

// 8 rows of 8 floats -> their transpose, in registers.
inline void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5, __m256& r6,
                       __m256& r7) {
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r0 = _mm256_permute2f128_ps(s0, s4, 0x20);
    r1 = _mm256_permute2f128_ps(s1, s5, 0x20);
    r2 = _mm256_permute2f128_ps(s2, s6, 0x20);
    r3 = _mm256_permute2f128_ps(s3, s7, 0x20);
    r4 = _mm256_permute2f128_ps(s0, s4, 0x31);
    r5 = _mm256_permute2f128_ps(s1, s5, 0x31);
    r6 = _mm256_permute2f128_ps(s2, s6, 0x31);
    r7 = _mm256_permute2f128_ps(s3, s7, 0x31);
}

}  // namespace

// One full kc x 16 panel: column j of the panel is src + j * cs (contiguous in k).
void pack_b_panel_t_f32x16_avx2(const float* src, index_t cs, index_t kc, float* dst) {
    index_t p = 0;
    for (; p + 8 <= kc; p += 8) {
        for (int h = 0; h < 2; ++h) {  // columns 8h .. 8h+7
            const float* s = src + (8 * h) * cs + p;
            __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + cs), r2 = _mm256_loadu_ps(s + 2 * cs),
                   r3 = _mm256_loadu_ps(s + 3 * cs), r4 = _mm256_loadu_ps(s + 4 * cs),
                   r5 = _mm256_loadu_ps(s + 5 * cs), r6 = _mm256_loadu_ps(s + 6 * cs),
                   r7 = _mm256_loadu_ps(s + 7 * cs);
            transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
            float* d = dst + p * 16 + 8 * h;
            _mm256_store_ps(d + 0 * 16, r0);
            _mm256_store_ps(d + 1 * 16, r1);
            _mm256_store_ps(d + 2 * 16, r2);
            _mm256_store_ps(d + 3 * 16, r3);
            _mm256_store_ps(d + 4 * 16, r4);
            _mm256_store_ps(d + 5 * 16, r5);
            _mm256_store_ps(d + 6 * 16, r6);
            _mm256_store_ps(d + 7 * 16, r7);
        }
    }
    for (; p < kc; ++p)
        for (int j = 0; j < 16; ++j) dst[p * 16 + j] = src[j * cs + p];
}

// One full kc x 8 panel of doubles.
void pack_b_panel_t_f64x8_avx2(const double* src, index_t cs, index_t kc, double* dst) {
    index_t p = 0;
    for (; p + 4 <= kc; p += 4) {
        for (int h = 0; h < 2; ++h) {  // columns 4h .. 4h+3
            const double* s = src + (4 * h) * cs + p;
            __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + cs), r2 = _mm256_loadu_pd(s + 2 * cs),
                    r3 = _mm256_loadu_pd(s + 3 * cs);
            __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
            __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
            double* d = dst + p * 8 + 4 * h;
            _mm256_store_pd(d + 0 * 8, _mm256_permute2f128_pd(t0, t2, 0x20));
            _mm256_store_pd(d + 1 * 8, _mm256_permute2f128_pd(t1, t3, 0x20));
            _mm256_store_pd(d + 2 * 8, _mm256_permute2f128_pd(t0, t2, 0x31));
            _mm256_store_pd(d + 3 * 8, _mm256_permute2f128_pd(t1, t3, 0x31));
        }
    }
    for (; p < kc; ++p)
        for (int j = 0; j < 8; ++j) dst[p * 8 + j] = src[j * cs + p];
}

}  // namespace fusedprop::gemm

namespace fusedprop::gemm {

// One full 6 x kc micro-panel of a row-major A (unit column stride): 8 k at
// a time, 6 rows (+2 zero rows) transposed in registers. Each store writes
// 8 floats at dst + p*6; the 2 extra lanes are overwritten by the next store,
// or land in the next panel (packed after this one) or the buffer's slack:
// callers allocate 8 extra elements.
void pack_a_panel_f32x6_avx2(const float* src, index_t rs, index_t kc, float* dst) {
    index_t p = 0;
    const __m256 zero = _mm256_setzero_ps();
    for (; p + 8 <= kc; p += 8) {
        const float* s = src + p;
        __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + rs), r2 = _mm256_loadu_ps(s + 2 * rs),
               r3 = _mm256_loadu_ps(s + 3 * rs), r4 = _mm256_loadu_ps(s + 4 * rs), r5 = _mm256_loadu_ps(s + 5 * rs),
               r6 = zero, r7 = zero;
        transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
        float* d = dst + p * 6;
        _mm256_storeu_ps(d + 0 * 6, r0);
        _mm256_storeu_ps(d + 1 * 6, r1);
        _mm256_storeu_ps(d + 2 * 6, r2);
        _mm256_storeu_ps(d + 3 * 6, r3);
        _mm256_storeu_ps(d + 4 * 6, r4);
        _mm256_storeu_ps(d + 5 * 6, r5);
        _mm256_storeu_ps(d + 6 * 6, r6);
        _mm256_storeu_ps(d + 7 * 6, r7);
    }
    for (; p < kc; ++p)
        for (int i = 0; i < 6; ++i) dst[p * 6 + i] = src[i * rs + p];
}

// The same for doubles, 4 k at a time: rows 0-3 and rows 4-5 transposed
// separately; exact stores (no slack needed).
void pack_a_panel_f64x6_avx2(const double* src, index_t rs, index_t kc, double* dst) {
    index_t p = 0;
    for (; p + 4 <= kc; p += 4) {
        const double* s = src + p;
        __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + rs), r2 = _mm256_loadu_pd(s + 2 * rs),
                r3 = _mm256_loadu_pd(s + 3 * rs), r4 = _mm256_loadu_pd(s + 4 * rs), r5 = _mm256_loadu_pd(s + 5 * rs);
        __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
        __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
        __m256d u0 = _mm256_unpacklo_pd(r4, r5), u1 = _mm256_unpackhi_pd(r4, r5);  // (4,5) pairs for k 0,2 | 1,3
        double* d = dst + p * 6;
        _mm256_storeu_pd(d + 0 * 6, _mm256_permute2f128_pd(t0, t2, 0x20));
        _mm_storeu_pd(d + 0 * 6 + 4, _mm256_castpd256_pd128(u0));
        _mm256_storeu_pd(d + 1 * 6, _mm256_permute2f128_pd(t1, t3, 0x20));
        _mm_storeu_pd(d + 1 * 6 + 4, _mm256_castpd256_pd128(u1));
        _mm256_storeu_pd(d + 2 * 6, _mm256_permute2f128_pd(t0, t2, 0x31));
        _mm_storeu_pd(d + 2 * 6 + 4, _mm256_extractf128_pd(u0, 1));
        _mm256_storeu_pd(d + 3 * 6, _mm256_permute2f128_pd(t1, t3, 0x31));
        _mm_storeu_pd(d + 3 * 6 + 4, _mm256_extractf128_pd(u1, 1));
    }
    for (; p < kc; ++p)
        for (int i = 0; i < 6; ++i) dst[p * 6 + i] = src[i * rs + p];
}

}  // namespace fusedprop::gemm
