// f32 microkernel, 6 x 16 tile, AVX2 + FMA (compiled with -mavx2 -mfma).
//
// Registers (16 YMM on x86-64): 12 accumulators (6 rows x 2 vectors of 8
// floats), 2 for the B row, 1 for the broadcast A element: 15 in use.
// Per k step: 2 aligned B loads, 6 broadcasts, 12 FMAs; Zen 3 issues 2 FMAs
// per cycle with latency 4, so 12 independent chains keep both pipes busy.
// Contract and packed layout: ukernel.h.
#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "layers/activation_avx2.h"
#include "ukernel.h"

namespace fusedprop::gemm {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

template <layers::Activation A>
void ukernel_f32_6x16_avx2(const UkernelArgs<float>& p) {
    assert(p.k >= 0);
    assert(p.k == 0 || (p.a != nullptr && p.b != nullptr));
    assert(p.k == 0 || (reinterpret_cast<std::uintptr_t>(p.b) % 32) == 0);
    assert(p.c != nullptr);

    float* c = p.c;
    const index_t rs = p.rs_c;
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * rs), _MM_HINT_T0);

    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

    const float* a = p.a;
    const float* b = p.b;
    index_t k = p.k;
#define FP_STEP(off_a, off_b)                                                        \
    {                                                                                \
        const __m256 b0 = _mm256_load_ps(b + (off_b));                               \
        const __m256 b1 = _mm256_load_ps(b + (off_b) + 8);                           \
        __m256 ai = _mm256_broadcast_ss(a + (off_a) + 0);                            \
        c00 = _mm256_fmadd_ps(ai, b0, c00);                                          \
        c01 = _mm256_fmadd_ps(ai, b1, c01);                                          \
        ai = _mm256_broadcast_ss(a + (off_a) + 1);                                   \
        c10 = _mm256_fmadd_ps(ai, b0, c10);                                          \
        c11 = _mm256_fmadd_ps(ai, b1, c11);                                          \
        ai = _mm256_broadcast_ss(a + (off_a) + 2);                                   \
        c20 = _mm256_fmadd_ps(ai, b0, c20);                                          \
        c21 = _mm256_fmadd_ps(ai, b1, c21);                                          \
        ai = _mm256_broadcast_ss(a + (off_a) + 3);                                   \
        c30 = _mm256_fmadd_ps(ai, b0, c30);                                          \
        c31 = _mm256_fmadd_ps(ai, b1, c31);                                          \
        ai = _mm256_broadcast_ss(a + (off_a) + 4);                                   \
        c40 = _mm256_fmadd_ps(ai, b0, c40);                                          \
        c41 = _mm256_fmadd_ps(ai, b1, c41);                                          \
        ai = _mm256_broadcast_ss(a + (off_a) + 5);                                   \
        c50 = _mm256_fmadd_ps(ai, b0, c50);                                          \
        c51 = _mm256_fmadd_ps(ai, b1, c51);                                          \
    }
    for (; k >= 4; k -= 4) {
        _mm_prefetch(reinterpret_cast<const char*>(a + 4 * kMR * 8), _MM_HINT_T0);
        FP_STEP(0, 0)
        FP_STEP(kMR, kNR)
        FP_STEP(2 * kMR, 2 * kNR)
        FP_STEP(3 * kMR, 3 * kNR)
        a += 4 * kMR;
        b += 4 * kNR;
    }
    for (; k > 0; --k) {
        FP_STEP(0, 0)
        a += kMR;
        b += kNR;
    }
#undef FP_STEP

    __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (p.accumulate) {
#pragma GCC unroll 6
        for (int i = 0; i < kMR; ++i) {
            acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(c + i * rs));
            acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(c + i * rs + 8));
        }
    }
    if (p.last) {
        if (p.bias != nullptr) {
            const __m256 bias0 = _mm256_loadu_ps(p.bias), bias1 = _mm256_loadu_ps(p.bias + 8);
#pragma GCC unroll 6
            for (int i = 0; i < kMR; ++i) {
                acc[i][0] = _mm256_add_ps(acc[i][0], bias0);
                acc[i][1] = _mm256_add_ps(acc[i][1], bias1);
            }
        }
        if (p.z != nullptr) {
#pragma GCC unroll 6
            for (int i = 0; i < kMR; ++i) {
                _mm256_storeu_ps(p.z + i * p.rs_z, acc[i][0]);
                _mm256_storeu_ps(p.z + i * p.rs_z + 8, acc[i][1]);
            }
        }
        if constexpr (A != layers::Activation::identity) {
#pragma GCC unroll 6
            for (int i = 0; i < kMR; ++i) {
                acc[i][0] = layers::avx2::forward<A>(acc[i][0], p.slope);
                acc[i][1] = layers::avx2::forward<A>(acc[i][1], p.slope);
            }
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
        _mm256_storeu_ps(c + i * rs, acc[i][0]);
        _mm256_storeu_ps(c + i * rs + 8, acc[i][1]);
    }
}

}  // namespace

const UkernelTable<float> kUkernelF32Avx2 = {kMR, kNR, "f32_6x16_avx2",
                                             FUSEDPROP_UKERNEL_TABLE(ukernel_f32_6x16_avx2)};

}  // namespace fusedprop::gemm
