// Small-batch products with no packing: C = epilogue(A * B) for a handful of
// rows of A, reading B in the layout it already has.
//
// For m rows, a packed GEMM pays for copying all of B (k x n) into panels on
// every call, and then uses each packed element only m times. When m is small
// the product is bound by reading B once, so these kernels stream B where it
// lies, and keep the bias and activation in registers as the packed kernels
// do. Two layouts of B (the only ones a dense layer hands over):
//
//   nt:  B = W^T with W row-major (n x k, unit column stride): each output is
//        the dot product of a contiguous row of W with a row of A,
//
//          c(i, j) = sum_p a(i, p) w(j, p)        (x W^T in a layer's forward)
//
//        An accumulator register per (i, j) gathers the lanes of p; its lanes
//        are added in one fixed tree, ((0+1)+(2+3))+((4+5)+(6+7)) in f32.
//   nn:  B row-major (k x n, unit column stride): each row of C is a sum of
//        rows of B scaled by a(i, p),
//
//          c(i, j..j+w) += a(i, p) * b(p, j..j+w)  for p = 0 .. k-1
//                                                  (dZ W in a layer's backward)
//        One FMA chain per element of C, p in increasing order.
//
// Either way the value of c(i, j) depends on k and the data alone: not on m,
// on which rows are computed together, nor on the thread count (threads split
// the columns). It does depend on B's layout (nt, nn, or neither and packed,
// each summing in its own fixed order), as a small product's bits already
// depended on m through the packed kernels' partial-row tiles. The epilogue is the packed GEMM's (gemm.h): + bias, store the
// pre-activation Z, then the activation.
//
// When the cut-over applies: config.h's skinny_max_rows (measured there).
//
// A caller that multiplies by the same W many times (a PackedB, packed_b.h)
// may also hand the nt kernels W's rows interleaved (pack_nt_rows below), in
// the order the kernels read them for one row of A. That block reads L rows
// of W at once: laid out as W is, L streams a row (often a 4 KiB page) apart,
// which the prefetchers follow worse than one stream (784x1024 then
// 1024x1024 f32, W in L3: 86 against 91 GB/s in a C++ loop; groups of 2 or 4
// rows, 2 or 4 streams, measured no better than 8; Zen 4, 2026-12-07). The
// sums are the same, term for term: so are the bits. Blocks of several rows
// of A keep reading W's own rows (config.h: where the copy is made).
#pragma once

#include "gemm.h"
#include "math/activation.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::gemm {

template <class T>
struct SkinnyArgs {
    index_t m = 0, k = 0;
    index_t j0 = 0, j1 = 0;  // the columns of C this call computes
    const T* a = nullptr;    // m x k; nt: unit column stride
    index_t rs_a = 0, cs_a = 1;
    const T* b = nullptr;  // nt: row j of W at b + j * ld_b; nn: row p of B at b + p * ld_b
    index_t ld_b = 0;
    bool interleaved = false;  // nt: b holds W's rows as pack_nt_rows lays them out (ld_b unused)
    T* c = nullptr;  // m x n, unit column stride
    index_t rs_c = 0;
    T* z = nullptr;  // pre-activation, m x n, unit column stride; or nullptr
    index_t rs_z = 0;
    const T* bias = nullptr;  // n contiguous values, or nullptr
    math::Activation act = math::Activation::identity;
    T slope = T(0);
};

// W's rows (W is n x k, B = W^T) interleaved for the nt kernels, which read
// L = kNtLanes<T> lanes of L rows at a time (one 32-byte vector a row):
//
//   rows j0 .. j0+L-1 (j0 a multiple of L), one after another in memory:
//     [ w(j0, 0..L-1) | w(j0+1, 0..L-1) | ... | w(j0+L-1, 0..L-1) ]   lanes 0..L-1
//     [ w(j0, L..2L-1) | ...                                       ]   lanes L..2L-1
//     ...                                                              up to k_pad
//
//   w(j, l) at (j / L) L k_pad + (l / L) L L + (j % L) L + l % L, k_pad = k
//   rounded up to L; rows past n and lanes past k hold zeros. Every ISA's
//   nt kernel (the reference one too) reads this layout, so it does not go
//   stale when the ISA changes.
template <class T>
inline constexpr index_t kNtLanes = static_cast<index_t>(32 / sizeof(T));
template <class T>
constexpr index_t nt_rows_k_pad(index_t k) {  // a group's row length, k rounded up to L
    return (k + kNtLanes<T> - 1) / kNtLanes<T> * kNtLanes<T>;
}
template <class T>
std::size_t nt_rows_size(index_t k, index_t n);
template <class T>
void pack_nt_rows(MatrixRef<const T> w, T* dst);  // w: n x k, any strides; dst: nt_rows_size(k, n) elements

template <class T>
using SkinnyKernel = void (*)(const SkinnyArgs<T>&);

template <class T>
struct SkinnyKernels {
    SkinnyKernel<T> nt, nn;
    bool four_row_nt;  // nt in 4 x 4 blocks: config.h's skinny_max_rows takes more rows of narrow layers
};

// Defined in skinny.cpp (portable), skinny_avx2.cpp (-mavx2 -mfma) and
// skinny_avx512.cpp (the AVX-512 flags; the same bits as the AVX2 ones).
extern const SkinnyKernels<float> kSkinnyF32Ref;
extern const SkinnyKernels<double> kSkinnyF64Ref;
#if defined(FUSEDPROP_HAVE_AVX2)
extern const SkinnyKernels<float> kSkinnyF32Avx2;
extern const SkinnyKernels<double> kSkinnyF64Avx2;
#endif
#if defined(FUSEDPROP_HAVE_AVX512)
extern const SkinnyKernels<float> kSkinnyF32Avx512;
extern const SkinnyKernels<double> kSkinnyF64Avx512;
#endif

// The cut-over in force for a k x n B of elem_size-byte elements, in the nt
// layout or not, with the active kernels: config.h's skinny_max_rows, unless
// a test or a tuning run set another with set_skinny_max_rows (-1 restores
// the table; 0 turns the skinny path off).
int skinny_rows_cutover(index_t k, index_t n, std::size_t elem_size, bool nt);
void set_skinny_max_rows(int rows);

// Computes c = epilogue(a * b) and returns true when m is at most the active
// ISA's cut-over and the layouts fit (b with a unit stride one way or the
// other, c and ep.z with unit column strides); otherwise does nothing and
// returns false. Same contract as gemm() otherwise (called from it).
// nt_rows: b^T's rows as pack_nt_rows lays them out, or nullptr; the nt
// kernels read it in place of b for one row of A, with the same bits.
template <class T>
bool skinny_gemm(MatrixRef<const T> a, MatrixRef<const T> b, MatrixRef<T> c, const Epilogue<T>& ep,
                 int max_threads, const T* nt_rows = nullptr);

}  // namespace fusedprop::gemm
