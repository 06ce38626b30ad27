// Elementwise activation kernels on strided matrices: the forward Y = act(X)
// and the backward dZ = dY * act'(saved), with the column sums of dZ (the
// bias gradient of a linear layer) in the same pass.
//
// Dispatch: the AVX2+FMA kernels (activation_kernels_avx2.cpp) when the CPU
// has them, else the portable reference (math::scalar::). FUSEDPROP_ISA=reference
// in the environment forces the portable path; set_activation_isa() switches
// at run time (tests).
//
// Threads: large problems are cut into tiles of a fixed size that depends
// only on the shape, run on runtime::parallel_for; every output element and
// every column sum is computed the same way whatever the thread count, so
// the results are bitwise identical for 1..n threads.
#pragma once

#include <string>

#include "math/activation.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::layers {

// Y = act(X), elementwise. x and y have the same shape; any strides (y's must
// not make two elements alias). y may be x itself (same data and strides).
template <class T>
void activation_forward(math::Activation a, T negative_slope, MatrixRef<const T> x, MatrixRef<T> y);

// dZ = dY * act'(.) from what math::saved_for(a) keeps (Y or Z; ignored and may be
// empty for identity); grad_z may be grad_y itself (same data and strides).
// relu and leaky_relu select, they do not multiply:
// dY = Inf where Y <= 0 gives 0, as in PyTorch.
// column_sums (nullptr: skip) receives, for each column j, the sum of dZ(:, j)
// over the rows, added in a fixed order (row tiles of a size that depends on
// the shape only, partial sums combined in tile order): bitwise the same for
// every thread count. It is overwritten, not accumulated into; zero rows give
// zeros. For identity with column_sums, grad_z may be empty ({}, data ==
// nullptr): only the sums are computed (the same bits), dZ being dY.
template <class T>
void activation_backward(math::Activation a, T negative_slope, MatrixRef<const T> grad_y, MatrixRef<const T> saved,
                         MatrixRef<T> grad_z, T* column_sums);

extern template void activation_forward<float>(math::Activation, float, MatrixRef<const float>, MatrixRef<float>);
extern template void activation_forward<double>(math::Activation, double, MatrixRef<const double>, MatrixRef<double>);
extern template void activation_backward<float>(math::Activation, float, MatrixRef<const float>, MatrixRef<const float>,
                                                MatrixRef<float>, float*);
extern template void activation_backward<double>(math::Activation, double, MatrixRef<const double>,
                                                 MatrixRef<const double>, MatrixRef<double>, double*);

// x[k] = e^x[k] for k < n, in place, on the calling thread (the softmax of
// the cross-entropy loss): activation_avx2.h's exp (a few ulps) where the
// kernels above run AVX2, std::exp otherwise.
template <class T>
void exp_in_place(T* x, index_t n);

extern template void exp_in_place<float>(float*, index_t);
extern template void exp_in_place<double>(double*, index_t);

// Which implementation the kernels above use: "avx2" or "reference".
std::string activation_isa();
// "auto" (what the CPU supports, unless FUSEDPROP_ISA=reference), "avx2" or
// "reference". Throws std::invalid_argument for an unknown name or an ISA
// this CPU or build lacks.
void set_activation_isa(const std::string& name);

}  // namespace fusedprop::layers
