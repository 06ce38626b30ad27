// f32 microkernel, 6 x 16 tile, AVX2 + FMA (compiled with -mavx2 -mfma).
// The kernels are templates over the dtype in ukernel_avx2.h (registers,
// k loop, write-back); this file instantiates them for floats.
#include "ukernel_avx2.h"

namespace fusedprop::gemm {
namespace {

template <math::Activation A>
void ukernel_f32_6x16_avx2(const UkernelArgs<float>& p) {
    avx2::ukernel_6rows_avx2<float, A>(p);
}

}  // namespace

const UkernelTable<float> kUkernelF32Avx2 = {avx2::kMR, 16, "f32_6x16_avx2",
                                           FUSEDPROP_UKERNEL_TABLE(ukernel_f32_6x16_avx2), avx2::rows_table<float>(), {}};

}  // namespace fusedprop::gemm
