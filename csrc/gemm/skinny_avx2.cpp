// The small-batch kernels of skinny_ymm.h with -mavx2 -mfma: 16 vector
// registers, so the nt kernel's blocks hold L accumulators.
#include "skinny_ymm.h"

namespace fusedprop::gemm {

using skinny_ymm::by_activation;
using skinny_ymm::Nn;
using skinny_ymm::Nt;

const SkinnyKernels<float> kSkinnyF32Avx2 = {&by_activation<float, Nt>, &by_activation<float, Nn>, skinny_ymm::kFourRowBlocks};
const SkinnyKernels<double> kSkinnyF64Avx2 = {&by_activation<double, Nt>, &by_activation<double, Nn>, skinny_ymm::kFourRowBlocks};

}  // namespace fusedprop::gemm
