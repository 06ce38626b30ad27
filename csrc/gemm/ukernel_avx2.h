// The AVX2 + FMA microkernels (include only from translation units compiled
// with -mavx2 -mfma; ukernel_f32_6x16_avx2.cpp and ukernel_f64_6x8_avx2.cpp
// instantiate them). Contract and packed layout: ukernel.h.
//
// Both AVX2 tiles are MR = 6 rows of two vectors (f32: 6 x 16, f64: 6 x 8),
// so one template over the dtype serves both:
//
//   ukernel_6rows_avx2<T, A>     the full tile. Registers (all 16 YMM): 12
//                                accumulators (6 rows x 2 vectors), 2 for the
//                                B row, 1 for the broadcast A element. Per k
//                                step: 2 aligned B loads, 6 broadcasts, 12
//                                FMAs; Zen 3 issues 2 FMAs per cycle with
//                                latency 4, so 12 independent chains keep
//                                both pipes busy. The k loop is asm; the
//                                accumulators leave it in registers.
//   ukernel_rows_avx2<T, R, A>   the whole contract for only the first R < 6
//                                rows of the tile (the rest of the packed A
//                                panel is zero padding): an m that is not a
//                                multiple of 6 (a batch of 8 or 32 or 64) then
//                                costs R rows of FMAs, not 6. For R <= 3 the
//                                k steps go round-robin to 2 or 4 chains per
//                                element (see the kernel).
//   write_back<T, R, A>(acc, p)  the epilogue for R rows of accumulators,
//                                while they are in registers: + C, + bias,
//                                Z, act, store.
#pragma once

#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "math/activation_avx2.h"
#include "runtime/simd_avx2.h"
#include "ukernel.h"

