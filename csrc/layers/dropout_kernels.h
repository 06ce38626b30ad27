// The SIMD kernels behind dropout_apply, each in its own translation unit
// with its own flags: AVX2 (dropout_avx2.cpp) runs 8 Philox blocks per
// iteration, one in each 32-bit lane, so the group of 32 elements they cover
// (dropout.h) is 4 vectors of 8 words; AVX-512 (dropout_avx512.cpp) runs two
// groups at once in 16 lanes.
#pragma once

#include <cstdint>

#include "layers/dropout.h"

namespace fusedprop::layers::detail {

// Elements [begin, end) with begin and end multiples of 32; the bits of the portable path.
void dropout_groups_avx2(const float* in, float* out, index_t begin, index_t end, std::uint32_t threshold,
                         float scale, DropoutKey key);
void dropout_groups_avx2(const double* in, double* out, index_t begin, index_t end, std::uint32_t threshold,
                         double scale, DropoutKey key);

// Elements [begin, end) of one group (a ragged head or end: a row of a block,
// dropout_apply_range), its 8 Philox blocks drawn with AVX2; the bits of the
// portable path.
template <class T>
void dropout_partial_group_avx2(const T* in, T* out, index_t begin, index_t end, std::uint32_t threshold, T scale,
                                DropoutKey key);

// Elements [begin, end), multiples of 64 (pairs of groups) whose blocks share
// their high counter word (the caller checks); the bits of the portable path.
void dropout_group_pairs_avx512(const float* in, float* out, index_t begin, index_t end, std::uint32_t threshold,
                                float scale, DropoutKey key);
void dropout_group_pairs_avx512(const double* in, double* out, index_t begin, index_t end, std::uint32_t threshold,
                                double scale, DropoutKey key);

}  // namespace fusedprop::layers::detail
