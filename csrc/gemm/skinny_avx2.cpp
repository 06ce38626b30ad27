// The small-batch kernels of skinny_ymm.h with -mavx2 -mfma: 16 vector
// registers, so the nt kernel's blocks hold L accumulators.
#include "skinny_ymm.h"

namespace fusedprop::gemm {

const SkinnyKernels<float> kSkinnyF32Avx2 = skinny_ymm::table<float>();
const SkinnyKernels<double> kSkinnyF64Avx2 = skinny_ymm::table<double>();

}  // namespace fusedprop::gemm
