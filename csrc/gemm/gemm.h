// The public C++ entry of the packed GEMM.
//
//   gemm(a, b, c, ep, max_threads):   C = epilogue(A * B)
//
//   a: m x k, b: k x n, c: m x n, each a strided view (any strides for a and
//   b, including negative and zero; c and ep.z must not alias a, b or each
//   other, and must not have zero strides).
//   epilogue(Z) = act(Z + bias) elementwise, bias[j] added to column j; with
//   ep.z set, Z + bias (the pre-activation) is also stored there (m x n).
//   k == 0 gives epilogue(0); m == 0 or n == 0 returns at once.
//   ep.on_block, if set, is called on each block of C once its values are
//   final (after the epilogue), while it is still in cache, from pool
//   threads or the caller, several blocks at once: an elementwise op that
//   follows the layer (Dropout) runs there instead of in a pass of its own
//   over C. Blocks are disjoint and cover C; their shapes depend on the
//   kernels and the thread split, so what it does to an element may depend
//   only on the element's index.
//
//   packed_b: b packed ahead of time (packed_b.h), or nullptr. Used when it
//   was packed from this b for the active kernels; b must still be given
//   (a small batch reads it directly, skinny.h, and a stale packing is
//   ignored). Either way the result is bitwise the same.
//
//   max_threads: at most this many threads (0: runtime::get_num_threads()).
//   Problems under config.h's flop threshold stay on the calling thread.
//   The result is bitwise the same for every thread count.
//
// Thread safety: may be called from several threads at once (workspaces are
// per thread; the pool runs one job at a time, others run on their caller).
#pragma once

#include "math/activation.h"
#include "runtime/function_ref.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::gemm {

template <class T>
struct Epilogue {
    math::Activation activation = math::Activation::identity;
    T negative_slope = T(0.01);
    const T* bias = nullptr;  // n values, or nullptr for none
    index_t bias_stride = 1;  // in elements
    MatrixRef<T> z{};         // z.data != nullptr: also store the pre-activation
    // Rows [i0, i1) x columns [j0, j1) of C are final (see above); or nullptr.
    const runtime::FunctionRef<void(index_t i0, index_t i1, index_t j0, index_t j1)>* on_block = nullptr;
};

template <class T>
class PackedB;

template <class T>
void gemm(MatrixRef<const T> a, MatrixRef<const T> b, MatrixRef<T> c, const Epilogue<T>& ep = {},
          int max_threads = 0, const PackedB<T>* packed_b = nullptr);

extern template void gemm<float>(MatrixRef<const float>, MatrixRef<const float>, MatrixRef<float>,
                                 const Epilogue<float>&, int, const PackedB<float>*);
extern template void gemm<double>(MatrixRef<const double>, MatrixRef<const double>, MatrixRef<double>,
                                  const Epilogue<double>&, int, const PackedB<double>*);

}  // namespace fusedprop::gemm
