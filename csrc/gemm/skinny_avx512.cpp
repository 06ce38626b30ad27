// The small-batch kernels of skinny_ymm.h with the AVX-512 flags: the
// same 256-bit code with 32 vector registers, so the nt kernel takes 4 x 4
// blocks: 1.3-2.2x the 16-register kernel at 4 to 16 rows (Zen 4,
// 2026-12-07), with the same bits.
#include "skinny_ymm.h"

namespace fusedprop::gemm {

const SkinnyKernels<float> kSkinnyF32Avx512 = skinny_ymm::table<float>();
const SkinnyKernels<double> kSkinnyF64Avx512 = skinny_ymm::table<double>();

}  // namespace fusedprop::gemm
