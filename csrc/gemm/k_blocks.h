// How K is cut into blocks: shared by the driver and by pre-packed B
// (packed_b.h), which must cut it the same way.
#pragma once

#include "runtime/matrix_ref.h"

namespace fusedprop::gemm {

// The K block size for a product of depth k: blocks as equal as possible, at
// most KC each, except that a last sliver under KC/4 is spread over the
// others (up to 1.25 KC each): a sliver costs a whole extra pass over C for
// little work (k = 784: 3 blocks of 262, not 256 + 256 + 256 + 16). Depends
// on k alone, so the summation order stays the same for every thread count.
inline index_t k_block(index_t k, index_t KC) {
    index_t blocks = (k + KC - 1) / KC;
    if (blocks > 1 && k - (blocks - 1) * KC < KC / 4) --blocks;
    return (k + blocks - 1) / blocks;
}

}  // namespace fusedprop::gemm
