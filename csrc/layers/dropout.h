// Inverted dropout: out = in * (keep ? 1 / (1 - p) : 0), the keep decision
// of element e (its row-major index) drawn from Philox4x32-10. Elements come
// in groups of 32 that share 8 Philox blocks, so that a SIMD register of 8
// lanes holds the words of 8 consecutive elements (no transpose):
//
//   block   = (e / 32) * 8 + e % 8,   word = (e / 8) % 4
//   counter = (block low 32 bits, block high 32 bits, step, stream)
//   key     = (seed low 32 bits, seed high 32 bits)
//   keep    <=>  that word >= floor(p * 2^32)
//
// The forward and the backward are the same call (the backward multiplies
// dY by the same mask), so the mask is regenerated, never stored: it costs
// one Philox per four elements, against a byte per element kept alive from
// the forward to the backward. Bitwise the same for every thread count.
#pragma once

#include <cstdint>

#include "runtime/matrix_ref.h"

namespace fusedprop::layers {

struct DropoutKey {
    std::uint64_t seed = 0;
    std::uint32_t stream = 0;  // one per Dropout module
    std::uint32_t step = 0;    // the module's forward count
};

// The integer threshold and the scale for p in [0, 1) (checked by the caller).
std::uint32_t dropout_threshold(double p);

// in, out: n contiguous elements (out may be in). max_threads 0: all.
template <class T>
void dropout_apply(const T* in, T* out, index_t n, double p, DropoutKey key, int max_threads = 0);

// The elements [begin, end) of a tensor of at least `end` elements (in, out:
// its first element), on the calling thread: the bits dropout_apply gives
// those elements (the mask depends on the element's index, not on the call).
template <class T>
void dropout_apply_range(const T* in, T* out, index_t begin, index_t end, double p, DropoutKey key);

extern template void dropout_apply<float>(const float*, float*, index_t, double, DropoutKey, int);
extern template void dropout_apply<double>(const double*, double*, index_t, double, DropoutKey, int);
extern template void dropout_apply_range<float>(const float*, float*, index_t, index_t, double, DropoutKey);
extern template void dropout_apply_range<double>(const double*, double*, index_t, index_t, double, DropoutKey);

}  // namespace fusedprop::layers
