// The AVX-512 microkernels (include only from translation units compiled
// with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma; the *_avx512.cpp
// files instantiate them). Contract and packed layout: ukernel.h.
//
// One template over the dtype, the tile's rows MR and its width in ZMM
// vectors NV (NR = NV * 16 floats or NV * 8 doubles) serves every tile:
//
//   ukernel_avx512<T, MR, NV, R, A>   the first R <= MR rows of the tile (R =
//                                     MR: the full tile; R < MR: the rows
//                                     table, so a batch of 1-11 rows costs R
//                                     rows of FMAs, not MR). Registers (32
//                                     ZMM): R x NV accumulators, NV for the B
//                                     row, one for the broadcast A element.
//   write_back<T, R, NV, A>(acc, p)   the epilogue for R rows of accumulators
//                                     while they are in registers: + C,
//                                     + bias, Z, act, store.
//
// Measured on the Sapphire Rapids development machine (2 FMA pipes of 512
// bits, latency 4: 8 independent chains keep both busy; see config.h).
// Written with intrinsics: GCC keeps all 24 accumulators in registers (no
// spills in the k loop, checked in the disassembly). The 12x32 k loop runs at
// 180-188 GFLOP/s f32 (of a 215-228 register-only peak) on L1/L2-resident
// panels; a hand-written asm loop ran 184-191 (within the noise, not worth
// the asm) and one with embedded-broadcast FMAs ({1to16}, no broadcast
// register) 172. Partial panels (f32, same setting): 1, 2, 3, 4, 8 rows at
// 47-55, 75-83, 104, 152, 188 GFLOP/s: a 3-row panel costs 0.45 of a full
// tile's time, not 1.0 as on a scratch tile.
#pragma once

// First: see there why (the *_avx512.cpp files include this header first).
#include "runtime/immintrin_avx512.h"

#include <cassert>
#include <cstdint>

#include "math/activation_avx2.h"
#include "ukernel.h"

namespace fusedprop::gemm::avx512 {

// One ZMM register of floats or doubles: only what the kernels use.
template <class T>
struct Zmm;

template <>
struct Zmm<float> {
    using reg = __m512;
    static constexpr index_t width = 16;
    static reg load(const float* p) { return _mm512_loadu_ps(p); }
    static reg load_aligned(const float* p) { return _mm512_load_ps(p); }  // 64-byte aligned p
    static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
    static reg zero() { return _mm512_setzero_ps(); }
    static reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
    static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
    static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }  // a * b + c
    // The activation runs on the two 256-bit halves (math::avx2::forward):
    // one implementation of every activation for both vector widths. The
    // halves come out through the zero-masked extract (all lanes kept, the
    // same instruction): GCC 12 warns of an uninitialized source in the
    // casts, whose "undefined" operand it sees through inlining.
    //
    // Except relu and leaky_relu, a compare and a masked move in one ZMM
    // (activation_avx2.h's blends, the same bits: NaN and -0 stay), not 7
    // instructions a vector through the halves: on short k loops the
    // epilogue shows (Predictor on 64-128-128-10, process-alternated A/B:
    // 34.4 -> 33.9 us at batch 64, 522 -> 517 us at 1024).
    template <math::Activation A>
    static reg activate(reg v, float slope) {
        if constexpr (A == math::Activation::relu) {  // z < 0 ? +0 : z
            return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NLT_UQ), v);
        } else if constexpr (A == math::Activation::leaky_relu) {  // z > 0 ? z : z * slope
            return _mm512_mask_mov_ps(_mm512_mul_ps(v, _mm512_set1_ps(slope)),
                                      _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v);
        }
        const __m256 lo = math::avx2::forward<A>(_mm512_maskz_extractf32x8_ps(0xFF, v, 0), slope);
        const __m256 hi = math::avx2::forward<A>(_mm512_maskz_extractf32x8_ps(0xFF, v, 1), slope);
        return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
    }
};

