// Internal to the activation kernels: the per-ISA contiguous row kernels the
// tiling code in activation_kernels.cpp calls. Not for other modules.
#pragma once

#include "math/activation.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::layers::detail {

template <class T>
struct ActivationRowKernels {
    // y[k] = act(x[k]) for k < n; y may equal x.
    void (*forward)(math::Activation a, T negative_slope, const T* x, T* y, index_t n);
    // gz[k] = gy[k] * act'(saved[k]) (selects for relu/leaky_relu; saved
    // unused for identity); then, if colsum != nullptr, colsum[k] += gz[k].
    void (*backward)(math::Activation a, T negative_slope, const T* gy, const T* saved, T* gz, index_t n, T* colsum);
    // x[k] = e^x[k] for k < n, in place.
    void (*exp)(T* x, index_t n);
};

template <class T>
ActivationRowKernels<T> reference_row_kernels();

#ifdef FUSEDPROP_HAVE_AVX2
template <class T>
ActivationRowKernels<T> avx2_row_kernels();
#endif

}  // namespace fusedprop::layers::detail
