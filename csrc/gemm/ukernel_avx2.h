// What the AVX2 microkernels share (include only from translation units
// compiled with -mavx2 -mfma): the write-back of a tile and the kernel for
// the last, partial row panel of A.
//
// Both AVX2 tiles are MR = 6 rows of two vectors (f32: 6 x 16, f64: 6 x 8),
// so one template over the dtype serves both:
//
//   write_back<T, R, A>(acc, p)  the epilogue of ukernel.h's contract for R
//                                rows of accumulators, while they are in
//                                registers: + C, + bias, Z, act, store.
//   ukernel_rows_avx2<T, R, A>   the whole contract for only the first R < 6
//                                rows of the tile (the rest of the packed A
//                                panel is zero padding): an m that is not a
//                                multiple of 6 (a batch of 8 or 32 or 64) then
//                                costs R rows of FMAs, not 6.
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

// Rows 0..R-1 of the tile. R <= 5 rows of 2 accumulators, the B row and the
// broadcast fit the 16 YMM registers, so plain intrinsics do (no asm).
template <class T, int R, layers::Activation A>
void ukernel_rows_avx2(const UkernelArgs<T>& p) {
    static_assert(R >= 1 && R < kMR, "the full tile has its own kernel");
    using W = Vec<T>;
    constexpr index_t L = W::width;
    assert(p.k >= 0);
    assert(p.k == 0 || (p.a != nullptr && p.b != nullptr));
    assert(p.k == 0 || (reinterpret_cast<std::uintptr_t>(p.b) % 32) == 0);
    assert(p.c != nullptr);

    typename W::reg acc[R][2];
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = W::zero();
    const T* a = p.a;
    const T* b = p.b;
    for (index_t l = 0; l < p.k; ++l, a += kMR, b += 2 * L) {
        const auto b0 = W::load_aligned(b), b1 = W::load_aligned(b + L);
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) {
            const auto ai = W::broadcast(a + i);
            acc[i][0] = W::fma(ai, b0, acc[i][0]);
            acc[i][1] = W::fma(ai, b1, acc[i][1]);
        }
    }
    write_back<T, R, A>(acc, p);
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
