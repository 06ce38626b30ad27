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
//                                both pipes busy. Without an epilogue to
//                                apply, the asm itself stores (or adds) the
//                                accumulators into C.
//   ukernel_rows_avx2<T, R, A>   the whole contract for only the first R < 6
//                                rows of the tile (the rest of the packed A
//                                panel is zero padding): an m that is not a
//                                multiple of 6 (a batch of 8 or 32 or 64) then
//                                costs R rows of FMAs, not 6. For R <= 3 the
//                                k steps go round-robin to 2 or 4 chains per
//                                element (see the kernel).
//   write_back<T, R, A>(acc, p)  the epilogue for R rows of accumulators,
//                                while they are in registers: + C, + bias,
//                                Z, act, store (the full tile's sum reaches
//                                it through a stack tile).
#pragma once

#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "layers/activation_avx2.h"
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

template <class T, int R, layers::Activation A>
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
        if (p.z != nullptr) {
#pragma GCC unroll 6
            for (int i = 0; i < R; ++i) {
                W::store(p.z + i * p.rs_z, acc[i][0]);
                W::store(p.z + i * p.rs_z + L, acc[i][1]);
            }
        }
        if constexpr (A != layers::Activation::identity) {
#pragma GCC unroll 6
            for (int i = 0; i < R; ++i) {
                acc[i][0] = layers::avx2::forward<A>(acc[i][0], p.slope);
                acc[i][1] = layers::avx2::forward<A>(acc[i][1], p.slope);
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
// accumulators. One k step for element size E bytes, step S of an unrolled
// iteration: the B row (64 bytes: 16 floats or 8 doubles) into ymm0-1, then
// per row i the broadcast a(i, p) into ymm2 and two FMAs into ymm(4+2i),
// ymm(5+2i). Offsets are assembler expressions (A advances 6 E bytes per k).
#define FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, I, ACC0, ACC1)                     \
    BCAST " 6*" #E "*" #S "+" #I "*" #E "(%[a]), %%ymm2\n\t"                   \
    FMA " %%ymm0, %%ymm2, %%ymm" #ACC0 "\n\t" FMA " %%ymm1, %%ymm2, %%ymm" #ACC1 "\n\t"
#define FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, S)                                  \
    "vmovaps 64*" #S "(%[b]), %%ymm0\n\t"                                       \
    "vmovaps 64*" #S "+32(%[b]), %%ymm1\n\t"                                    \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 0, 4, 5)                               \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 1, 6, 7)                               \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 2, 8, 9)                               \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 3, 10, 11)                             \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 4, 12, 13)                             \
    FUSEDPROP_AVX2_ROW(BCAST, FMA, E, S, 5, 14, 15)

// ymm4-15 = sum over p < k of the outer products a(:, p) b(p, :), one FMA
// chain per element: 4 k steps per iteration, then the remainder. An
// iteration reads 4 x 6 x E bytes of A (1.5 cache lines in f32, 3 in f64)
// and prefetches as many lines 2 iterations ahead, so every line of the A
// panel is asked for once: one prefetch per iteration left every third f32
// line and two of three f64 lines to the hardware (f64 GEMMs measured 1-2%
// slower).
#define FUSEDPROP_AVX2_KLOOP(BCAST, FMA, E)                                      \
    "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"                                         \
    "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"                                         \
    "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"                                         \
    "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"                                         \
    "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"                                         \
    "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"                                         \
    "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"                                      \
    "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"                                      \
    "vxorps %%ymm12, %%ymm12, %%ymm12\n\t"                                      \
    "vxorps %%ymm13, %%ymm13, %%ymm13\n\t"                                      \
    "vxorps %%ymm14, %%ymm14, %%ymm14\n\t"                                      \
    "vxorps %%ymm15, %%ymm15, %%ymm15\n\t"                                      \
    "test %[k4], %[k4]\n\t"                                                     \
    "jz 2f\n\t"                                                                 \
    ".p2align 5\n\t"                                                            \
    "1:\n\t"                                                                    \
    "prefetcht0 8*6*" #E "(%[a])\n\t"                                           \
    "prefetcht0 8*6*" #E "+64(%[a])\n\t"                                        \
    ".if " #E " == 8\n\tprefetcht0 8*6*" #E "+128(%[a])\n\t.endif\n\t"         \
    FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, 0)                                      \
    FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, 1)                                      \
    FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, 2)                                      \
    FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, 3)                                      \
    "add $4*6*" #E ", %[a]\n\t"                                                 \
    "add $4*64, %[b]\n\t"                                                       \
    "dec %[k4]\n\t"                                                             \
    "jnz 1b\n\t"                                                                \
    "2:\n\t"                                                                    \
    "test %[k1], %[k1]\n\t"                                                     \
    "jz 4f\n\t"                                                                 \
    "3:\n\t"                                                                    \
    FUSEDPROP_AVX2_KSTEP(BCAST, FMA, E, 0)                                      \
    "add $6*" #E ", %[a]\n\t"                                                   \
    "add $64, %[b]\n\t"                                                         \
    "dec %[k1]\n\t"                                                             \
    "jnz 3b\n\t"                                                                \
    "4:\n\t"

