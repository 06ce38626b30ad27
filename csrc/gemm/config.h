// Every GEMM block size in one table: register tile (MR x NR) and cache
// blocks (MC, KC, NC, NB) per dtype and ISA. The reference and AVX2 rows were
// tuned on AMD EPYC Zen 3 (32 KiB L1d, 512 KiB L2 per core, 32 MiB L3); the
// AVX-512 row on Intel Sapphire Rapids (below the table):
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
// row panel, whose AVX2 kernels for 1-3 rows use 2-4 chains (ukernel_avx2.h)
// and AVX-512 kernels for 1-3 rows 2-4 chains (ukernel_avx512.h: a shape-only
// choice). Each ISA sums in its own order: the bits differ between ISAs,
// never between thread counts.
// MC, NC, NB and the thread split never change it, so results are bitwise
// identical for every thread count. Changing KC changes the rounding, which
// is fine, but do it here only.
#pragma once

#include <algorithm>
#include <cstddef>

#include "runtime/cpu_features.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::gemm {

using runtime::Isa;

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

// The AVX-512 row, measured on a 2-core Sapphire Rapids VM (48 KiB L1d,
// 2 MiB L2 per core; two 512-bit FMA pipes, latency 4: about 220 GFLOP/s f32
// per core, twice the YMM rate):
//   tile: f32 12x32, 8x48 and 6x64 (24 accumulators each) ran the k loop at
//       the same 180-185 GFLOP/s on L1/L2-resident panels (14x32 spills);
//       12 x 2 vectors was kept for its NR (n = 256, 784, 1024 are multiples
//       of 16/32, not of 48; small n pads less than at 64) and one MR (12)
//       for both dtypes. f64 12x16 likewise (8x24, 6x32: same rate).
//   MC: 144 (A block 216 KiB f32, 288 KiB f64 in the 2 MiB L2): at 2048 f32
//       +5-6% over 48 (160 -> 170 GFLOP/s), 1024 +4%, 512 equal; f64 2048
//       +5%. 288 no better. 144 is also kRowSplitMinRows.
//   KC: f32 256, 320, 384, 512 within 2-3% of each other (noise on a shared
//       machine); 384 keeps the A micro-panel (18 KiB) and a B micro-panel
//       (48 KiB, streamed) near L1. f64 192-384 equal within noise: 256.
//   NB, NC: 128-1024 and NC 2048-4096 changed nothing measurable; kept the
//       AVX2 row's values (NB f32 256 = 8 micro-panels, f64 128).

