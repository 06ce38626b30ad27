// Fixed-order reductions shared by the normalisation kernels: the order of
// the additions depends on the length only, never on the thread count, so
// every statistic is bitwise reproducible.
#pragma once

#include <cstddef>

#include "runtime/matrix_ref.h"

namespace fusedprop::layers::detail {

// Eight interleaved partial sums (so the compiler can keep them in one
// vector register), added pairwise at the end: faster than one running sum
// and ~8x smaller rounding error on long rows.
template <class T, class F>
T lane_sum(index_t n, F&& term) {
    T acc[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    index_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += term(i + l);
    for (; i < n; ++i) acc[i & 7] += term(i);
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// The widest block of columns of the column-wise (batch-norm, weight-gradient)
// passes, which walk a block down the rows. Wide blocks read each row in one
// run: blocks of 64 columns, 256 B of a row then a jump of the row stride,
// fall in a few L1 sets at power-of-two strides (BatchNorm over 256 x 512
// f32: 1.4x slower than 512-column blocks; Zen 4, 2026-12-07). Each column
// is summed in row order whatever the block, so the width never changes bits.
inline constexpr index_t kNormColBlock = 512;
}  // namespace fusedprop::layers::detail
