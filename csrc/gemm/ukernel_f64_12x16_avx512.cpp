// f64 microkernel, 12 x 16 tile (12 rows of 2 ZMM vectors), AVX-512
// (compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma). The
// kernels are templates in ukernel_avx512.h; this file instantiates them for
// doubles, with kernels for partial panels of 1-11 rows
// and for column-edge tiles of at most half the width (UkernelTable::half),
// and on direct (unpacked) operands (UkernelTable::direct).
#include "ukernel_avx512.h"

namespace fusedprop::gemm {
namespace {

constexpr int kMR = 12, kNV = 2;

template <math::Activation A>
void ukernel_f64_12x16_avx512(const UkernelArgs<double>& p) {
    avx512::ukernel_avx512<double, kMR, kNV, kMR, A>(p);
}

template <math::Activation A>
void ukernel_f64_12x16_avx512_half(const UkernelArgs<double>& p) {
    avx512::ukernel_half<double, kMR, kNV, A>(p);
}

}  // namespace

const UkernelTable<double> kUkernelF64Avx512 = {kMR, kNV * 8, "f64_12x16_avx512",
                                                FUSEDPROP_UKERNEL_TABLE(ukernel_f64_12x16_avx512),
                                                avx512::rows_table<double, kMR, kNV>(),
                                                FUSEDPROP_UKERNEL_TABLE(ukernel_f64_12x16_avx512_half),
                                               avx512::direct_table<double, kMR, kNV>(),
                                               &avx512::ukernel_direct_half<double, kMR, kNV>,
                                               avx512::row_a_table<double, kMR, kNV>()};

}  // namespace fusedprop::gemm
