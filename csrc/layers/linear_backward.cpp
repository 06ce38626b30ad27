#include "linear_backward.h"

#include <cassert>

#include "gemm/gemm.h"
#include "layers/activation_kernels.h"
#include "runtime/aligned_buffer.h"

namespace fusedprop::layers {

template <class T>
void linear_backward(MatrixRef<const T> dy, MatrixRef<const T> x, MatrixRef<const T> w, MatrixRef<const T> saved,
                     math::Activation act, T negative_slope, MatrixRef<T> dx, MatrixRef<T> dw, T* db, int max_threads) {
    const index_t m = dy.rows, n = dy.cols;
    assert(x.rows == m && w.rows == n && w.cols == x.cols && dw.rows == n && dw.cols == x.cols);

    // 1. dZ and the db column sums in one pass (activation_kernels). For
    //    identity dZ is dY: only the sums are computed, nothing is copied.
    thread_local runtime::AlignedBuffer<T> dz_buffer;
    MatrixRef<T> dz{};
    MatrixRef<const T> dz_in = dy;
    if (act != math::Activation::identity && m > 0 && n > 0) {
        dz = {dz_buffer.reserve(static_cast<std::size_t>(m) * static_cast<std::size_t>(n)), m, n, n, 1};
        dz_in = dz;
    }
    activation_backward<T>(act, negative_slope, dy, saved, dz, db);

    // 2. dW = dZ^T x  (N x M times M x K; the GEMM's K dimension is the batch).
    gemm::gemm<T>(dz_in.transposed(), x, dw, {}, max_threads);
    // 3. dX = dZ W  (M x N times N x K).
    if (dx.data != nullptr) gemm::gemm<T>(dz_in, w, dx, {}, max_threads);
}

template void linear_backward<float>(MatrixRef<const float>, MatrixRef<const float>, MatrixRef<const float>,
                                     MatrixRef<const float>, math::Activation, float, MatrixRef<float>, MatrixRef<float>,
                                     float*, int);
template void linear_backward<double>(MatrixRef<const double>, MatrixRef<const double>, MatrixRef<const double>,
                                      MatrixRef<const double>, math::Activation, double, MatrixRef<double>,
                                      MatrixRef<double>, double*, int);

}  // namespace fusedprop::layers
