// Packing: copy a block of A or B, read through any strides (transposed,
// negative, zero), into the micro-panel layout the microkernels stream
// (drawn in ukernel.h), zero-padding the last micro-panel.
//
//   pack_a: an mc x kc block of A -> ceil(mc/MR) micro-panels, each MR x kc
//           stored column by column (MR contiguous elements per k).
//   pack_b: a kc x nc block of B -> ceil(nc/NR) micro-panels, each kc x NR
//           stored row by row (NR contiguous elements per k).
//
// This is where a transposed operand is read "for free": x * W^T packs B from
// W with row stride 1 and column stride in_features; W is never copied first.
#pragma once

#include "runtime/matrix_ref.h"

namespace fusedprop::gemm {

// Entry points (pack.cpp): MR and NR are the active kernel's tile; dst must
// hold round_up(rows, MR) * kc (resp. kc * round_up(cols, NR)) elements.
// Neither writes outside its panels, so threads may pack disjoint panels of
// one buffer at once.
//
// pack_b may also pack rows p0..p1 of a taller block (threads then split a
// row-major B by rows, each reading whole rows): b is those rows, dst the
// address of row p0 in the first panel, panel_stride the block's kc * NR.
template <class T>
void pack_a(MatrixRef<const T> a, int mr, T* dst);
template <class T>
void pack_b(MatrixRef<const T> b, int nr, T* dst, index_t panel_stride);

inline index_t round_up(index_t x, index_t m) { return (x + m - 1) / m * m; }

namespace detail {

// One MR x kc micro-panel of A from `rows` (<= MR) valid rows. (Full panels
// of a column-major A, and of a row-major B below, never come here: pack.cpp
// packs those across all panels at once.)
template <class T, int MR>
void pack_a_panel(const T* src, index_t rs, index_t cs, index_t rows, index_t kc, T* dst) {
    if (rows == MR && cs == 1) {
        // Row-major A: MR rows, each contiguous in k.
        const T* r[MR];
        for (int i = 0; i < MR; ++i) r[i] = src + i * rs;
        for (index_t p = 0; p < kc; ++p)
            for (int i = 0; i < MR; ++i) dst[p * MR + i] = r[i][p];
    } else {
        for (index_t p = 0; p < kc; ++p) {
            int i = 0;
            for (; i < rows; ++i) dst[p * MR + i] = src[i * rs + p * cs];
            for (; i < MR; ++i) dst[p * MR + i] = T(0);
        }
    }
}

// kc rows of a micro-panel of B (a whole panel, or a thread's row range)
// from `cols` (<= NR) valid columns.
template <class T, int NR>
void pack_b_panel(const T* src, index_t rs, index_t cs, index_t cols, index_t kc, T* dst) {
    if (cols == NR && rs == 1) {
        // B = W^T with W row-major: each column is contiguous in k. Walk
        // NR columns in step, a few k at a time, so every read stream stays
        // sequential and the writes fill whole panel rows.
        const T* col[NR];
        for (int j = 0; j < NR; ++j) col[j] = src + j * cs;
        for (index_t p = 0; p < kc; ++p)
            for (int j = 0; j < NR; ++j) dst[p * NR + j] = col[j][p];
    } else {
        for (index_t p = 0; p < kc; ++p) {
            int j = 0;
            for (; j < cols; ++j) dst[p * NR + j] = src[p * rs + j * cs];
            for (; j < NR; ++j) dst[p * NR + j] = T(0);
        }
    }
}

}  // namespace detail

}  // namespace fusedprop::gemm
