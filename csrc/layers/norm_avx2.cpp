// The normalisation loops (norm_loops.h) compiled with AVX2 flags and
// -ffp-contract=off (same bits as the baseline copy); entered only after
// norm_dispatch.cpp has checked the CPU.
#include "layers/norm_kernels.h"

namespace fusedprop::layers::detail {

template <class T>
NormKernels<T> avx2_norm_kernels() {
    return FUSEDPROP_NORM_KERNELS(T);
}

template NormKernels<float> avx2_norm_kernels<float>();
template NormKernels<double> avx2_norm_kernels<double>();

}  // namespace fusedprop::layers::detail
