// The optimizer loops (update_loops.h) compiled with AVX512 flags and
// -ffp-contract=off (same bits as the baseline copy); entered only after
// update_dispatch.cpp has checked the CPU.
#include "optim/update_kernels.h"

namespace fusedprop::optim::detail {

template <class T>
UpdateKernels<T> avx512_update_kernels() {
    return {&sgd_update<T>, &adam_update<T>, &sum_of_squares<T>};
}

template UpdateKernels<float> avx512_update_kernels<float>();
template UpdateKernels<double> avx512_update_kernels<double>();

}  // namespace fusedprop::optim::detail
