// f32 microkernel, 12 x 32 tile (12 rows of 2 ZMM vectors), AVX-512
// (compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma). The
// kernels are templates in ukernel_avx512.h; this file instantiates them for
// floats, with kernels for partial panels of 1-11 rows
// and for column-edge tiles of at most half the width (UkernelTable::half),
// and on direct (unpacked) operands (UkernelTable::direct).
#include "ukernel_avx512.h"

namespace fusedprop::gemm {
namespace {

constexpr int kMR = 12, kNV = 2;

template <math::Activation A>
void ukernel_f32_12x32_avx512(const UkernelArgs<float>& p) {
    avx512::ukernel_avx512<float, kMR, kNV, kMR, A>(p);
}

template <math::Activation A>
void ukernel_f32_12x32_avx512_half(const UkernelArgs<float>& p) {
    avx512::ukernel_half<float, kMR, kNV, A>(p);
}

}  // namespace

const UkernelTable<float> kUkernelF32Avx512 = {kMR, kNV * 16, "f32_12x32_avx512",
                                               FUSEDPROP_UKERNEL_TABLE(ukernel_f32_12x32_avx512),
                                               avx512::rows_table<float, kMR, kNV>(),
                                               FUSEDPROP_UKERNEL_TABLE(ukernel_f32_12x32_avx512_half),
                                               avx512::direct_table<float, kMR, kNV>(),
                                               &avx512::ukernel_direct_half<float, kMR, kNV>,
                                               avx512::row_a_table<float, kMR, kNV>()};

}  // namespace fusedprop::gemm
