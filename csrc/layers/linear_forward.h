// The fused dense-layer forward: Y = act(x W^T + b) in one GEMM call, the
// bias and activation applied in the microkernel's write-back.
#pragma once

#include "layers/dropout.h"
#include "math/activation.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::gemm {
template <class T>
class PackedB;
}

namespace fusedprop::layers {

// x: M x K (any strides), w: N x K (out_features x in_features, any strides;
// read as W^T through its strides, never copied), bias: N values at
// bias[j * bias_stride] or nullptr, y: M x N. z: if z.data != nullptr, the
// pre-activation Z = x W^T + b is stored there too (what gelu, gelu_tanh and
// silu save for the backward). max_threads 0: all pool threads.
// packed_wt: W^T packed ahead of time (gemm/packed_b.h) or nullptr; the
// result is bitwise the same either way.
template <class T>
void linear_forward(MatrixRef<const T> x, MatrixRef<const T> w, const T* bias, index_t bias_stride, math::Activation act,
                    T negative_slope, MatrixRef<T> y, MatrixRef<T> z = {}, int max_threads = 0,
                    const gemm::PackedB<T>* packed_wt = nullptr);

// A Linear followed by Dropout(p) in training: linear_forward into y, then
// d = dropout(y) with key (dropout.h), applied block by block inside the
// GEMM as each block of y's rows is final and still in cache (gemm.h,
// on_block), instead of in a pass of its own over y. The bits of
// linear_forward then dropout_apply. y and d: M x N, C-contiguous; d may be
// y (then only the dropped-out values remain, for a caller that no longer
// needs y).
template <class T>
void linear_dropout_forward(MatrixRef<const T> x, MatrixRef<const T> w, const T* bias, math::Activation act,
                            T negative_slope, MatrixRef<T> y, MatrixRef<T> z, double p, DropoutKey key, T* d,
                            int max_threads = 0);

}  // namespace fusedprop::layers