// The 12 accumulators against the 6 x 2 vectors of a tile at %[c] with row
// stride %[rs] bytes: rows c, c + rs, c + 2 rs, then c3 = c + 3 rs, ...; the
// second vector of a row is 32 bytes on. OP(address, register).
#define FUSEDPROP_AVX2_TILE(OP)                                                 \
    OP("(%[c])", 4) OP("32(%[c])", 5)                                           \
    OP("(%[c],%[rs],1)", 6) OP("32(%[c],%[rs],1)", 7)                           \
    OP("(%[c],%[rs],2)", 8) OP("32(%[c],%[rs],2)", 9)                           \
    OP("(%[c3])", 10) OP("32(%[c3])", 11)                                       \
    OP("(%[c3],%[rs],1)", 12) OP("32(%[c3],%[rs],1)", 13)                       \
    OP("(%[c3],%[rs],2)", 14) OP("32(%[c3],%[rs],2)", 15)
#define FUSEDPROP_AVX2_STORE(ADDR, R) "vmovups %%ymm" #R ", " ADDR "\n\t"
#define FUSEDPROP_AVX2_ADD_PS(ADDR, R) "vaddps " ADDR ", %%ymm" #R ", %%ymm" #R "\n\t"
#define FUSEDPROP_AVX2_ADD_PD(ADDR, R) "vaddpd " ADDR ", %%ymm" #R ", %%ymm" #R "\n\t"

