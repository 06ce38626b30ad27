// The fused dense-layer backward:
//
//   dZ = dY * act'(saved)         one pass, which also sums db = sum_i dZ(i, :)
//   dW = dZ^T x                   packed GEMM, dZ^T read through strides
//   dX = dZ W                     packed GEMM (skipped when dx.data == nullptr)
//
// For identity dZ is dY itself: the only extra pass is the db column sums.
// db is summed row by row in a fixed order (in double for float32), split
// across threads by columns only, so every gradient is bitwise the same for
// every thread count.
#pragma once

#include "activation.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::layers {

// dy, saved: M x N (saved: Y or Z per saved_for(act); ignored for identity).
// x: M x K, w: N x K. dx: M x K or {} to skip; dw: N x K; db: N contiguous.
template <class T>
void linear_backward(MatrixRef<const T> dy, MatrixRef<const T> x, MatrixRef<const T> w, MatrixRef<const T> saved,
                     Activation act, T negative_slope, MatrixRef<T> dx, MatrixRef<T> dw, T* db, int max_threads = 0);

// The elementwise pass alone, over columns [j0, j1) of every row:
// dz = dy * act'(saved) (relu and leaky_relu by select), db_acc[j] += dz
// row by row. Swappable for the activation-kernel library's array kernel.
// The AVX2 version returns false where it does not apply (a dz with a
// non-unit column stride), and then the portable one runs.
template <class T>
void dz_db_portable(MatrixRef<const T> dy, MatrixRef<const T> saved, Activation act, T negative_slope,
                    MatrixRef<T> dz, double* db_acc, index_t j0, index_t j1);
#if defined(FUSEDPROP_HAVE_AVX2)
template <class T>
bool dz_db_avx2(MatrixRef<const T> dy, MatrixRef<const T> saved, Activation act, T negative_slope, MatrixRef<T> dz,
                double* db_acc, index_t j0, index_t j1);
#endif

}  // namespace fusedprop::layers
