// Every GEMM block size in one table: register tile (MR x NR) and cache
// blocks (MC, KC, NC, NB) per dtype and ISA. Tuned on AMD EPYC Zen 3 (32 KiB
// L1d, 512 KiB L2 per core, 32 MiB L3):
//
//   KC: a KC x NR micro-panel of packed B and an MR x KC micro-panel of A
//       stay in L1 while the microkernel runs (f32: 20 KiB + 7.5 KiB at
//       KC = 320; a longer k loop per call halves the share of the tile's
//       load/store, 1-2% over KC = 256. f64 measured best at 256).
//   MC: the MC x KC block of packed A lives in L2 (60 KiB f32, 96 KiB
//       f64). Small: at m = n = k = 2048, 48 measured 3-5% faster than 144
//       (f32) or 96 (f64); 72 and 96, tried with slabs, fell between.
//       Likely because C rows at a power-of-two stride fall into a few L2
//       sets, where an MC block's rows evict A and B (48 rows put 6 lines
//       in a set, under L2's 8 ways).
//   NB: the macro-kernel sweeps its B block in slabs of NB columns (a KC x NB
//       slab of packed B, 320 KiB f32 / 256 KiB f64, in L2): every A
//       micro-panel meets the slab's NB / NR B micro-panels while it sits in
//       L1, and C is written along rows. NB = NR is the BLIS order (one B
//       micro-panel in L1, A streamed from L2, C tiles down a column). With
//       MC = 48, slabs added 1-3% at m = n = k = 2048 (f32 0.99x -> 1.02x
//       OpenBLAS); with MC = 144 they alone gave 4-8%. The reference kernel
//       keeps the BLIS order.
//   NC: the KC x NC block of packed B lives in L3: 2 MiB, a share of the
//       32 MiB L3 that other cores (and, here, other VMs) leave alone;
//       4 MiB blocks made f64 at n = 2048 10-15% slower.
//
// Determinism: KC and k fix the order in which each C element is summed (one
// FMA chain per K block, blocks added in order; driver.cpp's k_block() evens
// the blocks out), and m mod MR decides which rows fall in the last, partial
// row panel, whose AVX2 kernels for 1-3 rows use 2-4 chains (ukernel_avx2.h).
// MC, NC, NB and the thread split never change it, so results are bitwise
// identical for every thread count. Changing KC changes the rounding, which
// is fine, but do it here only.
#pragma once

namespace fusedprop::gemm {

enum class Isa : int { reference = 0, avx2 = 1, avx512 = 2 };

struct BlockSizes {
    int mr, nr;      // register tile: the microkernel computes MR x NR of C
    int mc, kc, nc;  // cache blocks; mc is a multiple of mr, nc of nr
    int nb;          // slab of the B block per macro-kernel sweep; a multiple of nr
};

struct Config {
    Isa isa;
    const char* name;
    BlockSizes f32;
    BlockSizes f64;
};

// The table. One row per ISA.
inline constexpr Config kConfigs[] = {
    //  isa            name          f32 {mr, nr, mc,  kc,  nc,   nb}  f64 {mr, nr, mc, kc,  nc,   nb}
    {Isa::reference, "reference", {4, 8, 128, 256, 4096, 8}, {4, 8, 96, 256, 4096, 8}},
    {Isa::avx2, "avx2", {6, 16, 48, 320, 2048, 256}, {6, 8, 48, 256, 1024, 128}},
    {Isa::avx512, "avx512", {12, 32, 48, 384, 2048, 256}, {12, 16, 48, 256, 1024, 128}},
};

constexpr const Config& config_for(Isa isa) { return kConfigs[static_cast<int>(isa)]; }

template <class T>
constexpr const BlockSizes& blocks_for(const Config& c);
template <>
constexpr const BlockSizes& blocks_for<float>(const Config& c) { return c.f32; }
template <>
constexpr const BlockSizes& blocks_for<double>(const Config& c) { return c.f64; }

// Largest register tile any kernel uses: sizes the edge-tile scratch.
inline constexpr int kMaxMR = 12;
inline constexpr int kMaxNR = 32;

// Below this many flops (2 m n k) a GEMM stays on the calling thread: waking
// the pool costs more than it saves. Measured on the machine above.
inline constexpr double kParallelFlopThreshold = 8.0e6;

// At 2+ threads, rows are split among the tasks only when cutting m into
// blocks of this many rows leaves at least one block per thread; a smaller
// batch is split by columns, its packed A shared: thin row blocks would
// each re-read all of packed B for little work. (64, 784, 256) f32 at 2
// threads: 1.17x NumPy split by columns, 0.95-1.10x in row blocks of 8 rows.
inline constexpr int kRowSplitMinRows = 144;

// Parallel GEMMs split into about this many tasks per thread (row blocks x
// column chunks, and B-packing chunks), handed out dynamically.
inline constexpr int kTasksPerThread = 4;

}  // namespace fusedprop::gemm
