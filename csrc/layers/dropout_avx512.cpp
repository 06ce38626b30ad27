// Philox4x32-10 on 16 counters at once (two groups of 32 elements, see
// dropout.h) and the dropout multiply (AVX-512 F+DQ). Entered only after
// dropout.cpp has checked the CPU and the OS.
#include "runtime/immintrin_avx512.h"  // first: see there why

#include "layers/dropout_kernels.h"
#include "math/philox.h"

namespace fusedprop::layers::detail {
namespace {

inline void mulhilo(__m512i a, __m512i m, __m512i* hi, __m512i* lo) {
    const __m512i even = _mm512_mul_epu32(a, m);
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
    *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

// Lanes 0-7: the 8 blocks of group g, lanes 8-15: those of group g + 1
// (blocks 8g .. 8g + 15, which the caller has checked share their high word).
struct Words {
    __m512i w[4];
};

inline Words philox16(std::uint64_t first_block, DropoutKey key) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(first_block))), lane);
    __m512i c1 = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(first_block >> 32)));
    __m512i c2 = _mm512_set1_epi32(static_cast<int>(key.step));
    __m512i c3 = _mm512_set1_epi32(static_cast<int>(key.stream));
    std::uint32_t k0 = static_cast<std::uint32_t>(key.seed), k1 = static_cast<std::uint32_t>(key.seed >> 32);
    const __m512i m0 = _mm512_set1_epi32(static_cast<int>(math::detail::kPhiloxM0));
    const __m512i m1 = _mm512_set1_epi32(static_cast<int>(math::detail::kPhiloxM1));
    for (int round = 0; round < 10; ++round) {
        __m512i hi0, lo0, hi1, lo1;
        mulhilo(c0, m0, &hi0, &lo0);
        mulhilo(c2, m1, &hi1, &lo1);
        c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int>(k0)));
        c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int>(k1)));
        c1 = lo1;
        c3 = lo0;
        k0 += math::detail::kPhiloxW0;
        k1 += math::detail::kPhiloxW1;
    }
    return {{c0, c1, c2, c3}};
}

}  // namespace

void dropout_group_pairs_avx512(const float* in, float* out, index_t begin, index_t end, std::uint32_t threshold,
                                float scale, DropoutKey key) {
    const __m512i t = _mm512_set1_epi32(static_cast<int>(threshold));
    const __m512 s = _mm512_set1_ps(scale);
    for (index_t g = begin; g < end; g += 64) {
        const Words r = philox16(static_cast<std::uint64_t>(g >> 5) << 3, key);
        for (int w = 0; w < 4; ++w) {
            // A multiply by scale or +0 (not a zeroing mask): NaN stays NaN, -x gives -0, as the portable path.
            const __m512 noise = _mm512_maskz_mov_ps(_mm512_cmpge_epu32_mask(r.w[w], t), s);
            const float* x0 = in + g + 8 * w;
            const __m512 x = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(x0)), _mm256_loadu_ps(x0 + 32), 1);
            const __m512 y = _mm512_mul_ps(x, noise);
            _mm256_storeu_ps(out + g + 8 * w, _mm512_castps512_ps256(y));
            _mm256_storeu_ps(out + g + 32 + 8 * w, _mm512_extractf32x8_ps(y, 1));
        }
    }
}

void dropout_group_pairs_avx512(const double* in, double* out, index_t begin, index_t end, std::uint32_t threshold,
                                double scale, DropoutKey key) {
    const __m512i t = _mm512_set1_epi32(static_cast<int>(threshold));
    const __m512d s = _mm512_set1_pd(scale);
    for (index_t g = begin; g < end; g += 64) {
        const Words r = philox16(static_cast<std::uint64_t>(g >> 5) << 3, key);
        for (int w = 0; w < 4; ++w) {
            const __mmask16 keep = _mm512_cmpge_epu32_mask(r.w[w], t);
            const index_t lo = g + 8 * w, hi = g + 32 + 8 * w;
            _mm512_storeu_pd(out + lo, _mm512_mul_pd(_mm512_loadu_pd(in + lo),
                                                     _mm512_maskz_mov_pd(static_cast<__mmask8>(keep), s)));
            _mm512_storeu_pd(out + hi, _mm512_mul_pd(_mm512_loadu_pd(in + hi),
                                                     _mm512_maskz_mov_pd(static_cast<__mmask8>(keep >> 8), s)));
        }
    }
}

}  // namespace fusedprop::layers::detail
