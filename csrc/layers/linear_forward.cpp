#include "linear_forward.h"

#include <cassert>

#include "gemm/gemm.h"

namespace fusedprop::layers {

template <class T>
void linear_forward(MatrixRef<const T> x, MatrixRef<const T> w, const T* bias, index_t bias_stride, math::Activation act,
                    T negative_slope, MatrixRef<T> y, MatrixRef<T> z, int max_threads,
                    const gemm::PackedB<T>* packed_wt) {
    assert(x.cols == w.cols && y.rows == x.rows && y.cols == w.rows);
    gemm::Epilogue<T> ep;
    ep.activation = act;
    ep.negative_slope = negative_slope;
    ep.bias = bias;
    ep.bias_stride = bias_stride;
    ep.z = z;
    // Z = x (M x K) * W^T (K x N): W^T is W seen through swapped strides.
    gemm::gemm<T>(x, w.transposed(), y, ep, max_threads, packed_wt);
}

template void linear_forward<float>(MatrixRef<const float>, MatrixRef<const float>, const float*, index_t, math::Activation,
                                    float, MatrixRef<float>, MatrixRef<float>, int, const gemm::PackedB<float>*);
template void linear_forward<double>(MatrixRef<const double>, MatrixRef<const double>, const double*, index_t,
                                     math::Activation, double, MatrixRef<double>, MatrixRef<double>, int,
                                     const gemm::PackedB<double>*);

}  // namespace fusedprop::layers
