// AVX2 packing where it needs a transpose: B micro-panels from a transposed
// operand (B = W^T, W row-major: each column of B is contiguous in k) and A
// micro-panels from a row-major A (each row contiguous in k). The scalar
// walk of pack.h moves one element at a time; here register transposes move
// whole vectors. Same result, bit for bit.
// Compiled with -mavx2 -mfma; called when the AVX2 or the AVX-512 kernels are
// active (an AVX-512 CPU has AVX2; the panels' widths are parameters).
#include <immintrin.h>

#include <algorithm>

#include "pack.h"

namespace fusedprop::gemm {
namespace {

// The 8 x 8 block of floats at src (row i at src + i * stride; rows R..7
// read as zeros, never touched) transposed: out[c] holds column c, rows 0..7.
//
// Each register starts as two 128-bit halves loaded straight from rows i and
// i + 4 (the load ports do the cross-lane move), so only the in-lane 4 x 4
// transposes are left: 16 shuffles, where the textbook unpack / shuffle /
// permute2f128 sequence needs 24 on the two shuffle pipes.
template <int R>
inline void load_transpose8(const float* src, index_t stride, __m256 (&out)[8]) {
    static_assert(R >= 1 && R <= 8, "1..8 rows");
    auto rows = [&](int i, index_t col) {  // [row i | row i+4], 4 columns from col
        const __m128 lo = i < R ? _mm_loadu_ps(src + i * stride + col) : _mm_setzero_ps();
        const __m128 hi = i + 4 < R ? _mm_loadu_ps(src + (i + 4) * stride + col) : _mm_setzero_ps();
        return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
    };
    for (int half = 0; half < 2; ++half) {  // columns 4 half .. 4 half + 3
        const __m256 r0 = rows(0, 4 * half), r1 = rows(1, 4 * half), r2 = rows(2, 4 * half), r3 = rows(3, 4 * half);
        const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        out[4 * half + 0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
        out[4 * half + 1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        out[4 * half + 2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        out[4 * half + 3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    }
}

// Rows i and i + 2 of a 4-row block of doubles, 2 columns from src: one
// register [row i | row i+2], the cross-lane move done by the loads.
inline __m256d rows_2apart(const double* src, index_t stride, int i) {
    return _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(src + i * stride)),
                                _mm_loadu_pd(src + (i + 2) * stride), 1);
}

// Rows a multiple of 1 KiB apart share few L1 sets (an 8-way set per 4 KiB
// of stride): see below.
template <class T>
inline bool sets_alias(index_t stride) {
    return (stride * static_cast<index_t>(sizeof(T))) % 1024 == 0;
}
// ... and a multiple of 4 KiB apart, all of them in one set.
template <class T>
inline bool one_set(index_t stride) {
    return (stride * static_cast<index_t>(sizeof(T))) % 4096 == 0;
}

}  // namespace

// Why whole cache lines: a panel reads NR columns of B (rows of W) side by
// side. Stepping 8 k across all NR of them touched each 64-byte line twice,
// NR lines apart; when the columns are 4 KiB apart (in_features a multiple
// of 1024 floats) all NR lines fall in one 8-way L1 set, and the second
// touch missed: packing a 1024 x 1024 W took 1.6x as long as it does now.
// So at such strides k goes a line (16 floats, 8 doubles) at a time, and
// each group of columns reads its whole lines before the next group starts.
// Elsewhere the plain order stays (the line order measured ~5% slower at
// 784 floats apart, where every line stays in L1 anyway). The same for the
// A panels below (12 rows). The packed panels are the same either way.

// Columns 8h .. 8h+7 of a kc x NR panel, k = p .. p+7. Forced inline: as a
// lambda called from three loops, GCC made it a call per 8 x 8 block (2-4%
// slower forward passes of small nets).
template <int NR>
[[gnu::always_inline]] inline void panel_block_f32(const float* src, index_t cs, int h, index_t p, float* dst) {
    __m256 col[8];
    load_transpose8<8>(src + (8 * h) * cs + p, cs, col);
    float* d = dst + p * NR + 8 * h;
    for (int c = 0; c < 8; ++c) _mm256_store_ps(d + c * NR, col[c]);
}
// One full kc x NR panel (NR = 16 or 32): column j of the panel is src + j * cs
// (contiguous in k).
template <int NR>
void pack_b_panel_t_f32(const float* src, index_t cs, index_t kc, float* dst) {
    index_t p = 0;
    if (one_set<float>(cs)) {
        // All NR columns in one L1 set: even a line at a time, the loads
        // running ahead into the next group of columns evicted lines before
        // their second use. So one group of 8 columns is walked down all of
        // kc before the next: its lines in flight fill two adjacent sets (8
        // lines each, the set's 8 ways), and each line's second use comes
        // next. Packing a W^T of 1024 columns against staging each column's
        // chunk in a spread-out block first (the previous scheme),
        // interleaved, Zen 4: 1.15-1.2x at 1024 rows, 1.2x at 2048, 1.3-1.4x
        // at 4096, for 16- and 32-wide panels. At other strides, where the
        // columns' lines spread over the sets, this order was no faster
        // (784: 0.9x); nor for doubles (4 columns a group: 0.9x).
        for (int h = 0; h < NR / 8; ++h)
            for (index_t q = 0; q + 8 <= kc; q += 8) panel_block_f32<NR>(src, cs, h, q, dst);
        p = kc / 8 * 8;
    }
    if (sets_alias<float>(cs))
        for (; p + 16 <= kc; p += 16)
            for (int h = 0; h < NR / 8; ++h) {
                panel_block_f32<NR>(src, cs, h, p, dst);
                panel_block_f32<NR>(src, cs, h, p + 8, dst);
            }
    for (; p + 8 <= kc; p += 8)
        for (int h = 0; h < NR / 8; ++h) panel_block_f32<NR>(src, cs, h, p, dst);
    for (; p < kc; ++p)
        for (int j = 0; j < NR; ++j) dst[p * NR + j] = src[j * cs + p];
}
void pack_b_panel_t_f32x16_avx2(const float* src, index_t cs, index_t kc, float* dst) {
    pack_b_panel_t_f32<16>(src, cs, kc, dst);
}
void pack_b_panel_t_f32x32_avx2(const float* src, index_t cs, index_t kc, float* dst) {
    pack_b_panel_t_f32<32>(src, cs, kc, dst);
}

// One full kc x 8 panel of doubles, 2 k at a time: unpacking [row 0 | row 2]
// with [row 1 | row 3] gives 4 columns of a k directly (2 shuffles per 2 k).
// (NR = 8 or 16; a line of k per group of 4 columns, as above.)
template <int NR>
void pack_b_panel_t_f64(const double* src, index_t cs, index_t kc, double* dst) {
    auto block = [&](int h, index_t p) {  // columns 4h .. 4h+3, k = p, p+1
        const double* s = src + (4 * h) * cs + p;
        const __m256d r02 = rows_2apart(s, cs, 0), r13 = rows_2apart(s, cs, 1);
        _mm256_store_pd(dst + p * NR + 4 * h, _mm256_unpacklo_pd(r02, r13));
        _mm256_store_pd(dst + (p + 1) * NR + 4 * h, _mm256_unpackhi_pd(r02, r13));
    };
    index_t p = 0;
    if (sets_alias<double>(cs))
        for (; p + 8 <= kc; p += 8)
            for (int h = 0; h < NR / 4; ++h)
                for (index_t q = 0; q < 8; q += 2) block(h, p + q);
    for (; p + 2 <= kc; p += 2)
        for (int h = 0; h < NR / 4; ++h) block(h, p);
    for (; p < kc; ++p)
        for (int j = 0; j < NR; ++j) dst[p * NR + j] = src[j * cs + p];
}
void pack_b_panel_t_f64x8_avx2(const double* src, index_t cs, index_t kc, double* dst) {
    pack_b_panel_t_f64<8>(src, cs, kc, dst);
}
void pack_b_panel_t_f64x16_avx2(const double* src, index_t cs, index_t kc, double* dst) {
    pack_b_panel_t_f64<16>(src, cs, kc, dst);
}

// One full 6 x kc micro-panel of a row-major A (unit column stride): 8 k at
// a time, 6 rows (+2 zero rows) transposed in registers. Each store but the
// last writes 8 floats at dst + p*6; its 2 extra lanes are overwritten by the
// next store. Nothing is written past the panel.
void pack_a_panel_f32x6_avx2(const float* src, index_t rs, index_t kc, float* dst) {
    index_t p = 0;
    for (; p + 8 <= kc; p += 8) {
        __m256 col[8];
        load_transpose8<6>(src + p, rs, col);  // rows 6, 7 come out as zeros
        float* d = dst + p * 6;
        for (int c = 0; c < 7; ++c) _mm256_storeu_ps(d + c * 6, col[c]);
        // The last column exactly (6 floats): a whole-vector store would spill
        // 2 floats into the next panel, which another thread may be packing.
        _mm_storeu_ps(d + 7 * 6, _mm256_castps256_ps128(col[7]));
        _mm_storel_pi(reinterpret_cast<__m64*>(d + 7 * 6 + 4), _mm256_extractf128_ps(col[7], 1));
    }
    for (; p < kc; ++p)
        for (int i = 0; i < 6; ++i) dst[p * 6 + i] = src[i * rs + p];
}

// The same for doubles, 2 k at a time: rows 0-3 as in the B panel above,
// rows 4-5 with 128-bit unpacks; exact stores.
void pack_a_panel_f64x6_avx2(const double* src, index_t rs, index_t kc, double* dst) {
    index_t p = 0;
    for (; p + 2 <= kc; p += 2) {
        const double* s = src + p;
        const __m256d r02 = rows_2apart(s, rs, 0), r13 = rows_2apart(s, rs, 1);
        const __m128d r4 = _mm_loadu_pd(s + 4 * rs), r5 = _mm_loadu_pd(s + 5 * rs);
        double* d = dst + p * 6;
        _mm256_storeu_pd(d, _mm256_unpacklo_pd(r02, r13));
        _mm_storeu_pd(d + 4, _mm_unpacklo_pd(r4, r5));
        _mm256_storeu_pd(d + 6, _mm256_unpackhi_pd(r02, r13));
        _mm_storeu_pd(d + 10, _mm_unpackhi_pd(r4, r5));
    }
    for (; p < kc; ++p)
        for (int i = 0; i < 6; ++i) dst[p * 6 + i] = src[i * rs + p];
}

// One full 12 x kc micro-panel of a row-major A (the AVX-512 tiles' MR): 8 k
// at a time, rows 0-7 and rows 8-11 transposed in registers; exact stores
// (8 + 4 floats per k), nothing written past the panel. A line of k (16) per
// group of rows at a time: 12 rows 4 KiB apart overflow an 8-way L1 set.
void pack_a_panel_f32x12_avx2(const float* src, index_t rs, index_t kc, float* dst) {
    auto top = [&](index_t p) {  // rows 0-7, k = p .. p+7
        __m256 t[8];
        load_transpose8<8>(src + p, rs, t);
        float* d = dst + p * 12;
        for (int c = 0; c < 8; ++c) _mm256_storeu_ps(d + c * 12, t[c]);
    };
    auto bottom = [&](index_t p) {  // rows 8-11 (lanes 4..7 come out as zeros)
        __m256 b[8];
        load_transpose8<4>(src + 8 * rs + p, rs, b);
        float* d = dst + p * 12 + 8;
        for (int c = 0; c < 8; ++c) _mm_storeu_ps(d + c * 12, _mm256_castps256_ps128(b[c]));
    };
    index_t p = 0;
    for (; sets_alias<float>(rs) && p + 16 <= kc; p += 16) {
        top(p);
        top(p + 8);
        bottom(p);
        bottom(p + 8);
    }
    for (; p + 8 <= kc; p += 8) {
        top(p);
        bottom(p);
    }
    for (; p < kc; ++p)
        for (int i = 0; i < 12; ++i) dst[p * 12 + i] = src[i * rs + p];
}

// The same for doubles, 2 k at a time, rows in groups of 4 as in the B
// panel, a line of k (8) per group at a time.
void pack_a_panel_f64x12_avx2(const double* src, index_t rs, index_t kc, double* dst) {
    auto block = [&](int g, index_t p) {  // rows 4g .. 4g+3, k = p, p+1
        double* d = dst + p * 12;
        const double* s = src + 4 * g * rs + p;
        const __m256d r02 = rows_2apart(s, rs, 0), r13 = rows_2apart(s, rs, 1);
        _mm256_storeu_pd(d + 4 * g, _mm256_unpacklo_pd(r02, r13));
        _mm256_storeu_pd(d + 12 + 4 * g, _mm256_unpackhi_pd(r02, r13));
    };
    index_t p = 0;
    if (sets_alias<double>(rs))
        for (; p + 8 <= kc; p += 8)
            for (int g = 0; g < 3; ++g)
                for (index_t q = 0; q < 8; q += 2) block(g, p + q);
    for (; p + 2 <= kc; p += 2)
        for (int g = 0; g < 3; ++g) block(g, p);
    for (; p < kc; ++p)
        for (int i = 0; i < 12; ++i) dst[p * 12 + i] = src[i * rs + p];
}

}  // namespace fusedprop::gemm
