// A view of a 2-D strided matrix: what every kernel takes, whatever layout
// NumPy hands over (transposed, sliced, negative or zero strides).
#pragma once

#include <cstddef>

namespace fusedprop {

using index_t = std::ptrdiff_t;

// Element (i, j) lives at data[i * row_stride + j * col_stride]. Strides are
// in elements, not bytes, and may be negative or zero (read-only views).
template <class T>
struct MatrixRef {
    T* data = nullptr;
    index_t rows = 0;
    index_t cols = 0;
    index_t row_stride = 0;
    index_t col_stride = 0;

    T& operator()(index_t i, index_t j) const { return data[i * row_stride + j * col_stride]; }
    T* row(index_t i) const { return data + i * row_stride; }
    bool empty() const { return rows == 0 || cols == 0; }
    bool row_major_contiguous() const { return col_stride == 1 && (rows <= 1 || row_stride == cols); }
    // The same elements seen as the transpose: no copy.
    MatrixRef transposed() const { return {data, cols, rows, col_stride, row_stride}; }
    MatrixRef block(index_t i, index_t j, index_t r, index_t c) const {
        return {data + i * row_stride + j * col_stride, r, c, row_stride, col_stride};
    }
    operator MatrixRef<const T>() const { return {data, rows, cols, row_stride, col_stride}; }
};

}  // namespace fusedprop
