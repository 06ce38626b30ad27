// The small-batch kernels (skinny.h) on 256-bit vectors, both dtypes
// through simd::Avx2<T>: included by skinny_avx2.cpp (-mavx2 -mfma, 16
// vector registers) and skinny_avx512.cpp (the AVX-512 flags, 32 of them),
// each entered only after the run-time CPU check (skinny.cpp).
//
// nt, the dot-product form: R rows of A against C rows of W, R * C
// accumulators (one per output) gathering the lanes of k, reduced in
// registers of L (L = 8 f32, 4 f64 lanes) by one transpose-and-add tree in
// lane order (row of A, then column); the epilogue runs on those registers.
// With 16 registers the blocks are 1 x L and 2 x L/2 (L accumulators); with
// 32, four rows against four columns (16 accumulators, 8 loads for 16 FMAs)
// where four rows remain. Every output is summed the same way in every
// block shape, so the two builds give the same bits.
//
// nn, the axpy form, in blocks of NV = 8 (one row of A) or 4 (two rows)
// vectors of C: each k step loads NV vectors of a row of B and broadcasts
// a(i, p).
#pragma once

#include <immintrin.h>

#include <cassert>

#include "math/activation_avx2.h"
#include "runtime/simd_avx2.h"
#include "runtime/isa_tag.h"
#include "skinny.h"

