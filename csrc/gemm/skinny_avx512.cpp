// The small-batch kernels of skinny_ymm.h with the AVX-512 flags: the
// same 256-bit code with 32 vector registers, so the nt kernel takes 4 x 4
// blocks (1.2-1.6x the 16-register kernel at 16 rows and more; skinny.h).
#include "skinny_ymm.h"

namespace fusedprop::gemm {

using skinny_ymm::by_activation;
using skinny_ymm::Nn;
using skinny_ymm::Nt;

const SkinnyKernels<float> kSkinnyF32Avx512 = {&by_activation<float, Nt>, &by_activation<float, Nn>, skinny_ymm::kFourRowBlocks};
const SkinnyKernels<double> kSkinnyF64Avx512 = {&by_activation<double, Nt>, &by_activation<double, Nn>, skinny_ymm::kFourRowBlocks};

}  // namespace fusedprop::gemm
