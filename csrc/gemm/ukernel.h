// The microkernel contract and the packed layout.
//
// A microkernel computes one MR x NR tile of C from one packed micro-panel of
// A and one packed micro-panel of B, with the whole tile in registers:
//
//                 <--------- NR --------->
//            b:   [ b(0,0) ........ b(0,NR-1) ]   row p of the B micro-panel:
//                 [ b(1,0) ........ b(1,NR-1) ]   NR contiguous elements,
//                 [  ...                      ]   k rows, one after the other
//                 [ b(k-1,0) ... b(k-1,NR-1)  ]   (ptr b + p*NR)
//
//   a: column p of the A micro-panel      C tile (MR x NR), row stride rs_c,
//      = MR contiguous elements           unit column stride
//      (ptr a + p*MR)
//    ^  [a(0,0)  a(0,1) ... a(0,k-1) ]     [ c(0,0) ...... c(0,NR-1) ]
//   MR  [a(1,0)  a(1,1) ... a(1,k-1) ]  -> [  ...                    ]
//    v  [a(MR-1,0) ...    a(MR-1,k-1)]     [ c(MR-1,0) . c(MR-1,NR-1)]
//
//   In memory: a = a(0,0) a(1,0) .. a(MR-1,0) a(0,1) a(1,1) .. (column by column)
//              b = b(0,0) b(0,1) .. b(0,NR-1) b(1,0) b(1,1) .. (row by row)
//
// Packing (pack.h) lays a whole MC x KC block of A out as ceil(MC/MR) such
// micro-panels back to back (MR*KC elements each), and a KC x NC block of B as
// ceil(NC/NR) micro-panels (KC*NR elements each). Rows of A past m and
// columns of B past n are zero-padded, so a kernel always computes a full
// tile; the driver copies the valid part of an edge tile (see driver.cpp),
// except for a tile short of rows only, which a row kernel (below) writes
// straight into C.
// Packed buffers are 64-byte aligned and every B micro-panel row is
// NR*sizeof(T) bytes (a multiple of 32 for the AVX2 tiles, of 64 for the
// AVX-512 ones), so B loads are aligned.
//
// What one call does, with acc = sum over p of a(:,p) b(p,:) (one FMA chain
// per element, p in increasing order; a kernel may instead deal the p to a
// fixed number of chains round-robin and add them in a fixed order, as the
// AVX2 partial-row kernels of 1-3 rows do, so long as the order depends on
// nothing but its own shape and k):
//
//   acc += accumulate ? C : 0          (earlier K blocks were written to C)
//   if last:                            (the epilogue, while acc is in registers)
//       acc += bias[0..NR)              (if bias; one value per column)
//       Z = acc                         (if z: the pre-activation, row stride rs_z)
//       acc = act(acc)                  (the template's Activation)
//   C = acc
//
// Direct operands (UkernelTable::direct): a kernel that reads A and B where
// they lie, unpacked. The same layout with other strides between k steps:
// column p of A is MR contiguous elements at a + p*lda (a column-major A,
// lda its column stride), row p of B is NR contiguous elements at b + p*ldb
// (a row-major B), either one or both; a packed panel is lda = MR, ldb = NR.
// A row-major A (UkernelTable::direct_row_a) is the other direct layout:
// row i of the panel is k contiguous elements at a + i*lda.
// The sums, and so the bits, are those of the packed kernels. A kernel for
// r rows reads only those r elements of each column of A, but every kernel
// reads NR (half: NR/2) elements of each row of B: the driver hands a
// column-edge panel over packed.
//
// Preconditions (asserted at the top of each kernel): k >= 0; a, b non-null
// when k > 0; b 32-byte aligned (AVX2); c non-null; bias (if any) holds NR
// readable values; z (if any) is an MR x NR tile with unit column stride.
// (b is 64-byte aligned for the AVX-512 kernels.)
#pragma once

#include <array>
#include <cassert>
#include <cstdint>

#include "config.h"
#include "math/activation.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::gemm {