template <>
struct Zmm<double> {
    using reg = __m512d;
    static constexpr index_t width = 8;
    static reg load(const double* p) { return _mm512_loadu_pd(p); }
    static reg load_aligned(const double* p) { return _mm512_load_pd(p); }
    static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
    static reg zero() { return _mm512_setzero_pd(); }
    static reg broadcast(const double* p) { return _mm512_set1_pd(*p); }
    static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
    static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
    template <math::Activation A>
    static reg activate(reg v, double slope) {
        // (zero-masked extract and insert, relu and leaky_relu in one ZMM: as for floats)
        if constexpr (A == math::Activation::relu) {
            return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_NLT_UQ), v);
        } else if constexpr (A == math::Activation::leaky_relu) {
            return _mm512_mask_mov_pd(_mm512_mul_pd(v, _mm512_set1_pd(slope)),
                                      _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_GT_OQ), v);
        }
        const __m256d lo = math::avx2::forward<A>(_mm512_maskz_extractf64x4_pd(0xFF, v, 0), slope);
        const __m256d hi = math::avx2::forward<A>(_mm512_maskz_extractf64x4_pd(0xFF, v, 1), slope);
        return _mm512_maskz_insertf64x4(0xFF, _mm512_castpd256_pd512(lo), hi, 1);
    }
};

// ukernel.h's preconditions, for the AVX-512 kernels (B loads are aligned:
// every B micro-panel row is NR * sizeof(T), a multiple of 64 bytes).
template <class T, bool Direct>
inline void assert_preconditions([[maybe_unused]] const UkernelArgs<T>& p) {
    assert(p.k >= 0);
    assert(p.k == 0 || (p.a != nullptr && p.b != nullptr));
    assert(p.k == 0 || Direct || (reinterpret_cast<std::uintptr_t>(p.b) % 64) == 0);
    assert(!Direct || (p.lda >= 0 && p.ldb >= 0));
    assert(p.c != nullptr);
}

// With accumulate, every row of C is loaded before the first store (4K
// aliasing at power-of-two row strides; see ukernel_avx2.h).
template <class T, int R, int NV, math::Activation A>
inline void write_back(typename Zmm<T>::reg (&acc)[R][NV], const UkernelArgs<T>& p) {
    using W = Zmm<T>;
    constexpr index_t L = W::width;
    T* c = p.c;
    const index_t rs = p.rs_c;
    if (p.accumulate) {
#pragma GCC unroll 12
        for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[i][v] = W::add(acc[i][v], W::load(c + i * rs + v * L));
    }
    if (p.last) {
        if (p.bias != nullptr) {
            typename W::reg bias[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) bias[v] = W::load(p.bias + v * L);
#pragma GCC unroll 12
            for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) acc[i][v] = W::add(acc[i][v], bias[v]);
        }
        if (T* z = p.z; z != nullptr) {  // locals: a store through z might alias p
            const index_t rs_z = p.rs_z;
#pragma GCC unroll 12
            for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) W::store(z + i * rs_z + v * L, acc[i][v]);
        }
        if constexpr (A != math::Activation::identity) {
#pragma GCC unroll 12
            for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) acc[i][v] = W::template activate<A>(acc[i][v], p.slope);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) W::store(c + i * rs + v * L, acc[i][v]);
}

// Chains: 2 FMA pipes with latency 4 need 8 independent accumulators. R rows
// of NV vectors are R x NV chains; when that is under 8 (a panel of 1-3 rows)
// the k steps are dealt round-robin to S = 2 or 4 accumulator sets (step p to
// set p mod S), added in order at the end: ((set 0 + set 1) + set 2) + set 3.
// S depends on the kernel's shape only (R, NV), so the summation order
// depends on m mod MR and k, never on the thread count.
template <int R, int NV>
inline constexpr int kChainSets = R * NV >= 8 ? 1 : 2 * R * NV >= 8 ? 2 : 4;

// NVP: the B micro-panel's width in vectors (its row stride), NV <= NVP of
// which the kernel computes (NV < NVP: UkernelTable::half). The chains are
// the full-width kernel's, so a column gets the same bits either way.
// Op: how the kernel finds its operands (ukernel.h). packed: the panels;
// direct: the k steps of a and b are p.lda and p.ldb apart, not MR and NR
// (UkernelTable::direct); row_major_a: row i of A at a + i*p.lda, B as in
// direct (UkernelTable::direct_row_a). Unpacked, B's rows may lie anywhere:
// unaligned loads.
enum class Operands { packed, direct, row_major_a };

