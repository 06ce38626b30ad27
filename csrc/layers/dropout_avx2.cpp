// Philox4x32-10 on 8 counters at once and the dropout multiply (AVX2).
// Entered only after dropout.cpp has checked the CPU.
#include <immintrin.h>

#include <cstring>

#include "layers/dropout_kernels.h"
#include "math/philox.h"

namespace fusedprop::layers::detail {
namespace {

// (hi, lo) 32-bit halves of a * m for 8 unsigned lanes.
inline void mulhilo(__m256i a, __m256i m, __m256i* hi, __m256i* lo) {
    const __m256i even = _mm256_mul_epu32(a, m);                         // lanes 0, 2, 4, 6 as 64-bit products
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1, 3, 5, 7
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

struct Words {
    __m256i w[4];
};

inline Words philox8(std::uint64_t first_block, DropoutKey key) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // The 8 blocks of a group never straddle a 2^32 boundary (the first is a multiple of 8).
    __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(first_block))), lane);
    __m256i c1 = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(first_block >> 32)));
    __m256i c2 = _mm256_set1_epi32(static_cast<int>(key.step));
    __m256i c3 = _mm256_set1_epi32(static_cast<int>(key.stream));
    std::uint32_t k0 = static_cast<std::uint32_t>(key.seed), k1 = static_cast<std::uint32_t>(key.seed >> 32);
    const __m256i m0 = _mm256_set1_epi32(static_cast<int>(math::detail::kPhiloxM0));
    const __m256i m1 = _mm256_set1_epi32(static_cast<int>(math::detail::kPhiloxM1));
    for (int round = 0; round < 10; ++round) {
        __m256i hi0, lo0, hi1, lo1;
        mulhilo(c0, m0, &hi0, &lo0);
        mulhilo(c2, m1, &hi1, &lo1);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
        c1 = lo1;
        c3 = lo0;
        k0 += math::detail::kPhiloxW0;
        k1 += math::detail::kPhiloxW1;
    }
    return {{c0, c1, c2, c3}};
}

// All-ones where word >= threshold (unsigned), as 32-bit lanes.
inline __m256i keep_mask(__m256i word, __m256i threshold_biased) {
    const __m256i bias = _mm256_set1_epi32(static_cast<int>(0x80000000u));
    const __m256i below = _mm256_cmpgt_epi32(threshold_biased, _mm256_xor_si256(word, bias));
    return _mm256_xor_si256(below, _mm256_set1_epi32(-1));
}

// y = x * (keep ? scale : +0) for the 32 elements of one group at x, y.
inline void group_times_mask(const float* x, float* y, const Words& r, __m256i t, float scale) {
    const __m256 s = _mm256_set1_ps(scale);
    for (int w = 0; w < 4; ++w) {
        const __m256 noise = _mm256_and_ps(_mm256_castsi256_ps(keep_mask(r.w[w], t)), s);  // scale or +0
        _mm256_storeu_ps(y + 8 * w, _mm256_mul_ps(_mm256_loadu_ps(x + 8 * w), noise));
    }
}

inline void group_times_mask(const double* x, double* y, const Words& r, __m256i t, double scale) {
    const __m256d s = _mm256_set1_pd(scale);
    for (int w = 0; w < 4; ++w) {
        const __m256i keep = keep_mask(r.w[w], t);
        const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(keep));
        const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(keep, 1));
        _mm256_storeu_pd(y + 8 * w, _mm256_mul_pd(_mm256_loadu_pd(x + 8 * w), _mm256_and_pd(_mm256_castsi256_pd(lo), s)));
        _mm256_storeu_pd(y + 8 * w + 4,
                         _mm256_mul_pd(_mm256_loadu_pd(x + 8 * w + 4), _mm256_and_pd(_mm256_castsi256_pd(hi), s)));
    }
}

inline __m256i biased(std::uint32_t threshold) { return _mm256_set1_epi32(static_cast<int>(threshold ^ 0x80000000u)); }

template <class T>
void groups(const T* in, T* out, index_t begin, index_t end, std::uint32_t threshold, T scale, DropoutKey key) {
    const __m256i t = biased(threshold);
    for (index_t g = begin; g < end; g += 32)
        group_times_mask(in + g, out + g, philox8(static_cast<std::uint64_t>(g >> 5) << 3, key), t, scale);
}

}  // namespace

void dropout_groups_avx2(const float* in, float* out, index_t begin, index_t end, std::uint32_t threshold,
                         float scale, DropoutKey key) {
    groups(in, out, begin, end, threshold, scale, key);
}

void dropout_groups_avx2(const double* in, double* out, index_t begin, index_t end, std::uint32_t threshold,
                         double scale, DropoutKey key) {
    groups(in, out, begin, end, threshold, scale, key);
}

// The group's elements copied to a zeroed buffer (the others may lie
// outside the tensor), multiplied there as a whole group, copied back.
template <class T>
void dropout_partial_group_avx2(const T* in, T* out, index_t begin, index_t end, std::uint32_t threshold, T scale,
                                DropoutKey key) {
    const index_t g = begin & ~index_t(31);
    const auto bytes = static_cast<std::size_t>(end - begin) * sizeof(T);
    alignas(32) T buf[32] = {};
    std::memcpy(buf + (begin - g), in + begin, bytes);
    group_times_mask(buf, buf, philox8(static_cast<std::uint64_t>(g >> 5) << 3, key), biased(threshold), scale);
    std::memcpy(out + begin, buf + (begin - g), bytes);
}
template void dropout_partial_group_avx2<float>(const float*, float*, index_t, index_t, std::uint32_t, float,
                                                DropoutKey);
template void dropout_partial_group_avx2<double>(const double*, double*, index_t, index_t, std::uint32_t, double,
                                                 DropoutKey);

}  // namespace fusedprop::layers::detail
