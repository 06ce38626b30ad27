// The fused dense-layer backward:
//
//   dZ = dY * act'(saved)         one pass, which also sums db = sum_i dZ(i, :)
//   dW = dZ^T x                   packed GEMM, dZ^T read through strides
//   dX = dZ W                     packed GEMM (skipped when dx.data == nullptr)
//
// The first pass is layers::activation_backward (activation_kernels.h). For
// identity dZ is dY itself: the only extra pass is the db column sums. db is
// summed in a fixed order that depends on the shape only, so every gradient
// is bitwise the same for every thread count.
#pragma once

#include "math/activation.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::layers {

// dy, saved: M x N (saved: Y or Z per math::saved_for(act); ignored for identity).
// x: M x K, w: N x K. dx: M x K or {} to skip; dw: N x K; db: N contiguous.
template <class T>
void linear_backward(MatrixRef<const T> dy, MatrixRef<const T> x, MatrixRef<const T> w, MatrixRef<const T> saved,
                     math::Activation act, T negative_slope, MatrixRef<T> dx, MatrixRef<T> dw, T* db, int max_threads = 0);

}  // namespace fusedprop::layers
