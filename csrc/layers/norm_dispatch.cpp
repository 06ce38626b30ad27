// Run-time choice of the normalisation loops' copy (norm_kernels.h); this
// file holds the baseline copy.
#include "layers/norm_kernels.h"
#include "runtime/cpu_features.h"

namespace fusedprop::layers::detail {
namespace {

template <class T>
NormKernels<T> kernels_for(runtime::Isa isa) {
    switch (isa) {
#ifdef FUSEDPROP_HAVE_AVX2
        case runtime::Isa::avx512:
        case runtime::Isa::avx2: return avx2_norm_kernels<T>();
#endif
        default: return FUSEDPROP_NORM_KERNELS(T);
    }
}

}  // namespace

template <class T>
const NormKernels<T>& norm_kernels() {
    static const NormKernels<T> chosen = kernels_for<T>(runtime::default_isa());
    return chosen;
}

template const NormKernels<float>& norm_kernels<float>();
template const NormKernels<double>& norm_kernels<double>();

}  // namespace fusedprop::layers::detail
