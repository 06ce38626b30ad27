// The five loops around the microkernel (driver.cpp); the entry is gemm()
// in gemm.h. Exposed here for tests and tools only.
#pragma once

#include "config.h"
#include "gemm.h"

namespace fusedprop::gemm {

// How a GEMM of this shape is split across `threads` threads: ic blocks of
// A (rows) times jr chunks of B micro-panels (columns). Never split over K.
struct Partition {
    index_t n_ic;  // row blocks (a multiple of MR rows but the last; a task walks its block in MC steps)
    index_t n_jr;  // column chunks of NR micro-panels within one NC block
};

Partition partition(index_t m, index_t nc, const BlockSizes& bs, int threads);

// Direct operands (config.h, ukernel.h): -1 the measured rule, 0 never, 1
// wherever the layouts and the kernels allow (for tests: the bits are the
// same either way).
void set_direct_operands(int mode);
int direct_operands_mode();

}  // namespace fusedprop::gemm