// The table. One row per ISA.
inline constexpr Config kConfigs[] = {
    //  isa            name          f32 {mr, nr, mc,  kc,  nc,   nb}  f64 {mr, nr, mc, kc,  nc,   nb}
    {Isa::reference, "reference", {4, 8, 128, 256, 4096, 8}, {4, 8, 96, 256, 4096, 8}},
    {Isa::avx2, "avx2", {6, 16, 48, 320, 2048, 256}, {6, 8, 48, 256, 1024, 128}},
    {Isa::avx512, "avx512", {12, 32, 144, 384, 2048, 256}, {12, 16, 144, 256, 1024, 128}},
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

// Small batches skip packing (skinny.h): a product with at most this many
// rows of A reads B where it lies. Packing costs a pass over B (read and
// write) per call, so the larger B, the more rows the skinny kernels win at.
// Measured with F.linear at 1 thread (AVX2 kernels, Xeon, 2026-12-03;
// packed time / skinny time):
//   k x n = 1024 x 1024 f32: 2.8 at m = 1, 2.0 at 4, 1.4 at 8, 1.0 at 16
//           784 x 256  f32: 4.7 at 1, 1.8 at 4, 1.3 at 8, 0.9 at 12
//           128 x 128  f32: 2.4 at 1, 1.2 at 4, 0.9 at 5, 0.85 at 8
//            64 x 128  f32: 1.9 at 1, 0.9 at 4 (f64 alike, a row or two earlier)
// so: up to 4 rows always, up to 8 once B holds 512 KiB.
inline constexpr int kSkinnyMaxRows = 4;
inline constexpr int kSkinnyMaxRowsLargeB = 8;
inline constexpr double kSkinnyLargeBBytes = 512.0 * 1024;
// With 4 x 4 nt blocks (the AVX-512 build of the kernels, skinny_ymm.h), a
// layer of few outputs, where a packed tile is mostly padding, reads W
// directly at larger batches too, against W^T packed ahead of time (as
// fp.Predictor has it; packed per call the skinny side wins by more).
// Measured with one-layer Predictors at 1 thread (Zen 4, 2026-12-07;
// packed time / skinny time, f32):
//   n = 1, k = 64..512: 1.2-3.2 at every m from 4 to 1024; n = 4, k = 128: 1.2-2.5
//   n = 10, k = 512: 1.1-1.3 up to m = 256, 0.95-0.99 at 512-1024;
//           k = 256: 1.0-1.4 up to 256;  k = 128: 1.0-1.2 up to 16, 0.7-0.9 above
//   n = 12 and 16: no better than the rows rule above
// so: any batch for up to 4 outputs; up to 256 rows for up to 10 outputs
// once k >= 256.
inline constexpr index_t kSkinnyFewCols = 4;
inline constexpr index_t kSkinnyNarrowCols = 10;
inline constexpr index_t kSkinnyNarrowMinK = 256;
inline constexpr int kSkinnyNarrowMaxRows = 256;
inline constexpr int kSkinnyAnyRows = 1 << 30;
constexpr int skinny_max_rows(index_t k, index_t n, std::size_t elem_size, bool four_row_nt) {
    const double b_bytes = double(k) * double(n) * double(elem_size);
    const int rows = b_bytes >= kSkinnyLargeBBytes ? kSkinnyMaxRowsLargeB : kSkinnyMaxRows;
    if (!four_row_nt) return rows;
    if (n <= kSkinnyFewCols) return kSkinnyAnyRows;
    if (n <= kSkinnyNarrowCols && k >= kSkinnyNarrowMinK) return std::max(rows, kSkinnyNarrowMaxRows);
    return rows;
}
// The skinny kernels split B's columns over threads (in chunks of this many
// columns) once B holds this many bytes: below it one core reads B faster
// than the pool wakes up. A smaller B with many rows (a narrow layer at a
// large batch) has its rows split instead, once the product holds
// kParallelFlopThreshold flops, in blocks of kSkinnyRowChunk rows.
inline constexpr double kSkinnyParallelBytes = 1.0e6;
inline constexpr int kSkinnyColumnChunk = 64;
inline constexpr int kSkinnyRowChunk = 32;
// A PackedB keeps W's rows interleaved for one row of A (skinny.h,
// pack_nt_rows) once W holds this many bytes: then W comes from L3 or
// memory, where one stream beats L rows apart (fp.Predictor on
// 784-1024-1024-10 at batch 1: 93 -> 84 us, Zen 4, 2026-12-07). From L2 the
// rows are faster (784x256 then 256x256: 0.96x), and the copy would only
// cost memory.
inline constexpr double kNtRowsMinBytes = 2.0 * 1024 * 1024;

// Direct operands (ukernel.h): where the active kernels have them (AVX-512),
// a column-major A or a row-major B, the layouts of the backward's products
// dW = dZ^T X and dX = dZ W, are read where they lie instead of packed,
// when a K block is at most this long (a training batch, or a layer's
// width): the microkernel then reads them as it would the packed panels.
// Measured (driver.cpp, choose_direct): 1.01-1.36x on such products up to
// k = 256, 0.75-0.82x at K blocks of 342 (1024 x 1024 layers at batch 1024).
inline constexpr int kDirectMaxKA = 256;
inline constexpr int kDirectMaxKB = 256;
// A row-major A (a layer's input in the forward, dZ in dX), when its K
// block is at least kDirectMinKARows long too: a shorter one (dX of a
// 10-output layer, k = 10) packs into a few lines and ran 2-10% faster
// packed (measured: driver.cpp).
inline constexpr int kDirectMaxKARows = 256;
inline constexpr int kDirectMinKARows = 16;
// ... and only where the operand's k steps (rows of B, rows or columns of
// A) lie less than a page apart.
inline constexpr int kDirectMaxStrideBytes = 4096;

// Parallel GEMMs split into about this many tasks per thread (row blocks x
// column chunks, and B-packing chunks), handed out dynamically.
inline constexpr int kTasksPerThread = 4;

}  // namespace fusedprop::gemm