namespace fusedprop::gemm::skinny_ymm {
// Tagged: skinny_avx2.cpp and skinny_avx512.cpp both include this file.
inline namespace FUSEDPROP_ISA_TAG {

using math::Activation;

// 32 vector registers (an AVX-512 build): room for 4 x 4 nt blocks.
#if defined(__AVX512VL__)
inline constexpr bool kFourRowBlocks = true;
#else
inline constexpr bool kFourRowBlocks = false;
#endif

// Sums each of L registers across its lanes: result lane q = sum of acc[q],
// added as ((0+1)+(2+3)) + ((4+5)+(6+7)) (f32) or (0+1)+(2+3) (f64).
inline __m256 reduce_lanes(const __m256* acc) {
    const __m256 t0 = _mm256_hadd_ps(acc[0], acc[1]), t1 = _mm256_hadd_ps(acc[2], acc[3]);
    const __m256 t2 = _mm256_hadd_ps(acc[4], acc[5]), t3 = _mm256_hadd_ps(acc[6], acc[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    // u0 = [s0 s1 s2 s3 | h0 h1 h2 h3] for acc 0-3 (s: low-half sums, h: high-half)
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}
inline __m256d reduce_lanes(const __m256d* acc) {
    const __m256d t0 = _mm256_hadd_pd(acc[0], acc[1]), t1 = _mm256_hadd_pd(acc[2], acc[3]);
    // t0 = [a0 01, a1 01, a0 23, a1 23]
    return _mm256_add_pd(_mm256_permute2f128_pd(t0, t1, 0x20), _mm256_permute2f128_pd(t0, t1, 0x31));
}

// The epilogue on L results; out[q] is output q of the block, in lane order.
// bias_lanes holds the bias of each lane's column (or nullptr).
template <class T, Activation A>
void finish(typename simd::Avx2<T>::reg v, const T* bias_lanes, T* pre, T* out, T slope) {
    using V = simd::Avx2<T>;
    if (bias_lanes != nullptr) v = V::add(v, V::load(bias_lanes));
    if (pre != nullptr) V::store(pre, v);
    if constexpr (A != Activation::identity) v = math::avx2::forward<A>(v, slope);
    V::store(out, v);
}

// The end of an R x C nt block: its R * C accumulators reduced in groups of
// L (output r * C + c in lane order), the epilogue, and the stores of the
// valid rows x cols outputs (and Z) at (i, j). Forced inline: called out of
// line, the accumulators went through memory (a one-row F.linear 3-4% slower).
template <class T, int R, int C, Activation A>
[[gnu::always_inline]] inline void finish_block(const SkinnyArgs<T>& p, const typename simd::Avx2<T>::reg* acc, index_t i, index_t rows, index_t j,
                  index_t cols) {
    constexpr int L = static_cast<int>(simd::Avx2<T>::width), N = R * C;
    alignas(32) T bias_lanes[N], pre[N], out[N];
    if (p.bias != nullptr)
        for (int q = 0; q < N; ++q) bias_lanes[q] = p.bias[j + (q % C < cols ? q % C : 0)];
    for (int g = 0; g < N; g += L)
        finish<T, A>(reduce_lanes(acc + g), p.bias != nullptr ? bias_lanes + g : nullptr,
                     p.z != nullptr ? pre + g : nullptr, out + g, p.slope);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            p.c[(i + r) * p.rs_c + j + c] = out[r * C + c];
            if (p.z != nullptr) p.z[(i + r) * p.rs_z + j + c] = pre[r * C + c];
        }
}

// One nt block: R rows of A (rows of them valid, from row i) against C rows
// of W (cols of them valid, from column j of C). R * C accumulators, one per
// output, each reduced by reduce_lanes in groups of L: the value of an
// output never depends on R, C or its place in the block.
template <class T, int R, int C, Activation A>
void nt_block(const SkinnyArgs<T>& p, index_t i, index_t rows, index_t j, index_t cols) {
    using V = simd::Avx2<T>;
    constexpr int L = static_cast<int>(V::width), N = R * C;
    static_assert(N % L == 0, "whole registers of outputs");
    const T* x[R];
    const T* w[C];
    for (int r = 0; r < R; ++r) x[r] = p.a + (i + (r < rows ? r : 0)) * p.rs_a;
    for (int c = 0; c < C; ++c) w[c] = p.b + (j + (c < cols ? c : 0)) * p.ld_b;

    typename V::reg acc[N];
    for (auto& v : acc) v = V::zero();
    const index_t k = p.k, k_full = k - k % L;
    index_t l = 0;
    for (; l < k_full; l += L) {
        typename V::reg xv[R];
        for (int r = 0; r < R; ++r) xv[r] = V::load(x[r] + l);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
            const auto wv = V::load(w[c] + l);
            for (int r = 0; r < R; ++r) acc[r * C + c] = V::fma(xv[r], wv, acc[r * C + c]);
        }
    }
    if (l < k) {  // the last k % L lanes: masked loads read zeros past the end
        const __m256i m = V::mask(k - l);
        typename V::reg xv[R];
        for (int r = 0; r < R; ++r) xv[r] = V::load(x[r] + l, m);
        for (int c = 0; c < C; ++c) {
            const auto wv = V::load(w[c] + l, m);
            for (int r = 0; r < R; ++r) acc[r * C + c] = V::fma(xv[r], wv, acc[r * C + c]);
        }
    }

    finish_block<T, R, C, A>(p, acc, i, rows, j, cols);
}

// nt on W's rows interleaved (p.interleaved, pack_nt_rows): 1 x L blocks,
// each reading its L rows of W as one stream. Each output is summed as
// nt_block sums it, so the bits are those of W's own layout. Not inlined into
// skinny_nt: together they made the compiler spill the loops' pointers there.
template <class T, Activation A>
__attribute__((noinline)) void skinny_nt_interleaved(const SkinnyArgs<T>& p) {
    using V = simd::Avx2<T>;
    constexpr index_t L = V::width;
    static_assert(L == kNtLanes<T>, "pack_nt_rows lays W out for these vectors");
    const index_t k = p.k, k_full = k - k % L, k_pad = nt_rows_k_pad<T>(k);
    const __m256i tail = V::mask(k - k_full);
    for (index_t i = 0; i < p.m; ++i) {
        const T* x = p.a + i * p.rs_a;
        for (index_t j = p.j0; j < p.j1; j += L) {
            assert(j % L == 0);  // skinny_gemm's column chunks are whole groups
            const T* w = p.b + j * k_pad;  // rows j .. j + L - 1
            typename V::reg acc[L];
            for (auto& v : acc) v = V::zero();
            index_t l = 0;
            for (; l < k_full; l += L, w += L * L) {
                const auto xv = V::load(x + l);
                for (int c = 0; c < L; ++c) acc[c] = V::fma(xv, V::load(w + c * L), acc[c]);
            }
            if (l < k) {
                const auto xv = V::load(x + l, tail);
                for (int c = 0; c < L; ++c) acc[c] = V::fma(xv, V::load(w + c * L, tail), acc[c]);
            }
            finish_block<T, 1, L, A>(p, acc, i, 1, j, std::min(L, p.j1 - j));
        }
    }
}

template <class T, Activation A>
void skinny_nt(const SkinnyArgs<T>& p) {
    assert(p.k > 0 && p.a != nullptr && p.b != nullptr && p.c != nullptr);
    if (p.interleaved) return skinny_nt_interleaved<T, A>(p);
    constexpr index_t L = simd::Avx2<T>::width, C2 = L / 2, C4 = 4;
    const index_t m4 = kFourRowBlocks ? p.m - p.m % 4 : 0;
    for (index_t j = p.j0; j < p.j1; j += L) {  // L rows of W, in L1 for every row of A
        const index_t cols = std::min(L, p.j1 - j);
        // Four rows of A against four of W (8 loads for 16 FMAs), four
        // rows of W at a time in L1 while the rows of A stream past.
        if constexpr (kFourRowBlocks)
            for (index_t jj = j; jj < j + cols; jj += C4)
                for (index_t i = 0; i < m4; i += 4)
                    nt_block<T, 4, 4, A>(p, i, 4, jj, std::min(C4, j + cols - jj));
        index_t i = m4;
        for (; i + 2 <= p.m; i += 2) {
            nt_block<T, 2, C2, A>(p, i, 2, j, std::min(C2, cols));
            if (cols > C2) nt_block<T, 2, C2, A>(p, i, 2, j + C2, cols - C2);
        }
        if (i < p.m) nt_block<T, 1, L, A>(p, i, 1, j, cols);
    }
}

// One nn block: R rows of A, NV vectors of columns of C from j (cols valid).
template <class T, int R, int NV, Activation A>
void nn_block(const SkinnyArgs<T>& p, index_t i, index_t rows, index_t j, index_t cols) {
    using V = simd::Avx2<T>;
    constexpr index_t L = V::width;
    const T* a[R];
    for (int r = 0; r < R; ++r) a[r] = p.a + (i + (r < rows ? r : 0)) * p.rs_a;
    __m256i mask[NV];
    for (int v = 0; v < NV; ++v) mask[v] = V::mask(std::max<index_t>(0, std::min(L, cols - v * L)));
    const bool full = cols == NV * L;

    typename V::reg acc[R][NV];
    for (auto& row : acc)
        for (auto& v : row) v = V::zero();
    const T* b = p.b + j;
    for (index_t l = 0; l < p.k; ++l, b += p.ld_b) {
        typename V::reg av[R];
        for (int r = 0; r < R; ++r) av[r] = V::set1(a[r][l * p.cs_a]);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
            const auto bv = full ? V::load(b + v * L) : V::load(b + v * L, mask[v]);
            for (int r = 0; r < R; ++r) acc[r][v] = V::fma(av[r], bv, acc[r][v]);
        }
    }

    for (int r = 0; r < rows; ++r) {
        T* c = p.c + (i + r) * p.rs_c + j;
        T* z = p.z != nullptr ? p.z + (i + r) * p.rs_z + j : nullptr;
        for (int v = 0; v < NV && v * L < cols; ++v) {
            auto x = acc[r][v];
            if (p.bias != nullptr) x = V::add(x, V::load(p.bias + j + v * L, mask[v]));
            if (z != nullptr) V::store(z + v * L, mask[v], x);
            if constexpr (A != Activation::identity) x = math::avx2::forward<A>(x, p.slope);
            V::store(c + v * L, mask[v], x);
        }
    }
}

template <class T, Activation A>
void skinny_nn(const SkinnyArgs<T>& p) {
    assert(p.k > 0 && p.a != nullptr && p.b != nullptr && p.c != nullptr);
    constexpr index_t L = simd::Avx2<T>::width, W1 = 8 * L, W2 = 4 * L;
    for (index_t j = p.j0; j < p.j1; j += W1) {
        const index_t cols = std::min(W1, p.j1 - j);
        index_t i = 0;
        for (; i + 2 <= p.m; i += 2) {
            nn_block<T, 2, 4, A>(p, i, 2, j, std::min(W2, cols));
            if (cols > W2) nn_block<T, 2, 4, A>(p, i, 2, j + W2, cols - W2);
        }
        if (i < p.m) nn_block<T, 1, 8, A>(p, i, 1, j, cols);
    }
}

// One entry per layout: the activation is a template parameter inside.
template <class T, template <class, Activation> class K>
void by_activation(const SkinnyArgs<T>& p) {
    switch (p.act) {
        case Activation::identity: return K<T, Activation::identity>::run(p);
        case Activation::relu: return K<T, Activation::relu>::run(p);
        case Activation::leaky_relu: return K<T, Activation::leaky_relu>::run(p);
        case Activation::sigmoid: return K<T, Activation::sigmoid>::run(p);
        case Activation::tanh: return K<T, Activation::tanh>::run(p);
        case Activation::gelu: return K<T, Activation::gelu>::run(p);
        case Activation::gelu_tanh: return K<T, Activation::gelu_tanh>::run(p);
        case Activation::silu: return K<T, Activation::silu>::run(p);
    }
}
template <class T, Activation A>
struct Nt {
    static void run(const SkinnyArgs<T>& p) { skinny_nt<T, A>(p); }
};
template <class T, Activation A>
struct Nn {
    static void run(const SkinnyArgs<T>& p) { skinny_nn<T, A>(p); }
};

// The SkinnyKernels table of this build (skinny.h).
template <class T>
constexpr SkinnyKernels<T> table() {
    return {&by_activation<T, Nt>, &by_activation<T, Nn>, kFourRowBlocks};
}

}  // namespace FUSEDPROP_ISA_TAG
}  // namespace fusedprop::gemm::skinny_ymm
