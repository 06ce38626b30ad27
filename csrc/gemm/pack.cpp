#include "pack.h"

#include <stdexcept>

namespace fusedprop::gemm {
namespace {

template <class T, int MR>
void pack_a_mr(MatrixRef<const T> a, T* dst) {
    const index_t kc = a.cols;
    for (index_t i0 = 0; i0 < a.rows; i0 += MR) {
        const index_t rows = a.rows - i0 < MR ? a.rows - i0 : MR;
        detail::pack_a_panel<T, MR>(a.data + i0 * a.row_stride, a.row_stride, a.col_stride, rows, kc, dst + i0 * kc);
    }
}

template <class T, int NR>
void pack_b_nr(MatrixRef<const T> b, T* dst) {
    const index_t kc = b.rows;
    for (index_t j0 = 0; j0 < b.cols; j0 += NR) {
        const index_t cols = b.cols - j0 < NR ? b.cols - j0 : NR;
        detail::pack_b_panel<T, NR>(b.data + j0 * b.col_stride, b.row_stride, b.col_stride, cols, kc, dst + j0 * kc);
    }
}

}  // namespace

template <class T>
void pack_a(MatrixRef<const T> a, int mr, T* dst) {
    switch (mr) {
        case 4: return pack_a_mr<T, 4>(a, dst);
        case 6: return pack_a_mr<T, 6>(a, dst);
        case 8: return pack_a_mr<T, 8>(a, dst);
    }
    throw std::logic_error("pack_a: no packing routine for this MR");
}

template <class T>
void pack_b(MatrixRef<const T> b, int nr, T* dst) {
    switch (nr) {
        case 8: return pack_b_nr<T, 8>(b, dst);
        case 16: return pack_b_nr<T, 16>(b, dst);
    }
    throw std::logic_error("pack_b: no packing routine for this NR");
}

template void pack_a<float>(MatrixRef<const float>, int, float*);
template void pack_a<double>(MatrixRef<const double>, int, double*);
template void pack_b<float>(MatrixRef<const float>, int, float*);
template void pack_b<double>(MatrixRef<const double>, int, double*);

}  // namespace fusedprop::gemm
