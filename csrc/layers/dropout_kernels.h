// The AVX2 kernel behind dropout_apply (dropout_avx2.cpp, compiled with
// -mavx2): 8 Philox blocks per iteration, one in each 32-bit lane, so the
// group of 32 elements they cover (dropout.h) is 4 vectors of 8 words.
#pragma once

#include <cstdint>

#include "layers/dropout.h"

namespace fusedprop::layers::detail {

// Elements [begin, end) with begin and end multiples of 32; the bits of the portable path.
void dropout_groups_avx2(const float* in, float* out, index_t begin, index_t end, std::uint32_t threshold,
                         float scale, DropoutKey key);
void dropout_groups_avx2(const double* in, double* out, index_t begin, index_t end, std::uint32_t threshold,
                         double scale, DropoutKey key);

}  // namespace fusedprop::layers::detail