// The k loop, then the accumulators straight out of the registers into the
// tile at `out` (row stride rs_out elements): stored, or, with accumulate,
// added to it first. The adds load every row before the first store: at row
// strides that are multiples of 4 KiB all rows share their low 12 address
// bits, and a load issued after a store to another row would wait for it
// (4K aliasing). Leaving through a stack tile and a compiled write-back
// instead measured 3-8% slower for the whole kernel, hot in cache, at k =
// 128-320; the epilogue still takes that path (ukernel_6rows_avx2).
#define FUSEDPROP_AVX2_KERNEL(BCAST, FMA, ADD, E)                               \
    index_t k4 = k / 4, k1 = k % 4;                                             \
    const index_t rs = rs_out * E;                                              \
    void* c3;                                                                   \
    __asm__ volatile(FUSEDPROP_AVX2_KLOOP(BCAST, FMA, E)                        \
                     "lea (%[c],%[rs],2), %[c3]\n\t"                            \
                     "add %[rs], %[c3]\n\t"                                     \
                     "test %[accumulate], %[accumulate]\n\t"                    \
                     "jz 5f\n\t"                                                \
                     FUSEDPROP_AVX2_TILE(ADD)                                   \
                     "5:\n\t"                                                   \
                     FUSEDPROP_AVX2_TILE(FUSEDPROP_AVX2_STORE)                  \
                     : [a] "+r"(a), [b] "+r"(b), [k4] "+r"(k4), [k1] "+r"(k1), [c3] "=&r"(c3) \
                     : [c] "r"(out), [rs] "r"(rs), [accumulate] "r"(static_cast<index_t>(accumulate)) \
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", \
                       "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory")

inline void kloop_6rows(const float* a, const float* b, index_t k, float* out, index_t rs_out, bool accumulate) {
    FUSEDPROP_AVX2_KERNEL("vbroadcastss", "vfmadd231ps", FUSEDPROP_AVX2_ADD_PS, 4);
}
inline void kloop_6rows(const double* a, const double* b, index_t k, double* out, index_t rs_out,
                        bool accumulate) {
    FUSEDPROP_AVX2_KERNEL("vbroadcastsd", "vfmadd231pd", FUSEDPROP_AVX2_ADD_PD, 8);
}

#undef FUSEDPROP_AVX2_KERNEL
#undef FUSEDPROP_AVX2_ADD_PD
#undef FUSEDPROP_AVX2_ADD_PS
#undef FUSEDPROP_AVX2_STORE
#undef FUSEDPROP_AVX2_TILE
#undef FUSEDPROP_AVX2_KLOOP
#undef FUSEDPROP_AVX2_KSTEP
#undef FUSEDPROP_AVX2_ROW

template <class T, layers::Activation A>
void ukernel_6rows_avx2(const UkernelArgs<T>& p) {
    using W = Vec<T>;
    constexpr index_t L = W::width;
    assert_preconditions(p);

#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {  // a tile row may straddle two cache lines
        _mm_prefetch(reinterpret_cast<const char*>(p.c + i * p.rs_c), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(p.c + i * p.rs_c + 2 * L - 1), _MM_HINT_T0);
    }
    // Nothing but the sum to write (a plain product, or an earlier K block):
    // straight from the registers into C.
    const bool epilogue = p.last && (A != layers::Activation::identity || p.bias != nullptr || p.z != nullptr);
    if (!epilogue) return kloop_6rows(p.a, p.b, p.k, p.c, p.rs_c, p.accumulate);
    // The epilogue: the sum through a tile on the stack (in L1) into the
    // compiled write-back.
    alignas(32) T acc[kMR * 2 * L];
    kloop_6rows(p.a, p.b, p.k, acc, 2 * L, false);
    typename W::reg acc_v[kMR][2];
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
        acc_v[i][0] = W::load_aligned(acc + (2 * i) * L);
        acc_v[i][1] = W::load_aligned(acc + (2 * i + 1) * L);
    }
    write_back<T, kMR, A>(acc_v, p);
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

template <class T, int R, layers::Activation A>
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
    return {&ukernel_rows_avx2<T, R, layers::Activation::identity>,
            &ukernel_rows_avx2<T, R, layers::Activation::relu>,
            &ukernel_rows_avx2<T, R, layers::Activation::leaky_relu>,
            &ukernel_rows_avx2<T, R, layers::Activation::sigmoid>,
            &ukernel_rows_avx2<T, R, layers::Activation::tanh>,
            &ukernel_rows_avx2<T, R, layers::Activation::gelu>,
            &ukernel_rows_avx2<T, R, layers::Activation::gelu_tanh>,
            &ukernel_rows_avx2<T, R, layers::Activation::silu>};
}
template <class T>
constexpr RowKernelTable<T> rows_table() {
    return {RowKernels<T>{}, rows_entry<T, 1>(), rows_entry<T, 2>(), rows_entry<T, 3>(), rows_entry<T, 4>(),
            rows_entry<T, 5>()};
}

}  // namespace fusedprop::gemm::avx2