template <class T>
struct UkernelArgs {
    index_t k = 0;
    const T* a = nullptr;  // packed MR x k micro-panel
    const T* b = nullptr;  // packed k x NR micro-panel
    T* c = nullptr;        // MR x NR tile, unit column stride
    index_t rs_c = 0;
    bool accumulate = false;  // add the current C (not the first K block)
    bool last = true;         // apply the epilogue (the last K block)
    const T* bias = nullptr;  // NR values, or nullptr
    T* z = nullptr;           // pre-activation tile, or nullptr
    index_t rs_z = 0;
    T slope = T(0);  // leaky_relu's negative_slope
    index_t lda = 0, ldb = 0;  // the direct kernels' k steps (see above); packed: MR, NR
};

template <class T>
using Ukernel = void (*)(const UkernelArgs<T>& args);

// Kernels for a partial tile: entry [r][activation] computes only the first
// r rows (r < MR; the packed A panel's other rows are zero padding) and
// reads and writes only those r rows of C and Z, same contract otherwise.
// nullptr where a table has none: the full kernel runs on a scratch tile.
template <class T>
using RowKernels = std::array<Ukernel<T>, math::kNumActivations>;
template <class T>
using RowKernelTable = std::array<RowKernels<T>, kMaxMR>;

// One kernel per activation (the epilogue is a template parameter), indexed
// by static_cast<int>(Activation).
template <class T>
struct UkernelTable {
    int mr, nr;
    const char* name;  // e.g. "f32_6x16_avx2"
    Ukernel<T> fn[math::kNumActivations];
    RowKernelTable<T> rows;
    // A full-height tile whose valid columns fit in the first NR/2: the same
    // sums for those columns (same chains, same k order, so the same bits)
    // at half the FMAs, reading the first half of each row of a full B
    // micro-panel (row stride NR) and writing NR/2 columns of C and Z. For
    // a layer of 10 outputs, a 12x32 tile would spend 22 of 32 lanes on
    // padding. nullptr where a table has none.
    Ukernel<T> half[math::kNumActivations];
    // Kernels on direct operands (see above), identity epilogue (the
    // backward's products, dW = dZ^T X and dX = dZ W, whose operands lie
    // column-major and row-major): [r] for the first r rows, [MR] the full
    // tile; direct_half as half. nullptr where a table has none.
    std::array<Ukernel<T>, kMaxMR + 1> direct{};
    Ukernel<T> direct_half = nullptr;
    // Kernels on a direct row-major A (a(i, p) at a + i*lda + p: a layer's
    // input x in the forward, dZ in dX = dZ W) and a packed or direct B (as
    // above), every epilogue: as fn, rows and half. Empty where a table has none.
    struct RowMajorA {
        RowKernels<T> fn;
        RowKernelTable<T> rows;
        RowKernels<T> half;
    } direct_row_a{};
};

// Defined in ukernel_ref.cpp (baseline flags).
extern const UkernelTable<float> kUkernelF32Ref;
extern const UkernelTable<double> kUkernelF64Ref;
#if defined(FUSEDPROP_HAVE_AVX2)
// Defined in ukernel_f32_6x16_avx2.cpp and ukernel_f64_6x8_avx2.cpp (-mavx2 -mfma).
extern const UkernelTable<float> kUkernelF32Avx2;
extern const UkernelTable<double> kUkernelF64Avx2;
#endif
#if defined(FUSEDPROP_HAVE_AVX512)
// Defined in ukernel_f32_12x32_avx512.cpp and ukernel_f64_12x16_avx512.cpp
// (-mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma).
extern const UkernelTable<float> kUkernelF32Avx512;
extern const UkernelTable<double> kUkernelF64Avx512;
#endif

#define FUSEDPROP_UKERNEL_TABLE(Kernel)                                                               \
    {                                                                                                 \
        &Kernel<math::Activation::identity>, &Kernel<math::Activation::relu>,                     \
            &Kernel<math::Activation::leaky_relu>, &Kernel<math::Activation::sigmoid>,            \
            &Kernel<math::Activation::tanh>, &Kernel<math::Activation::gelu>,                     \
            &Kernel<math::Activation::gelu_tanh>, &Kernel<math::Activation::silu>                 \
    }

}  // namespace fusedprop::gemm
