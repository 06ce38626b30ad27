// f64 microkernel, 6 x 8 tile, AVX2 + FMA (compiled with -mavx2 -mfma).
// The kernels are templates over the dtype in ukernel_avx2.h (registers,
// k loop, write-back); this file instantiates them for doubles.
#include "ukernel_avx2.h"

namespace fusedprop::gemm {
namespace {

template <math::Activation A>
void ukernel_f64_6x8_avx2(const UkernelArgs<double>& p) {
    avx2::ukernel_6rows_avx2<double, A>(p);
}

}  // namespace

const UkernelTable<double> kUkernelF64Avx2 = {avx2::kMR, 8, "f64_6x8_avx2",
                                           FUSEDPROP_UKERNEL_TABLE(ukernel_f64_6x8_avx2), avx2::rows_table<double>(), {}};

}  // namespace fusedprop::gemm
