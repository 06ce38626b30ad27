#include "pack.h"

#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "dispatch.h"

namespace fusedprop::gemm {

#if defined(FUSEDPROP_HAVE_AVX2)
// pack_avx2.cpp
void pack_b_panel_t_f32x16_avx2(const float* src, index_t cs, index_t kc, float* dst);
void pack_b_panel_t_f64x8_avx2(const double* src, index_t cs, index_t kc, double* dst);
void pack_a_panel_f32x6_avx2(const float* src, index_t rs, index_t kc, float* dst);
void pack_a_panel_f64x6_avx2(const double* src, index_t rs, index_t kc, double* dst);
// for the AVX-512 tiles (12 x 32 f32, 12 x 16 f64); AVX2 code, which every
// AVX-512 CPU runs
void pack_b_panel_t_f32x32_avx2(const float* src, index_t cs, index_t kc, float* dst);
void pack_b_panel_t_f64x16_avx2(const double* src, index_t cs, index_t kc, double* dst);
void pack_a_panel_f32x12_avx2(const float* src, index_t rs, index_t kc, float* dst);
void pack_a_panel_f64x12_avx2(const double* src, index_t rs, index_t kc, double* dst);
#endif

namespace {

#if defined(FUSEDPROP_HAVE_AVX2)
// The AVX2 packers may run: the AVX2 or the AVX-512 kernels are active (both
// imply a CPU with AVX2; the reference kernels may run where it has none).
bool simd_packing() { return active_isa_id() != Isa::reference; }
#endif

// A full micro-panel of a transposed B (unit row stride): the AVX2
// transposes where they apply. True if it packed the panel.
template <class T, int NR>
bool pack_b_panel_fast(const T* src, index_t rs, index_t cs, index_t cols, index_t kc, T* dst) {
#if defined(FUSEDPROP_HAVE_AVX2)
    if (cols != NR || rs != 1 || cs == 1 || !simd_packing()) return false;
    if constexpr (std::is_same_v<T, float> && NR == 16) {
        pack_b_panel_t_f32x16_avx2(src, cs, kc, dst);
        return true;
    } else if constexpr (std::is_same_v<T, float> && NR == 32) {
        pack_b_panel_t_f32x32_avx2(src, cs, kc, dst);
        return true;
    } else if constexpr (std::is_same_v<T, double> && NR == 8) {
        pack_b_panel_t_f64x8_avx2(src, cs, kc, dst);
        return true;
    } else if constexpr (std::is_same_v<T, double> && NR == 16) {
        pack_b_panel_t_f64x16_avx2(src, cs, kc, dst);
        return true;
    }
#endif
    (void)src, (void)rs, (void)cs, (void)cols, (void)kc, (void)dst;
    return false;
}

// A full micro-panel of a row-major A: AVX2 transposes where they apply.
template <class T, int MR>
bool pack_a_panel_fast(const T* src, index_t rs, index_t cs, index_t rows, index_t kc, T* dst) {
#if defined(FUSEDPROP_HAVE_AVX2)
    if (rows != MR || cs != 1 || rs == 1 || !simd_packing()) return false;
    if constexpr (std::is_same_v<T, float> && MR == 6) {
        pack_a_panel_f32x6_avx2(src, rs, kc, dst);
        return true;
    } else if constexpr (std::is_same_v<T, double> && MR == 6) {
        pack_a_panel_f64x6_avx2(src, rs, kc, dst);
        return true;
    } else if constexpr (std::is_same_v<T, float> && MR == 12) {
        pack_a_panel_f32x12_avx2(src, rs, kc, dst);
        return true;
    } else if constexpr (std::is_same_v<T, double> && MR == 12) {
        pack_a_panel_f64x12_avx2(src, rs, kc, dst);
        return true;
    }
#endif
    (void)src, (void)rs, (void)cs, (void)rows, (void)kc, (void)dst;
    return false;
}

// The panel-by-panel walk of a row-major B (or a column-major A) reads one
// short run per row of the source, a whole row stride apart: a cache miss
// each, which the hardware prefetchers do not follow across pages. So the
// full panels of those two layouts are packed row by row (column by column
// for A) instead, across all panels at once: one sequential read stream.
// Measured 1-6% faster on square GEMMs of 1024 and 2048.
// Panel jp's run p goes to dst + jp * panel_stride + p * W.
template <class T, int W>
index_t pack_runs_across_panels(const T* src, index_t run_stride, index_t runs, index_t width, T* dst,
                                index_t panel_stride) {
    const index_t full = width / W;
    for (index_t p = 0; p < runs; ++p) {
        const T* run = src + p * run_stride;
        for (index_t jp = 0; jp < full; ++jp) std::memcpy(dst + jp * panel_stride + p * W, run + jp * W, W * sizeof(T));
    }
    return full * W;
}

template <class T, int MR>
void pack_a_mr(MatrixRef<const T> a, T* dst) {
    const index_t kc = a.cols;
    const index_t first =
        a.row_stride == 1 ? pack_runs_across_panels<T, MR>(a.data, a.col_stride, kc, a.rows, dst, kc * MR) : 0;
    for (index_t i0 = first; i0 < a.rows; i0 += MR) {
        const index_t rows = a.rows - i0 < MR ? a.rows - i0 : MR;
        const T* src = a.data + i0 * a.row_stride;
        if (pack_a_panel_fast<T, MR>(src, a.row_stride, a.col_stride, rows, kc, dst + i0 * kc)) continue;
        detail::pack_a_panel<T, MR>(src, a.row_stride, a.col_stride, rows, kc, dst + i0 * kc);
    }
}

template <class T, int NR>
void pack_b_nr(MatrixRef<const T> b, T* dst, index_t panel_stride) {
    const index_t kc = b.rows;
    const index_t first =
        b.col_stride == 1 ? pack_runs_across_panels<T, NR>(b.data, b.row_stride, kc, b.cols, dst, panel_stride) : 0;
    for (index_t j0 = first; j0 < b.cols; j0 += NR) {
        const index_t cols = b.cols - j0 < NR ? b.cols - j0 : NR;
        const T* src = b.data + j0 * b.col_stride;
        T* panel = dst + j0 / NR * panel_stride;
        if (!pack_b_panel_fast<T, NR>(src, b.row_stride, b.col_stride, cols, kc, panel))
            detail::pack_b_panel<T, NR>(src, b.row_stride, b.col_stride, cols, kc, panel);
    }
}

}  // namespace

template <class T>
void pack_a(MatrixRef<const T> a, int mr, T* dst) {
    switch (mr) {
        case 4: return pack_a_mr<T, 4>(a, dst);
        case 6: return pack_a_mr<T, 6>(a, dst);
        case 8: return pack_a_mr<T, 8>(a, dst);
        case 12: return pack_a_mr<T, 12>(a, dst);
    }
    throw std::logic_error("pack_a: no packing routine for this MR");
}

template <class T>
void pack_b(MatrixRef<const T> b, int nr, T* dst, index_t panel_stride) {
    switch (nr) {
        case 8: return pack_b_nr<T, 8>(b, dst, panel_stride);
        case 16: return pack_b_nr<T, 16>(b, dst, panel_stride);
        case 32: return pack_b_nr<T, 32>(b, dst, panel_stride);
    }
    throw std::logic_error("pack_b: no packing routine for this NR");
}

template void pack_a<float>(MatrixRef<const float>, int, float*);
template void pack_a<double>(MatrixRef<const double>, int, double*);
template void pack_b<float>(MatrixRef<const float>, int, float*, index_t);
template void pack_b<double>(MatrixRef<const double>, int, double*, index_t);

}  // namespace fusedprop::gemm
