#include "linear_backward.h"

#include <algorithm>
#include <cassert>

#include "gemm/dispatch.h"
#include "gemm/gemm.h"
#include "runtime/aligned_buffer.h"
#include "runtime/thread_pool.h"

namespace fusedprop::layers {

// dZ from dY and what the forward saved: relu and leaky_relu select rather
// than multiply (dY = Inf where Y <= 0 gives 0, as in PyTorch; Y = NaN passes dY).
template <class T>
inline T dz_scalar(Activation act, T dy, T saved, T slope) {
    switch (act) {
        case Activation::identity: return dy;
        case Activation::relu: return saved <= T(0) ? T(0) : dy;
        case Activation::leaky_relu: return saved > T(0) ? dy : dy * slope;
        default: return dy * scalar::derivative<T>(act, saved, slope);
    }
}

template <class T>
void dz_db_portable(MatrixRef<const T> dy, MatrixRef<const T> saved, Activation act, T negative_slope,
                    MatrixRef<T> dz, double* db_acc, index_t j0, index_t j1) {
    for (index_t i = 0; i < dy.rows; ++i)
        for (index_t j = j0; j < j1; ++j) {
            const T v = dz_scalar<T>(act, dy(i, j), act == Activation::identity ? T(0) : saved(i, j), negative_slope);
            if (dz.data) dz(i, j) = v;
            db_acc[j] += static_cast<double>(v);
        }
}

template <class T>
void linear_backward(MatrixRef<const T> dy, MatrixRef<const T> x, MatrixRef<const T> w, MatrixRef<const T> saved,
                     Activation act, T negative_slope, MatrixRef<T> dx, MatrixRef<T> dw, T* db, int max_threads) {
    const index_t m = dy.rows, n = dy.cols;
    assert(x.rows == m && w.rows == n && w.cols == x.cols && dw.rows == n && dw.cols == x.cols);
    const int threads = max_threads > 0 ? max_threads : runtime::get_num_threads();

    thread_local runtime::AlignedBuffer<T> dz_buffer;
    thread_local runtime::AlignedBuffer<double> acc_buffer;
    double* acc = acc_buffer.reserve(static_cast<std::size_t>(std::max<index_t>(n, 1)));
    std::fill(acc, acc + n, 0.0);

    // 1. dZ (skipped for identity: dZ is dY) and the db column sums.
    MatrixRef<T> dz{};
    MatrixRef<const T> dz_in = dy;
    if (act != Activation::identity && m > 0 && n > 0) {
        dz = {dz_buffer.reserve(static_cast<std::size_t>(m) * static_cast<std::size_t>(n)), m, n, n, 1};
        dz_in = dz;
    }
    // Column chunks (multiples of 16, so which columns take the vector path
    // never depends on the split): thread-count independent results.
    const index_t chunk_cols = 16;
    const index_t col_groups = (n + chunk_cols - 1) / chunk_cols;
    const index_t parts = (static_cast<double>(m) * n >= 32768.0) ? std::min<index_t>(threads, col_groups) : 1;
    const bool avx2 = gemm::active_isa_id() == gemm::Isa::avx2;
    (void)avx2;
    runtime::parallel_for(
        static_cast<std::size_t>(std::max<index_t>(parts, 1)),
        [&](std::size_t t) {
            const index_t g0 = col_groups * static_cast<index_t>(t) / parts;
            const index_t g1 = col_groups * (static_cast<index_t>(t) + 1) / parts;
            const index_t j0 = g0 * chunk_cols, j1 = std::min(n, g1 * chunk_cols);
            if (j1 <= j0) return;
#if defined(FUSEDPROP_HAVE_AVX2)
            if (avx2 && dz_db_avx2<T>(dy, saved, act, negative_slope, dz, acc, j0, j1)) return;
#endif
            dz_db_portable<T>(dy, saved, act, negative_slope, dz, acc, j0, j1);
        },
        threads);
    for (index_t j = 0; j < n; ++j) db[j] = static_cast<T>(acc[j]);

    // 2. dW = dZ^T x  (N x M times M x K; the GEMM's K dimension is the batch).
    gemm::gemm<T>(dz_in.transposed(), x, dw, {}, max_threads);
    // 3. dX = dZ W  (M x N times N x K).
    if (dx.data != nullptr) gemm::gemm<T>(dz_in, w, dx, {}, max_threads);
}

template void dz_db_portable<float>(MatrixRef<const float>, MatrixRef<const float>, Activation, float,
                                    MatrixRef<float>, double*, index_t, index_t);
template void dz_db_portable<double>(MatrixRef<const double>, MatrixRef<const double>, Activation, double,
                                     MatrixRef<double>, double*, index_t, index_t);
template void linear_backward<float>(MatrixRef<const float>, MatrixRef<const float>, MatrixRef<const float>,
                                     MatrixRef<const float>, Activation, float, MatrixRef<float>, MatrixRef<float>,
                                     float*, int);
template void linear_backward<double>(MatrixRef<const double>, MatrixRef<const double>, MatrixRef<const double>,
                                      MatrixRef<const double>, Activation, double, MatrixRef<double>,
                                      MatrixRef<double>, double*, int);

}  // namespace fusedprop::layers
