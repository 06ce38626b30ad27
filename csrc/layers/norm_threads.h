// How the normalisation passes (and the elementwise walks after them,
// elementwise_chain.cpp) split their work over the thread pool: blocks of
// rows (LayerNorm, the walks) or of columns (BatchNorm, the weight
// gradients). Every column is summed down the rows by one task and every
// row by one task, so no split changes a bit. Baseline code only: the ISA
// copies of the loops (norm_loops.h) do not include it.
#pragma once

#include <algorithm>
#include <cstddef>

#include "layers/norm_reduce.h"
#include "runtime/thread_pool.h"

namespace fusedprop::layers::detail {

// Elements below which a normalisation call stays on the calling thread.
inline constexpr index_t kNormParallelFrom = index_t(1) << 16;

inline int norm_threads(index_t elements, int max_threads) {
    return elements < kNormParallelFrom ? 1 : max_threads;
}

// Columns per block: all of them up to kNormColBlock on one thread; on
// several, enough blocks for each thread to get one (multiples of 16).
inline index_t norm_block_width(index_t n, int threads) {
    if (threads <= 1) return kNormColBlock;
    const index_t share = (n + threads - 1) / threads;
    return std::min(kNormColBlock, std::max<index_t>(16, (share + 15) / 16 * 16));
}

// fn(b0, b1) for the blocks [b0, b1) of `block` units that cover [0, total):
// on the pool (at most max_threads, 0: all) when `parallel` and there are
// several, else in order on the calling thread.
template <class F>
void for_blocks(index_t total, index_t block, bool parallel, int max_threads, F&& fn) {
    const index_t blocks = (total + block - 1) / block;
    if (blocks <= 1 || !parallel) {
        for (index_t b = 0; b < blocks; ++b) fn(b * block, std::min(total, (b + 1) * block));
        return;
    }
    runtime::parallel_for(
        static_cast<std::size_t>(blocks),
        [&](std::size_t b) {
            const index_t b0 = static_cast<index_t>(b) * block;
            fn(b0, std::min(total, b0 + block));
        },
        max_threads);
}

// fn(r0, r1) for blocks of `rows` rows of an m x n problem, on the pool when it is large.
template <class F>
void row_blocks(index_t m, index_t n, index_t rows, int max_threads, F&& fn) {
    const int threads = norm_threads(m * n, max_threads);
    for_blocks(m, rows, threads != 1, threads, fn);
}

// fn(c0, c1) for each block of columns, on the pool when the problem is large.
template <class F>
void column_blocks(index_t m, index_t n, int max_threads, F&& fn) {
    int threads = norm_threads(m * n, max_threads);
    if (threads == 0) threads = runtime::get_num_threads();
    for_blocks(n, norm_block_width(n, threads), threads > 1, threads, fn);
}

}  // namespace fusedprop::layers::detail