template <class T, int MR, int NV, int R, math::Activation A, int NVP = NV, Operands Op = Operands::packed>
void ukernel_avx512(const UkernelArgs<T>& p) {
    constexpr bool Direct = Op != Operands::packed;
    static_assert(R >= 1 && R <= MR, "a kernel computes 1..MR rows");
    static_assert(NV <= NVP, "a kernel computes part of the panel's width at most");
    constexpr int S = kChainSets<R, NVP>;
    static_assert(4 % S == 0, "an unrolled iteration of 4 k steps covers every set");
    static_assert(S * R * NV + NV + 1 <= 32, "accumulators, the B row and the broadcast fit the 32 ZMM registers");
    using W = Zmm<T>;
    constexpr index_t L = W::width;
    constexpr index_t NR = NVP * L;  // the packed panel's row stride
    assert_preconditions<T, Direct>(p);
    // a(i, step) at a + i * rs_a + step * cs_a
    // (not const: the direct kinds hide the run-time ones from the compiler, below)
    index_t rs_a = Op == Operands::row_major_a ? p.lda : 1;
    index_t cs_a = Op == Operands::row_major_a ? 1 : Direct ? p.lda : MR;
    index_t ldb = Direct ? p.ldb : NR;

#pragma GCC unroll 12
    for (int i = 0; i < R; ++i)  // a tile row spans NV cache lines (one per vector when aligned)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            _mm_prefetch(reinterpret_cast<const char*>(p.c + i * p.rs_c + v * L), _MM_HINT_T0);

    typename W::reg acc[S][R][NV];
#pragma GCC unroll 4
    for (int q = 0; q < S; ++q)
#pragma GCC unroll 12
        for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[q][i][v] = W::zero();
    const T* a = p.a;
    const T* b = p.b;
    auto k_step = [&](int q, int step) {  // k step at a + step*cs_a, b + step*ldb, into set q
        typename W::reg bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            bv[v] = Direct ? W::load(b + step * ldb + v * L) : W::load_aligned(b + step * ldb + v * L);
#pragma GCC unroll 12
        for (int i = 0; i < R; ++i) {
            const auto ai = W::broadcast(a + i * rs_a + step * cs_a);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[q][i][v] = W::fma(ai, bv[v], acc[q][i][v]);
        }
    };
    // 4 k steps read 4 MR elements of A: prefetch them 2 iterations ahead
    // (every line of the panel is asked for once; as in the AVX2 kernels).
    constexpr int kPrefetchLines = (4 * MR * static_cast<int>(sizeof(T)) + 63) / 64;
    const index_t k4 = p.k / 4;
    for (index_t l = 0; l < k4; ++l, a += 4 * cs_a, b += 4 * ldb) {
        // With strides known only at run time, GCC gives each (row, k step)
        // address of the unrolled iteration its own offset and, short of
        // registers, reloads each from the stack before its broadcast: 25
        // loads for 12 FMAs in the 12 x 16 row-major-A kernel. Made opaque
        // here (an empty asm that "changes" them), the pointers and strides
        // are used as they are: a base, a stride register and a displacement
        // per address. 1024 x 128 by 128 x 16, f32: 1.3x. The stride that is
        // 1 (k for row-major A, rows for direct A) stays visible, so that it
        // becomes the displacement.
        if constexpr (Op == Operands::row_major_a)
            asm("" : "+r"(a), "+r"(rs_a), "+r"(b), "+r"(ldb));
        else if constexpr (Op == Operands::direct)
            asm("" : "+r"(a), "+r"(cs_a), "+r"(b), "+r"(ldb));
        if constexpr (Op == Operands::row_major_a) {
            // R rows, each a line per 16 k: a quarter of them per
            // iteration of 4 k steps, a line ahead
            constexpr int kRowsPerIteration = (R + 3) / 4;
            const int first = static_cast<int>(l % 4) * kRowsPerIteration;
#pragma GCC unroll 3
            for (int r = 0; r < kRowsPerIteration; ++r)
                if (first + r < R)
                    _mm_prefetch(reinterpret_cast<const char*>(a + (first + r) * rs_a) + 64, _MM_HINT_T0);
        } else if constexpr (Direct) {  // 4 runs of R elements, cs_a apart
#pragma GCC unroll 4
            for (int step = 0; step < 4; ++step) {
                _mm_prefetch(reinterpret_cast<const char*>(a + (8 + step) * cs_a), _MM_HINT_T0);
                _mm_prefetch(reinterpret_cast<const char*>(a + (8 + step) * cs_a + (R - 1)), _MM_HINT_T0);
            }
        } else {
#pragma GCC unroll 8
            for (int line = 0; line < kPrefetchLines; ++line)
                _mm_prefetch(reinterpret_cast<const char*>(a + 8 * MR) + 64 * line, _MM_HINT_T0);
        }
#pragma GCC unroll 4
        for (int step = 0; step < 4; ++step) k_step(step % S, step);
    }
    const int rest = static_cast<int>(p.k % 4);  // step p = 4 k4 + step: set step mod S
#pragma GCC unroll 3
    for (int step = 0; step < 3; ++step)
        if (step < rest) k_step(step % S, step);
#pragma GCC unroll 4
    for (int q = 1; q < S; ++q)
#pragma GCC unroll 12
        for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[0][i][v] = W::add(acc[0][i][v], acc[q][i][v]);
    write_back<T, R, NV, A>(acc[0], p);
}

