// The BLIS five loops around the microkernel:
//
//   loop 5  jc: over N in steps of NC   -- a KC x NC block of B lives in L3
//   loop 4  pc: over K in steps of ~KC  -- pack the B block (and A)
//   loop 3  ic: over M in steps of MC   -- pack A block (per thread), in L2
//   loop 2  jr: over NC in steps of NR  -- one B micro-panel
//   loop 1  ir: over MC in steps of MR  -- one microkernel call
//
// except that loops 2 and 1 trade places inside slabs of NB columns
// (config.h): for each slab, loop 1 runs outside loop 2, so one A
// micro-panel stays in L1 across the slab's B micro-panels, which stay in
// L2. NB = NR gives the BLIS order. And a small batch at one thread (one
// A block) packs a transposed B (x W^T) a slab at a time, just before the
// slab is used (macro_kernel_packing_b).
//
// Threads split loops 3 and 2 (row blocks x column chunks), never K: every
// C element is summed in the same order whatever the thread count, so results
// are bitwise identical. An operand block that several tasks read is packed
// once, in parallel, before them: B when there are several row blocks, A when
// there is one row block split into column chunks (a small batch); otherwise
// each task packs its own. Earlier K blocks write partial sums to C; the last
// one runs the epilogue (bias, pre-activation store, activation) inside the
// microkernel, while the tile is in registers, and hands each finished block
// of whole rows of C to Epilogue::on_block (a task's at most MC rows; after
// the tasks, when they split C by columns).
#include "driver.h"

#include <algorithm>
#include <cassert>

#include "dispatch.h"
#include "k_blocks.h"
#include "pack.h"
#include "packed_b.h"
#include "skinny.h"
#include "runtime/aligned_buffer.h"
#include "runtime/thread_pool.h"