namespace fusedprop::gemm::avx2 {

inline constexpr int kMR = 6;  // rows of every AVX2 tile; the packed A panel's stride

template <class T>
using Vec = simd::Avx2<T>;

// ukernel.h's preconditions, for the AVX2 kernels (B loads are aligned).
template <class T>
inline void assert_preconditions([[maybe_unused]] const UkernelArgs<T>& p) {
    assert(p.k >= 0);
    assert(p.k == 0 || (p.a != nullptr && p.b != nullptr));
    assert(p.k == 0 || (reinterpret_cast<std::uintptr_t>(p.b) % 32) == 0);
    assert(p.c != nullptr);
}

// With accumulate, every row of C is loaded before the first store: at row
// strides that are multiples of 4 KiB all rows share their low 12 address
// bits, and a load issued after a store to another row would wait for it
// (4K aliasing).
template <class T, int R, math::Activation A>
inline void write_back(typename Vec<T>::reg (&acc)[R][2], const UkernelArgs<T>& p) {
    using W = Vec<T>;
    constexpr index_t L = W::width;
    T* c = p.c;
    const index_t rs = p.rs_c;
    if (p.accumulate) {
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) {
            acc[i][0] = W::add(acc[i][0], W::load(c + i * rs));
            acc[i][1] = W::add(acc[i][1], W::load(c + i * rs + L));
        }
    }
    if (p.last) {
        if (p.bias != nullptr) {
            const auto bias0 = W::load(p.bias), bias1 = W::load(p.bias + L);
#pragma GCC unroll 6
            for (int i = 0; i < R; ++i) {
                acc[i][0] = W::add(acc[i][0], bias0);
                acc[i][1] = W::add(acc[i][1], bias1);
            }
        }
        if (T* z = p.z; z != nullptr) {  // locals: a store through z might alias p
            const index_t rs_z = p.rs_z;
#pragma GCC unroll 6
            for (int i = 0; i < R; ++i) {
                W::store(z + i * rs_z, acc[i][0]);
                W::store(z + i * rs_z + L, acc[i][1]);
            }
        }
        if constexpr (A != math::Activation::identity) {
#pragma GCC unroll 6
            for (int i = 0; i < R; ++i) {
                acc[i][0] = math::avx2::forward<A>(acc[i][0], p.slope);
                acc[i][1] = math::avx2::forward<A>(acc[i][1], p.slope);
            }
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
        W::store(c + i * rs, acc[i][0]);
        W::store(c + i * rs + L, acc[i][1]);
    }
}

// ------------------------------------------------------ the full 6-row tile

// The k loop is inline asm: written with intrinsics, GCC's allocator spills
// accumulators. The asm only sums. Its 12 accumulators are register operands
// (acc[i][j] is %[c<i><j>]) that leave it for the compiled write_back, so
// adding C, the bias and the activation costs no trip through memory. One k
// step for element size E bytes, step S of an unrolled iteration: the B row
// (64 bytes: 16 floats or 8 doubles) into b0, b1, then per row i the
// broadcast a(i, p) into av and two FMAs. Offsets are assembler expressions
// (A advances 6 E bytes per k step).
#define FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, I)                                 \
    BCAST " 6*" #E "*" #S "+" #I "*" #E "(%[a]), %[av]\n\t"                    \
    FMA " %[b0], %[av], %[c" #I "0]\n\t" FMA " %[b1], %[av], %[c" #I "1]\n\t"
#define FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, S)                                  \
    "vmovaps 64*" #S "(%[b]), %[b0]\n\t"                                        \
    "vmovaps 64*" #S "+32(%[b]), %[b1]\n\t"                                     \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 0)                                     \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 1)                                     \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 2)                                     \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 3)                                     \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 4)                                     \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 5)
#define FUSEDPROP_AVX2_ZERO(I)                                                  \
    "vxorps %[c" #I "0], %[c" #I "0], %[c" #I "0]\n\t"                         \
    "vxorps %[c" #I "1], %[c" #I "1], %[c" #I "1]\n\t"

// acc = sum over p < k of the outer products a(:, p) b(p, :), one FMA chain
// per element: 4 k steps per iteration, then the remainder. An iteration
// reads 4 x 6 x E bytes of A (1.5 cache lines in f32, 3 in f64) and
// prefetches as many lines 2 iterations ahead, so every line of the A panel
// is asked for once: one prefetch per iteration left every third f32 line
// and two of three f64 lines to the hardware (f64 GEMMs measured 1-2%
// slower).
#define FUSEDPROP_AVX2_KLOOP(REG, BCAST, FMA, E)                                 \
    index_t k4 = k / 4, k1 = k % 4;                                             \
    REG b0, b1, av;                                                             \
    __asm__ volatile(                                                           \
        FUSEDPROP_AVX2_ZERO(0) FUSEDPROP_AVX2_ZERO(1) FUSEDPROP_AVX2_ZERO(2)    \
        FUSEDPROP_AVX2_ZERO(3) FUSEDPROP_AVX2_ZERO(4) FUSEDPROP_AVX2_ZERO(5)    \
        "test %[k4], %[k4]\n\t"                                                 \
        "jz 2f\n\t"                                                             \
        ".p2align 5\n\t"                                                        \
        "1:\n\t"                                                                \
        "prefetcht0 8*6*" #E "(%[a])\n\t"                                       \
        "prefetcht0 8*6*" #E "+64(%[a])\n\t"                                    \
        ".if " #E " == 8\n\tprefetcht0 8*6*" #E "+128(%[a])\n\t.endif\n\t"     \
        FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, 0)                                  \
        FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, 1)                                  \
        FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, 2)                                  \
        FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, 3)                                  \
        "add $4*6*" #E ", %[a]\n\t"                                             \
        "add $4*64, %[b]\n\t"                                                   \
        "dec %[k4]\n\t"                                                         \
        "jnz 1b\n\t"                                                            \
        "2:\n\t"                                                                \
        "test %[k1], %[k1]\n\t"                                                 \
        "jz 4f\n\t"                                                             \
        "3:\n\t"                                                                \
        FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, 0)                                  \
        "add $6*" #E ", %[a]\n\t"                                               \
        "add $64, %[b]\n\t"                                                     \
        "dec %[k1]\n\t"                                                         \
        "jnz 3b\n\t"                                                            \
        "4:\n\t"                                                                \
        : [a] "+r"(a), [b] "+r"(b), [k4] "+r"(k4), [k1] "+r"(k1),               \
          [c00] "=&x"(acc[0][0]), [c01] "=&x"(acc[0][1]), [c10] "=&x"(acc[1][0]), \
          [c11] "=&x"(acc[1][1]), [c20] "=&x"(acc[2][0]), [c21] "=&x"(acc[2][1]), \
          [c30] "=&x"(acc[3][0]), [c31] "=&x"(acc[3][1]), [c40] "=&x"(acc[4][0]), \
          [c41] "=&x"(acc[4][1]), [c50] "=&x"(acc[5][0]), [c51] "=&x"(acc[5][1]), \
          [b0] "=&x"(b0), [b1] "=&x"(b1), [av] "=&x"(av)                        \
        :                                                                       \
        : "cc", "memory")

inline void kloop_6rows(const float* a, const float* b, index_t k, __m256 (&acc)[kMR][2]) {
    FUSEDPROP_AVX2_KLOOP(__m256, "vbroadcastss", "vfmadd231ps", 4);
}
inline void kloop_6rows(const double* a, const double* b, index_t k, __m256d (&acc)[kMR][2]) {
    FUSEDPROP_AVX2_KLOOP(__m256d, "vbroadcastsd", "vfmadd231pd", 8);
}

#undef FUSEDPROP_AVX2_KLOOP
#undef FUSEDPROP_AVX2_ZERO
#undef FUSEDPROP_AVX2_KSTEP
#undef FUSEDPROP_AVX2_ROW