// One kernel per activation, in Activation order (a UkernelTable's rows):
// Kernel<...>::run<A> for each A.
template <class T, int MR, int NV, int R, int NVP, Operands Op>
struct Kernel {
    template <math::Activation A>
    static void run(const UkernelArgs<T>& p) {
        ukernel_avx512<T, MR, NV, R, A, NVP, Op>(p);
    }
};
template <class K, class T>
constexpr RowKernels<T> per_activation() {
    return FUSEDPROP_UKERNEL_TABLE(K::template run);
}

// The rows table of a UkernelTable (ukernel.h): entry [r][activation] is the
// kernel for the first r < MR rows; row 0 (and rows >= MR) unused.
template <class T, int MR, int NV, Operands Op, int... R>
constexpr RowKernelTable<T> rows_table(std::integer_sequence<int, R...>) {
    static_assert(MR <= kMaxMR, "config.h's kMaxMR must cover the tile");
    RowKernelTable<T> t{};
    ((t[R + 1] = per_activation<Kernel<T, MR, NV, R + 1, NV, Op>, T>()), ...);
    return t;
}
template <class T, int MR, int NV>
constexpr RowKernelTable<T> rows_table() {
    return rows_table<T, MR, NV, Operands::packed>(std::make_integer_sequence<int, MR - 1>{});
}

// UkernelTable::direct: [r] the first r rows (r = MR: the full tile), identity epilogue.
template <class T, int MR, int NV, int... R>
constexpr std::array<Ukernel<T>, kMaxMR + 1> direct_table(std::integer_sequence<int, R...>) {
    std::array<Ukernel<T>, kMaxMR + 1> t{};
    ((t[R + 1] = &ukernel_avx512<T, MR, NV, R + 1, math::Activation::identity, NV, Operands::direct>), ...);
    return t;
}
template <class T, int MR, int NV>
constexpr std::array<Ukernel<T>, kMaxMR + 1> direct_table() {
    return direct_table<T, MR, NV>(std::make_integer_sequence<int, MR>{});
}
template <class T, int MR, int NV>
void ukernel_direct_half(const UkernelArgs<T>& p) {
    ukernel_avx512<T, MR, NV / 2, MR, math::Activation::identity, NV, Operands::direct>(p);
}

// UkernelTable::direct_row_a: every epilogue, every row count, and half.
template <class T, int MR, int NV>
constexpr typename UkernelTable<T>::RowMajorA row_a_table() {
    typename UkernelTable<T>::RowMajorA t{};
    t.rows = rows_table<T, MR, NV, Operands::row_major_a>(std::make_integer_sequence<int, MR - 1>{});
    t.fn = per_activation<Kernel<T, MR, NV, MR, NV, Operands::row_major_a>, T>();
    t.half = per_activation<Kernel<T, MR, NV / 2, MR, NV, Operands::row_major_a>, T>();
    return t;
}

// UkernelTable::half: MR rows, the first NV / 2 vectors of an NV-wide panel.
template <class T, int MR, int NV, math::Activation A>
void ukernel_half(const UkernelArgs<T>& p) {
    static_assert(NV % 2 == 0, "half of an even number of vectors");
    ukernel_avx512<T, MR, NV / 2, MR, A, NV>(p);
}

}  // namespace fusedprop::gemm::avx512
