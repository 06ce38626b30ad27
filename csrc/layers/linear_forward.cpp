#include "linear_forward.h"

#include <cassert>

#include "gemm/gemm.h"

namespace fusedprop::layers {
namespace {

template <class T>
gemm::Epilogue<T> epilogue(const T* bias, index_t bias_stride, math::Activation act, T negative_slope,
                           MatrixRef<T> z) {
    gemm::Epilogue<T> ep;
    ep.activation = act;
    ep.negative_slope = negative_slope;
    ep.bias = bias;
    ep.bias_stride = bias_stride;
    ep.z = z;
    return ep;
}

}  // namespace

template <class T>
void linear_forward(MatrixRef<const T> x, MatrixRef<const T> w, const T* bias, index_t bias_stride, math::Activation act,
                    T negative_slope, MatrixRef<T> y, MatrixRef<T> z, int max_threads,
                    const gemm::PackedB<T>* packed_wt) {
    assert(x.cols == w.cols && y.rows == x.rows && y.cols == w.rows);
    const gemm::Epilogue<T> ep = epilogue(bias, bias_stride, act, negative_slope, z);
    // Z = x (M x K) * W^T (K x N): W^T is W seen through swapped strides.
    gemm::gemm<T>(x, w.transposed(), y, ep, max_threads, packed_wt);
}

template <class T>
void linear_dropout_forward(MatrixRef<const T> x, MatrixRef<const T> w, const T* bias, math::Activation act,
                            T negative_slope, MatrixRef<T> y, MatrixRef<T> z, double p, DropoutKey key, T* d,
                            int max_threads) {
    assert(x.cols == w.cols && y.rows == x.rows && y.cols == w.rows && y.row_major_contiguous());
    const index_t n = y.cols;
    // The mask is a function of the element's index in y (dropout.h), so
    // every block gets the bits one pass over y would give it.
    auto drop = [&](index_t i0, index_t i1, index_t j0, index_t j1) {
        if (j0 == 0 && j1 == n) return dropout_apply_range<T>(y.data, d, i0 * n, i1 * n, p, key);  // whole rows
        for (index_t i = i0; i < i1; ++i) dropout_apply_range<T>(y.data, d, i * n + j0, i * n + j1, p, key);
    };
    const runtime::FunctionRef<void(index_t, index_t, index_t, index_t)> on_block(drop);
    gemm::Epilogue<T> ep = epilogue(bias, 1, act, negative_slope, z);
    ep.on_block = &on_block;
    gemm::gemm<T>(x, w.transposed(), y, ep, max_threads);
}

template void linear_forward<float>(MatrixRef<const float>, MatrixRef<const float>, const float*, index_t, math::Activation,
                                    float, MatrixRef<float>, MatrixRef<float>, int, const gemm::PackedB<float>*);
template void linear_forward<double>(MatrixRef<const double>, MatrixRef<const double>, const double*, index_t,
                                     math::Activation, double, MatrixRef<double>, MatrixRef<double>, int,
                                     const gemm::PackedB<double>*);

template void linear_dropout_forward<float>(MatrixRef<const float>, MatrixRef<const float>, const float*,
                                            math::Activation, float, MatrixRef<float>, MatrixRef<float>, double,
                                            DropoutKey, float*, int);
template void linear_dropout_forward<double>(MatrixRef<const double>, MatrixRef<const double>, const double*,
                                             math::Activation, double, MatrixRef<double>, MatrixRef<double>, double,
                                             DropoutKey, double*, int);

}  // namespace fusedprop::layers