template <class T, math::Activation A>
void ukernel_6rows_avx2(const UkernelArgs<T>& p) {
    assert_preconditions(p);
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {  // a tile row may straddle two cache lines
        _mm_prefetch(reinterpret_cast<const char*>(p.c + i * p.rs_c), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(p.c + i * p.rs_c + 2 * Vec<T>::width - 1), _MM_HINT_T0);
    }
    typename Vec<T>::reg acc[kMR][2];
    kloop_6rows(p.a, p.b, p.k, acc);
    write_back<T, kMR, A>(acc, p);
}

// ------------------------------------------------------ a partial row panel

// Rows 0..R-1 of the tile. R <= 5 rows of 2 accumulators, the B row and the
// broadcast fit the 16 YMM registers, so plain intrinsics do (no asm).
//
// Chains: 2 FMA pipes with latency 4 need 8 independent accumulators. One
// row has 2, two rows 4, three rows 6: alone they would run at 1/4, 1/2 and
// 3/4 of the pipes' rate (measured: a 2-row panel cost 0.63 of a 6-row one,
// not 0.33). So for R <= 3 the k steps are dealt round-robin to S = 4, 2, 2
// accumulator sets (step p to set p mod S), added in order at the end:
// acc = ((set 0 + set 1) + set 2) + set 3. The order depends on R, so on
// m mod 6 and k only, never on the thread count.
template <int R>
inline constexpr int kChainSets = R == 1 ? 4 : R <= 3 ? 2 : 1;

template <class T, int R, math::Activation A>
void ukernel_rows_avx2(const UkernelArgs<T>& p) {
    static_assert(R >= 1 && R < kMR, "the full tile has its own kernel");
    constexpr int S = kChainSets<R>;
    static_assert(4 % S == 0, "an unrolled iteration of 4 k steps covers every set");
    using W = Vec<T>;
    constexpr index_t L = W::width;
    assert_preconditions(p);

    typename W::reg acc[S][R][2];
#pragma GCC unroll 4
    for (int q = 0; q < S; ++q)
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) acc[q][i][0] = acc[q][i][1] = W::zero();
    const T* a = p.a;
    const T* b = p.b;
    auto k_step = [&](int q, int step) {  // k step a + step*MR, b + step*2L, into set q
        const auto b0 = W::load_aligned(b + step * 2 * L), b1 = W::load_aligned(b + step * 2 * L + L);
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) {
            const auto ai = W::broadcast(a + step * kMR + i);
            acc[q][i][0] = W::fma(ai, b0, acc[q][i][0]);
            acc[q][i][1] = W::fma(ai, b1, acc[q][i][1]);
        }
    };
    const index_t k4 = p.k / 4;
    for (index_t l = 0; l < k4; ++l, a += 4 * kMR, b += 8 * L) {
        // the same prefetch distance as the 6-row kernel's asm loop
        _mm_prefetch(reinterpret_cast<const char*>(a + 8 * kMR), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(a + 8 * kMR) + 64, _MM_HINT_T0);
#pragma GCC unroll 4
        for (int step = 0; step < 4; ++step) k_step(step % S, step);
    }
    const int rest = static_cast<int>(p.k % 4);  // step p = 4 k4 + step: set step mod S
#pragma GCC unroll 3
    for (int step = 0; step < 3; ++step)
        if (step < rest) k_step(step % S, step);
#pragma GCC unroll 4
    for (int q = 1; q < S; ++q)
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) {
            acc[0][i][0] = W::add(acc[0][i][0], acc[q][i][0]);
            acc[0][i][1] = W::add(acc[0][i][1], acc[q][i][1]);
        }
    write_back<T, R, A>(acc[0], p);
}

// The rows table of a UkernelTable (ukernel.h): entry [r][activation] is the
// kernel for the first r rows; row 0 is unused.
template <class T, int R>
constexpr RowKernels<T> rows_entry() {
    return {&ukernel_rows_avx2<T, R, math::Activation::identity>,
            &ukernel_rows_avx2<T, R, math::Activation::relu>,
            &ukernel_rows_avx2<T, R, math::Activation::leaky_relu>,
            &ukernel_rows_avx2<T, R, math::Activation::sigmoid>,
            &ukernel_rows_avx2<T, R, math::Activation::tanh>,
            &ukernel_rows_avx2<T, R, math::Activation::gelu>,
            &ukernel_rows_avx2<T, R, math::Activation::gelu_tanh>,
            &ukernel_rows_avx2<T, R, math::Activation::silu>};
}
template <class T>
constexpr RowKernelTable<T> rows_table() {
    return {RowKernels<T>{}, rows_entry<T, 1>(), rows_entry<T, 2>(), rows_entry<T, 3>(), rows_entry<T, 4>(),
            rows_entry<T, 5>()};
}

}  // namespace fusedprop::gemm::avx2