namespace fusedprop::gemm {
namespace {

// Per-thread workspaces, reused across calls (grow, never shrink). The
// packed panels sit on huge pages (see aligned_buffer.h).
enum Workspace { kPackA, kPackB, kSharedA, kBias, kSlabB };
template <class T>
runtime::AlignedBuffer<T>& workspace(Workspace which) {
    using runtime::Pages;
    thread_local runtime::AlignedBuffer<T> buffers[5] = {
        runtime::AlignedBuffer<T>(Pages::huge), runtime::AlignedBuffer<T>(Pages::huge),
        runtime::AlignedBuffer<T>(Pages::huge), runtime::AlignedBuffer<T>(Pages::normal),
        runtime::AlignedBuffer<T>(Pages::huge)};
    return buffers[which];
}

index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// Splits `panels` micro-panels into `parts` nearly equal, contiguous parts;
// returns part i's [first, last) in panels.
void split(index_t panels, index_t parts, index_t i, index_t* first, index_t* last) {
    const index_t base = panels / parts, extra = panels % parts;
    *first = i * base + std::min(i, extra);
    *last = *first + base + (i < extra ? 1 : 0);
}

// Packs `units` (micro-panels, or rows of B) in `parts` pieces on the pool:
// pack_piece(first, end) packs units [first, end), never an empty range.
template <class F>
void pack_in_parallel(index_t units, index_t parts, int threads, F&& pack_piece) {
    runtime::parallel_for(
        static_cast<std::size_t>(parts),
        [&](std::size_t t) {
            index_t first, end;
            split(units, parts, static_cast<index_t>(t), &first, &end);
            if (end > first) pack_piece(first, end);
        },
        threads);
}

// k == 0: C = epilogue(0), elementwise.
template <class T>
void epilogue_only(MatrixRef<T> c, const Epilogue<T>& ep) {
    for (index_t i = 0; i < c.rows; ++i)
        for (index_t j = 0; j < c.cols; ++j) {
            T v = ep.bias ? ep.bias[j * ep.bias_stride] : T(0);
            if (ep.z.data) ep.z(i, j) = v;
            c(i, j) = math::scalar::forward<T>(ep.activation, v, ep.negative_slope);
        }
}

template <class T>
struct Job {
    MatrixRef<const T> a, b;
    MatrixRef<T> c, z;
    const BlockSizes* bs;
    // [r]: the kernel that computes exactly the first r rows of a tile
    // ([MR]: the full kernel), or nullptr where the table has none.
    Ukernel<T> rows_kernel[kMaxMR + 1];
    const T* bias;  // padded to a multiple of NR, contiguous; or nullptr
    T slope;
    Ukernel<T> half_kernel = nullptr;  // UkernelTable::half for the activation, or nullptr
    bool direct_a = false;  // A read where it lies: only a tile's own rows may be read
    const runtime::FunctionRef<void(index_t, index_t, index_t, index_t)>* on_block = nullptr;  // Epilogue::on_block
};

// The micro-panels of one operand's block for the macro-kernel: panel p at
// base + p * step, its k steps ld apart; packed, step = MR kc (NR kc) and ld
// = MR (NR). Direct (ukernel.h), the operand itself: step MR (NR) elements,
// ld its stride. A direct B's column-edge panel comes packed, at edge.
template <class T>
struct Panels {
    const T* base;
    index_t step, ld;
    const T* edge = nullptr;
    index_t edge_panel = -1;
};

int g_direct_mode = -1;

// Which operands the kernels read unpacked (config.h): a column-major A, a
// row-major B, short K blocks, an identity epilogue (the direct kernels').
// Measured at 1 thread on the Zen 4 machine (2026-12-07), dW = dZ^T X and
// dX = dZ W of training steps (batch, in -> out), packed time / direct
// time, interleaved: b32 64->128 1.06 / 1.00, 128->128 1.02 / 1.10,
// 128->10 1.36 / 0.99; b64 64->256 1.07 / 1.04, 256->256 1.01 / 1.05; b128
// 784->256 1.01 / 1.04, 256->256 1.02 / 1.03; b200 256->256 1.02 / 1.02;
// but b1024 1024->1024 (K blocks of 342) 0.75 / 0.82: long strided panels
// leave L1, where packed ones stream; and square f64 GEMMs of 512-2048
// (rows 4-16 KiB apart, K blocks of 256) 0.54-0.85x: hence the stride
// limit (kDirectMaxStrideBytes). Whole training steps: 1.02-1.04 at
// batch 32 and 64, level at 128. A row-major A, x W^T + b with relu (the
// forward) / dZ W (dX): b32 64->128 1.05 / 1.25, b64 128->128 1.03 / 1.09,
// b1024 64->128 1.02 / 1.07, b128 256->256 1.06 / 1.05, but 0.90-0.98 for
// dX of a 10-output layer (k = 10); Predictor 1.01-1.04, model(x) 1.01-1.06.
// A row-major A (UkernelTable::direct_row_a) goes with any epilogue, and
// with a packed or a direct B.
struct Direct {
    bool a = false, a_rows = false, b = false;
};
template <class T>
Direct choose_direct(const UkernelTable<T>& table, MatrixRef<const T> a, MatrixRef<const T> b,
                     const Epilogue<T>& ep, index_t k_step, bool prepacked) {
    Direct d;
    if (g_direct_mode == 0) return d;
    const bool any = g_direct_mode == 1;
    // k steps a page or more apart: a panel's reads spread over as many
    // pages, where a packed panel streams through a few. (Negative strides,
    // a reversed view, always go through the packing.)
    auto near = [&](index_t stride) {
        return stride >= 0 && (any || stride * index_t(sizeof(T)) < kDirectMaxStrideBytes);
    };
    const bool b_ok = b.col_stride == 1 && !prepacked && near(b.row_stride) && (any || k_step <= kDirectMaxKB);
    if (table.direct[table.mr] != nullptr && ep.activation == math::Activation::identity) {
        d.a = a.row_stride == 1 && near(a.col_stride) && (any || k_step <= kDirectMaxKA);
        d.b = b_ok;
    }
    if (!d.a && table.direct_row_a.fn[0] != nullptr && a.col_stride == 1 && a.row_stride != 1 && near(a.row_stride) &&
        (any || (k_step <= kDirectMaxKARows && k_step >= kDirectMinKARows))) {
        d.a_rows = true;
        d.b = b_ok;
    }
    return d;
}

// One microkernel call for the MR x NR tile of C at (i, j0); args carries
// the K block's a, b and flags.
template <class T>
void compute_tile(const Job<T>& job, UkernelArgs<T>& args, index_t i, index_t j0) {
    const int MR = job.bs->mr, NR = job.bs->nr;
    const index_t mr = std::min<index_t>(MR, job.c.rows - i);
    const index_t nr = std::min<index_t>(NR, job.c.cols - j0);
    const bool last = args.last;
    const Ukernel<T> exact = job.rows_kernel[mr];
    const bool c_unit = job.c.col_stride == 1;
    const bool z_unit = job.z.data == nullptr || job.z.col_stride == 1;
    if (exact != nullptr && nr == NR && c_unit && z_unit) {  // straight into C (and Z)
        args.c = &job.c(i, j0);
        args.rs_c = job.c.row_stride;
        args.z = last && job.z.data ? &job.z(i, j0) : nullptr;
        args.rs_z = job.z.row_stride;
        return exact(args);
    }
    // A column edge, a non-unit column stride, or rows no kernel computes
    // exactly: compute the tile in scratch, copy the valid part.
    alignas(64) T tile[kMaxMR * kMaxNR];
    alignas(64) T ztile[kMaxMR * kMaxNR];
    if (args.accumulate)
        for (index_t r = 0; r < mr; ++r)
            for (index_t s = 0; s < nr; ++s) tile[r * NR + s] = job.c(i + r, j0 + s);
    args.c = tile;
    args.rs_c = NR;
    args.z = last && job.z.data ? ztile : nullptr;
    args.rs_z = NR;
    // A column edge of at most NR/2 columns in a tile of more than MR/2 rows:
    // the half-width kernel's MR x NR/2 FMAs are fewer than the rows kernel's
    // mr x NR, with the same chains (hence the same bits) for every column.
    Ukernel<T> kernel = exact != nullptr ? exact : job.rows_kernel[MR];
    if (job.half_kernel != nullptr && 2 * nr <= NR && 2 * mr > MR && (mr == MR || !job.direct_a))
        kernel = job.half_kernel;  // (it reads MR rows of A: past the end of a direct A)
    kernel(args);
    for (index_t r = 0; r < mr; ++r)
        for (index_t s = 0; s < nr; ++s) job.c(i + r, j0 + s) = tile[r * NR + s];
    if (args.z)
        for (index_t r = 0; r < mr; ++r)
            for (index_t s = 0; s < nr; ++s) job.z(i + r, j0 + s) = ztile[r * NR + s];
}

// Loops 2 and 1 over one (row block, column chunk) of C, for one K block:
// the column chunk's B micro-panels jp_first..jp_last-1 in slabs of NB
// columns (config.h); within a slab, each A micro-panel (loop 1) meets every
// B micro-panel of the slab (loop 2) while it is in L1.
template <class T>
void macro_kernel(const Job<T>& job, const Panels<T>& ap, const Panels<T>& bp, index_t i0, index_t mc, index_t jc,
                  index_t jp_first, index_t jp_last, index_t kc, bool accumulate, bool last) {
    const int MR = job.bs->mr, NR = job.bs->nr;
    // A chunk narrower than a slab (a small batch split by columns) keeps
    // the BLIS order: its B micro-panel in L1 serves a whole column of tiles.
    const index_t slab_panels = jp_last - jp_first >= job.bs->nb / NR ? job.bs->nb / NR : 1;

    UkernelArgs<T> args;
    args.k = kc;
    args.accumulate = accumulate;
    args.last = last;
    args.slope = job.slope;
    for (index_t slab = jp_first; slab < jp_last; slab += slab_panels) {  // loop 2, by slabs
        const index_t slab_end = std::min(jp_last, slab + slab_panels);
        for (index_t ip = 0; ip * MR < mc; ++ip) {  // loop 1 (ir)
            args.a = ap.base + ip * ap.step;
            args.lda = ap.ld;
            for (index_t jp = slab; jp < slab_end; ++jp) {  // loop 2 (jr), within the slab
                const index_t j0 = jc + jp * NR;
                const bool edge = jp == bp.edge_panel;
                args.b = edge ? bp.edge : bp.base + jp * bp.step;
                args.ldb = edge ? NR : bp.ld;
                args.bias = last && job.bias ? job.bias + j0 : nullptr;
                compute_tile(job, args, i0 + ip * MR, j0);
            }
        }
    }
}

// macro_kernel for a lone task with one A block (a small batch at one
// thread) and several slabs of a transposed B (x W^T, a layer's forward):
// B is packed a slab at a time into one slab-sized buffer, each just before
// its slab is used. Packed all at once, they were written out to L3 (1.6 MB
// for a K block of a 784 x 1024 W^T) and read back from there; the reused
// slab is written and read in L2. (A row-major B, whose rows the whole-chunk
// packing reads in one run each, measured 1-5% slower by slabs.)
// F.linear at batch 64, 1 thread (Zen 4): 1024 -> 1024 1.03x, 784 -> 1024
// 1.01x. With pack_avx2.cpp's group order for 4 KiB strides, model(x) on
// 784-1024-1024-10: 1.15-1.3x at batch 32, 1.1x at 64, 1.05x at 128 (small
// nets, one slab per layer, unchanged).
template <class T>
void macro_kernel_packing_b(const Job<T>& job, const Panels<T>& ap, MatrixRef<const T> b_block, index_t mc,
                            index_t jc, index_t jp_first, index_t jp_last, bool accumulate, bool last) {
    const index_t NR = job.bs->nr, kc = b_block.rows, slab = job.bs->nb / NR;
    T* buf = workspace<T>(kSlabB).reserve(static_cast<std::size_t>(std::min(slab, jp_last - jp_first) * NR * kc));
    for (index_t s0 = jp_first; s0 < jp_last; s0 += slab) {
        const index_t s1 = std::min(jp_last, s0 + slab);
        const index_t j0 = s0 * NR, j1 = std::min(b_block.cols, s1 * NR);
        pack_b(b_block.block(0, j0, kc, j1 - j0), job.bs->nr, buf, kc * NR);
        // the slab as a column block of its own: its first panel is panel 0 at column jc + j0
        macro_kernel(job, ap, Panels<T>{buf, NR * kc, NR}, 0, mc, jc + j0, 0, s1 - s0, kc, accumulate, last);
    }
}

}  // namespace

Partition partition(index_t m, index_t nc, const BlockSizes& bs, int threads) {
    const index_t m_panels = ceil_div(m, bs.mr);
    const index_t n_panels = ceil_div(nc, bs.nr);
    index_t n_ic = ceil_div(m, bs.mc);
    index_t n_jr = 1;
    if (threads > 1) {
        // A few tasks per thread: the pool hands them out dynamically, so a
        // thread whose core is shared with another process does less.
        const index_t want = kTasksPerThread * threads;
        const index_t thick_blocks = ceil_div(m, kRowSplitMinRows);  // config.h
        if (thick_blocks >= threads) {
            // a whole number of blocks per thread: 11 for 2 threads left one
            // thread 6 and the other 5 (512 f32: 8% slower than 12)
            n_ic = std::min(m_panels, round_up(std::max(n_ic, want), index_t(threads)));
        } else {  // a small batch: few row blocks, split by columns
            n_ic = thick_blocks;
            n_jr = std::min(n_panels, ceil_div(want, n_ic));
            if (n_ic * n_jr < threads) n_ic = std::min(m_panels, ceil_div(threads, n_jr));
        }
    }
    return {n_ic, n_jr};
}

template <class T>
void gemm(MatrixRef<const T> a, MatrixRef<const T> b, MatrixRef<T> c, const Epilogue<T>& ep, int max_threads,
          const PackedB<T>* packed) {
    const index_t m = c.rows, n = c.cols, k = a.cols;
    assert(a.rows == m && b.rows == k && b.cols == n);
    assert(ep.z.data == nullptr || (ep.z.rows == m && ep.z.cols == n));
    if (m == 0 || n == 0) return;
    // C small enough to stay in cache whole (k == 0, or a skinny product) gets one on_block call.
    auto whole_c_done = [&] {
        if (ep.on_block != nullptr) (*ep.on_block)(0, m, 0, n);
    };
    if (k == 0) {
        epilogue_only(c, ep);
        return whole_c_done();
    }
    const bool packed_here = packed != nullptr && packed->rows() == k && packed->cols() == n;
    // A small batch: no packing (skinny.h), W's rows read where they lie or from the packed copy
    if (skinny_gemm(a, b, c, ep, max_threads, packed_here ? packed->nt_rows() : nullptr)) return whole_c_done();

    const UkernelTable<T>& table = active_table<T>();
    const BlockSizes bs = blocks_for<T>(*active_kernels().config);  // a copy: tuning may change the table
    assert(bs.mr == table.mr && bs.nr == table.nr);
    const index_t MR = bs.mr, NR = bs.nr, MC = bs.mc, KC = bs.kc, NC = bs.nc;
    // B packed ahead of time (packed_b.h), when it was packed for these kernels.
    const bool prepacked = packed_here && packed->usable_with(active_isa_id(), bs);

    int threads = max_threads > 0 ? max_threads : runtime::get_num_threads();
    if (2.0 * double(m) * double(n) * double(k) < kParallelFlopThreshold) threads = 1;

    const int act = static_cast<int>(ep.activation);
    const index_t k_step = k_block(k, KC);  // every NC block's K blocks
    const Direct direct = choose_direct(table, a, b, ep, k_step, prepacked);
    Job<T> job{a, b, c, ep.z, &bs, {}, nullptr, ep.negative_slope};
    job.on_block = ep.on_block;
    if (direct.a_rows) {
        for (int r = 1; r < bs.mr; ++r) job.rows_kernel[r] = table.direct_row_a.rows[r][act];
        job.rows_kernel[bs.mr] = table.direct_row_a.fn[act];
        job.half_kernel = table.direct_row_a.half[act];
        job.direct_a = true;
    } else if (direct.a || direct.b) {
        for (int r = 1; r <= bs.mr; ++r) job.rows_kernel[r] = table.direct[r];
        job.half_kernel = table.direct_half;
        job.direct_a = direct.a;
    } else {
        for (int r = 1; r < bs.mr; ++r) job.rows_kernel[r] = table.rows[r][act];
        job.rows_kernel[bs.mr] = table.fn[act];
        job.half_kernel = table.half[act];
    }
    if (ep.bias) {
        // Contiguous and padded to whole micro-panels: the kernel reads NR values.
        T* bias = workspace<T>(kBias).reserve(static_cast<std::size_t>(round_up(n, NR)));
        for (index_t j = 0; j < n; ++j) bias[j] = ep.bias[j * ep.bias_stride];
        for (index_t j = n; j < round_up(n, NR); ++j) bias[j] = T(0);
        job.bias = bias;
    }

    for (index_t jc = 0; jc < n; jc += NC) {  // loop 5 (jc)
        const index_t nc = std::min(NC, n - jc);
        const index_t n_panels = ceil_div(nc, NR);
        const Partition part = partition(m, nc, bs, threads);
        for (index_t pc = 0; pc < k; pc += k_step) {  // loop 4 (pc)
            const index_t kc = std::min(k_step, k - pc);
            const bool accumulate = pc > 0, last = pc + kc == k;
            const MatrixRef<const T> b_block = b.block(pc, jc, kc, nc);
            // B's panels: pre-packed, packed here (all at once, or a slab at
            // a time by a lone task with one A block and several slabs of a
            // transposed B), or (direct) B itself and its column-edge panel
            // packed here.
            const bool b_by_slabs = !prepacked && !direct.b && b.row_stride == 1 && b.col_stride != 1 &&
                                    part.n_ic * part.n_jr == 1 && m <= MC && n_panels > bs.nb / NR;
            const index_t pack_panels = prepacked || b_by_slabs ? 0 : direct.b ? (nc % NR != 0) : n_panels;
            T* bpack = pack_panels ? workspace<T>(kPackB).reserve(static_cast<std::size_t>(pack_panels * NR * kc)) : nullptr;
            Panels<T> bp{prepacked ? packed->block(jc / NC, pc / k_step) : bpack, NR * kc, NR};
            if (direct.b) {
                bp = {&b_block(0, 0), NR, b_block.row_stride};
                if (pack_panels) {
                    bp.edge_panel = n_panels - 1;
                    bp.edge = bpack;
                    const index_t j0 = bp.edge_panel * NR;
                    pack_b(b_block.block(0, j0, kc, nc - j0), bs.nr, bpack, kc * NR);
                }
            }

            const bool shared_b = part.n_ic > 1 && !prepacked && !direct.b;
            const bool shared_a = part.n_ic == 1 && part.n_jr > 1 && !direct.a && !direct.a_rows;  // then m <= MC: one A block
            const index_t m_panels = ceil_div(m, MR);
            T* shared_apack = nullptr;
            if (shared_b && b_block.col_stride == 1) {
                // A row-major B split by rows: each piece reads whole rows,
                // one long sequential run each (split by panels, a piece
                // reads a short run per row).
                pack_in_parallel(kc, std::min<index_t>(kTasksPerThread * threads, kc), threads,
                                 [&](index_t p0, index_t p1) {
                                     pack_b(b_block.block(p0, 0, p1 - p0, nc), bs.nr, bpack + p0 * NR, kc * NR);
                                 });
            } else if (shared_b) {
                pack_in_parallel(n_panels, std::min<index_t>(kTasksPerThread * threads, n_panels), threads,
                                 [&](index_t first, index_t end) {
                                     const index_t j0 = first * NR, j1 = std::min(nc, end * NR);
                                     pack_b(b_block.block(0, j0, kc, j1 - j0), bs.nr, bpack + first * NR * kc, kc * NR);
                                 });
            } else if (shared_a) {
                shared_apack = workspace<T>(kSharedA).reserve(static_cast<std::size_t>(m_panels * MR * kc));
                pack_in_parallel(m_panels, std::min<index_t>(threads, m_panels), threads,
                                 [&](index_t first, index_t end) {
                                     const index_t i0 = first * MR, i1 = std::min(m, end * MR);
                                     pack_a(a.block(i0, pc, i1 - i0, kc), bs.mr, shared_apack + first * MR * kc);
                                 });
            }

            runtime::parallel_for(
                static_cast<std::size_t>(part.n_ic * part.n_jr),
                [&](std::size_t t) {  // loop 3 (ic), split with loop 2 (jr)
                    const index_t ic = static_cast<index_t>(t) / part.n_jr, jr = static_cast<index_t>(t) % part.n_jr;
                    index_t ip0, ip1, jp0, jp1;
                    split(m_panels, part.n_ic, ic, &ip0, &ip1);
                    split(n_panels, part.n_jr, jr, &jp0, &jp1);
                    if (ip1 == ip0 || jp1 == jp0) return;
                    if (!shared_b && !prepacked && !direct.b && !b_by_slabs) {  // this task's own B panels
                        const index_t j0 = jp0 * NR, j1 = std::min(nc, jp1 * NR);
                        pack_b(b_block.block(0, j0, kc, j1 - j0), bs.nr, bpack + jp0 * NR * kc, kc * NR);
                    }
                    const index_t i0 = ip0 * MR, i1 = std::min(m, ip1 * MR);
                    auto sweep = [&](const Panels<T>& ap, index_t is, index_t mc) {
                        if (b_by_slabs) {
                            assert(is == 0 && mc == m);
                            return macro_kernel_packing_b(job, ap, b_block, mc, jc, jp0, jp1, accumulate, last);
                        }
                        macro_kernel(job, ap, bp, is, mc, jc, jp0, jp1, kc, accumulate, last);
                    };
                    // The sweep's block of C (at most MC rows: in L2) is final, in whole rows.
                    auto done = [&](index_t is, index_t mc) {
                        if (last && job.on_block != nullptr && part.n_jr == 1) (*job.on_block)(is, is + mc, jc, jc + nc);
                    };
                    if (shared_a) {
                        sweep(Panels<T>{shared_apack + i0 * kc, MR * kc, MR}, i0, i1 - i0);
                        return done(i0, i1 - i0);
                    }
                    // A row block may exceed MC when balancing; walk it in MC steps.
                    for (index_t is = i0; is < i1; is += MC) {
                        const index_t mc = std::min(MC, i1 - is);
                        Panels<T> ap{&a(is, pc), MR, a.col_stride};
                        if (direct.a_rows) {
                            ap = {&a(is, pc), MR * a.row_stride, a.row_stride};
                        } else if (!direct.a) {
                            T* apack = workspace<T>(kPackA).reserve(static_cast<std::size_t>(round_up(mc, MR) * kc));
                            pack_a(a.block(is, pc, mc, kc), bs.mr, apack);
                            ap = {apack, MR * kc, MR};
                        }
                        sweep(ap, is, mc);
                        done(is, mc);
                    }
                },
                threads);
            // Split by columns (a small batch: C fits in L2), C's rows are whole only
            // now. In the tasks' column chunks they came in short pieces, which for
            // Dropout measured slower than one pass here (2 threads, batch 100-128).
            if (last && job.on_block != nullptr && part.n_jr > 1) (*job.on_block)(0, m, jc, jc + nc);
        }
    }
}

void set_direct_operands(int mode) { g_direct_mode = mode < 0 ? -1 : mode > 0 ? 1 : 0; }
int direct_operands_mode() { return g_direct_mode; }

template void gemm<float>(MatrixRef<const float>, MatrixRef<const float>, MatrixRef<float>, const Epilogue<float>&,
                          int, const PackedB<float>*);
template void gemm<double>(MatrixRef<const double>, MatrixRef<const double>, MatrixRef<double>,
                           const Epilogue<double>&, int, const PackedB<double>*);

}  // namespace fusedprop::gemm
