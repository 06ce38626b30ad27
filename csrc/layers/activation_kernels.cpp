// Tiling, threading and ISA dispatch for the elementwise activation kernels,
// and the portable reference row kernels (math::scalar::, baseline flags).
#include "layers/activation_kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "layers/activation_kernels_impl.h"
#include "runtime/aligned_buffer.h"
#include "runtime/cpu_features.h"
#include "runtime/thread_pool.h"

namespace fusedprop::layers {
namespace detail {

// ------------------------------------------------------- reference kernels

namespace {

template <class T, math::Activation A>
void ref_forward_loop(T slope, const T* x, T* y, index_t n) {
    for (index_t k = 0; k < n; ++k) y[k] = math::scalar::forward<T>(A, x[k], slope);
}

template <class T, math::Activation A>
void ref_backward_loop(T slope, const T* gy, const T* saved, T* gz, index_t n) {
    for (index_t k = 0; k < n; ++k) {
        if constexpr (A == math::Activation::identity) {
            gz[k] = gy[k];
        } else if constexpr (A == math::Activation::relu) {
            gz[k] = saved[k] <= T(0) ? T(0) : gy[k];
        } else if constexpr (A == math::Activation::leaky_relu) {
            gz[k] = saved[k] > T(0) ? gy[k] : gy[k] * slope;
        } else {
            gz[k] = gy[k] * math::scalar::derivative<T>(A, saved[k], slope);
        }
    }
}

template <class T>
void ref_forward(math::Activation a, T slope, const T* x, T* y, index_t n) {
    switch (a) {
        case math::Activation::identity: ref_forward_loop<T, math::Activation::identity>(slope, x, y, n); break;
        case math::Activation::relu: ref_forward_loop<T, math::Activation::relu>(slope, x, y, n); break;
        case math::Activation::leaky_relu: ref_forward_loop<T, math::Activation::leaky_relu>(slope, x, y, n); break;
        case math::Activation::sigmoid: ref_forward_loop<T, math::Activation::sigmoid>(slope, x, y, n); break;
        case math::Activation::tanh: ref_forward_loop<T, math::Activation::tanh>(slope, x, y, n); break;
        case math::Activation::gelu: ref_forward_loop<T, math::Activation::gelu>(slope, x, y, n); break;
        case math::Activation::gelu_tanh: ref_forward_loop<T, math::Activation::gelu_tanh>(slope, x, y, n); break;
        case math::Activation::silu: ref_forward_loop<T, math::Activation::silu>(slope, x, y, n); break;
    }
}

template <class T>
void ref_backward(math::Activation a, T slope, const T* gy, const T* saved, T* gz, index_t n, T* colsum) {
    switch (a) {
        case math::Activation::identity: ref_backward_loop<T, math::Activation::identity>(slope, gy, saved, gz, n); break;
        case math::Activation::relu: ref_backward_loop<T, math::Activation::relu>(slope, gy, saved, gz, n); break;
        case math::Activation::leaky_relu: ref_backward_loop<T, math::Activation::leaky_relu>(slope, gy, saved, gz, n); break;
        case math::Activation::sigmoid: ref_backward_loop<T, math::Activation::sigmoid>(slope, gy, saved, gz, n); break;
        case math::Activation::tanh: ref_backward_loop<T, math::Activation::tanh>(slope, gy, saved, gz, n); break;
        case math::Activation::gelu: ref_backward_loop<T, math::Activation::gelu>(slope, gy, saved, gz, n); break;
        case math::Activation::gelu_tanh: ref_backward_loop<T, math::Activation::gelu_tanh>(slope, gy, saved, gz, n); break;
        case math::Activation::silu: ref_backward_loop<T, math::Activation::silu>(slope, gy, saved, gz, n); break;
    }
    if (colsum != nullptr)
        for (index_t k = 0; k < n; ++k) colsum[k] += gz[k];
}

template <class T>
void ref_exp(T* x, index_t n) {
    for (index_t k = 0; k < n; ++k) x[k] = std::exp(x[k]);
}

}  // namespace

template <class T>
ActivationRowKernels<T> reference_row_kernels() {
    return {&ref_forward<T>, &ref_backward<T>, &ref_exp<T>};
}
template ActivationRowKernels<float> reference_row_kernels<float>();
template ActivationRowKernels<double> reference_row_kernels<double>();

}  // namespace detail

// ---------------------------------------------------------------- dispatch

namespace {

enum class Isa : int { reference = 0, avx2 = 1 };

bool avx2_available() { return runtime::isa_supported(runtime::Isa::avx2); }

// The AVX2 kernels serve AVX-512 CPUs too; FUSEDPROP_ISA=reference caps them
// as it caps the others (runtime::default_isa).
Isa auto_isa() { return runtime::default_isa() >= runtime::Isa::avx2 ? Isa::avx2 : Isa::reference; }

std::atomic<int> g_isa{-1};  // -1: not decided yet

Isa current_isa() {
    int v = g_isa.load(std::memory_order_relaxed);
    if (v < 0) {
        v = static_cast<int>(auto_isa());
        g_isa.store(v, std::memory_order_relaxed);
    }
    return static_cast<Isa>(v);
}

template <class T>
detail::ActivationRowKernels<T> row_kernels() {
#ifdef FUSEDPROP_HAVE_AVX2
    if (current_isa() == Isa::avx2) return detail::avx2_row_kernels<T>();
#endif
    return detail::reference_row_kernels<T>();
}

// ------------------------------------------------------------------ tiling

// Tiles: kColBlock columns by rows_per_tile(cols) rows; sizes depend only on
// the shape, never on the thread count (determinism of the column sums).
constexpr index_t kColBlock = 4096;
constexpr index_t kTileElems = 16384;
// Strided operands go through a contiguous stack buffer this long.
constexpr index_t kGather = 256;

index_t rows_per_tile(index_t cols) {
    const index_t width = std::min(cols, kColBlock);
    return std::max<index_t>(16, kTileElems / std::max<index_t>(width, 1));
}

// Elements below which a call stays on the calling thread. Single-thread
// costs measured on Zen 3 (AVX2, f32): relu 0.15 ns/element (memory bound),
// sigmoid 0.7, tanh 0.95, silu 0.9, gelu 1.5, gelu_tanh 2 ns/element. A
// parallel_for hand-off costs ~5-10 us on an idle machine but 100+ us when
// both cores are busy with other processes (the caller waits for a helper the
// OS has not scheduled yet), so the thresholds sit where one thread already
// spends ~100 us: the loss under load stays bounded, the gain when idle is
// kept for the large arrays that matter.
index_t parallel_threshold(math::Activation a, bool backward) {
    switch (a) {
        case math::Activation::identity:
        case math::Activation::relu:
        case math::Activation::leaky_relu: return index_t(1) << 19;
        case math::Activation::sigmoid:
        case math::Activation::tanh: return backward ? (index_t(1) << 19) : (index_t(1) << 17);
        default: return index_t(1) << 16;
    }
}

template <class T>
bool contiguous_cols(MatrixRef<T> m) {
    return m.col_stride == 1;
}

// One tile of the forward: rows [r0, r1), columns [c0, c1).
template <class T>
void forward_tile(const detail::ActivationRowKernels<T>& k, math::Activation a, T slope, MatrixRef<const T> x,
                  MatrixRef<T> y, index_t r0, index_t r1, index_t c0, index_t c1) {
    const bool direct = contiguous_cols(x) && contiguous_cols(y);
    alignas(64) T in[kGather];
    alignas(64) T out[kGather];
    for (index_t i = r0; i < r1; ++i) {
        const T* xr = x.row(i);
        T* yr = y.row(i);
        if (direct) {
            k.forward(a, slope, xr + c0, yr + c0, c1 - c0);
            continue;
        }
        for (index_t c = c0; c < c1; c += kGather) {
            const index_t n = std::min(kGather, c1 - c);
            for (index_t j = 0; j < n; ++j) in[j] = xr[(c + j) * x.col_stride];
            k.forward(a, slope, in, out, n);
            for (index_t j = 0; j < n; ++j) yr[(c + j) * y.col_stride] = out[j];
        }
    }
}

template <class T>
void backward_tile(const detail::ActivationRowKernels<T>& k, math::Activation a, T slope, MatrixRef<const T> gy,
                   MatrixRef<const T> saved, MatrixRef<T> gz, T* partial, index_t r0, index_t r1, index_t c0,
                   index_t c1) {
    const bool has_saved = a != math::Activation::identity;
    if (gz.data == nullptr) {  // identity, column sums only: dZ is dY
        for (index_t i = r0; i < r1; ++i) {
            const T* gr = gy.row(i);
            for (index_t j = c0; j < c1; ++j) partial[j] += gr[j * gy.col_stride];
        }
        return;
    }
    const bool direct = contiguous_cols(gy) && contiguous_cols(gz) && (!has_saved || contiguous_cols(saved));
    alignas(64) T in_g[kGather];
    alignas(64) T in_s[kGather];
    alignas(64) T out[kGather];
    for (index_t i = r0; i < r1; ++i) {
        const T* gr = gy.row(i);
        const T* sr = has_saved ? saved.row(i) : nullptr;
        T* zr = gz.row(i);
        if (direct) {
            k.backward(a, slope, gr + c0, has_saved ? sr + c0 : nullptr, zr + c0, c1 - c0,
                       partial ? partial + c0 : nullptr);
            continue;
        }
        for (index_t c = c0; c < c1; c += kGather) {
            const index_t n = std::min(kGather, c1 - c);
            for (index_t j = 0; j < n; ++j) in_g[j] = gr[(c + j) * gy.col_stride];
            if (has_saved)
                for (index_t j = 0; j < n; ++j) in_s[j] = sr[(c + j) * saved.col_stride];
            k.backward(a, slope, in_g, has_saved ? in_s : nullptr, out, n, partial ? partial + c : nullptr);
            for (index_t j = 0; j < n; ++j) zr[(c + j) * gz.col_stride] = out[j];
        }
    }
}

// A whole contiguous matrix is one long row: better tiles for few columns.
template <class T>
MatrixRef<T> as_one_row(MatrixRef<T> m) {
    return {m.data, 1, m.rows * m.cols, m.rows * m.cols, 1};
}

// The tiles elementwise work is cut into (rows_per_tile(cols) rows by
// kColBlock columns), run on the pool.
struct Tiling {
    index_t rows, cols, tile_rows, row_tiles, col_tiles;

    Tiling(index_t rows_, index_t cols_)
        : rows(rows_), cols(cols_), tile_rows(rows_per_tile(cols_)),
          row_tiles((rows_ + tile_rows - 1) / tile_rows), col_tiles((cols_ + kColBlock - 1) / kColBlock) {}

    // fn(row_tile, r0, r1, c0, c1) for every tile: rows [r0, r1), columns [c0, c1).
    template <class F>
    void run(int threads, F&& fn) const {
        runtime::parallel_for(
            static_cast<std::size_t>(row_tiles * col_tiles),
            [&](std::size_t t) {
                const index_t rt = static_cast<index_t>(t) / col_tiles, ct = static_cast<index_t>(t) % col_tiles;
                const index_t r0 = rt * tile_rows, c0 = ct * kColBlock;
                fn(rt, r0, std::min(rows, r0 + tile_rows), c0, std::min(cols, c0 + kColBlock));
            },
            threads);
    }
};

}  // namespace

template <class T>
void activation_forward(math::Activation a, T slope, MatrixRef<const T> x, MatrixRef<T> y) {
    if (x.empty()) return;
    if (x.row_major_contiguous() && y.row_major_contiguous()) {
        x = as_one_row(x);
        y = as_one_row(y);
    }
    const auto k = row_kernels<T>();
    const int threads = x.rows * x.cols < parallel_threshold(a, false) ? 1 : 0;
    Tiling(x.rows, x.cols).run(threads, [&](index_t, index_t r0, index_t r1, index_t c0, index_t c1) {
        forward_tile(k, a, slope, x, y, r0, r1, c0, c1);
    });
}

template <class T>
void activation_backward(math::Activation a, T slope, MatrixRef<const T> gy, MatrixRef<const T> saved, MatrixRef<T> gz,
                         T* column_sums) {
    if (column_sums != nullptr) std::fill(column_sums, column_sums + gy.cols, T(0));
    if (gy.empty()) return;
    if (gz.data == nullptr && (a != math::Activation::identity || column_sums == nullptr))
        throw std::invalid_argument("activation_backward: grad_z may be empty only for identity with column sums");
    const bool has_saved = a != math::Activation::identity;
    if (column_sums == nullptr && gy.row_major_contiguous() && gz.row_major_contiguous() &&
        (!has_saved || saved.row_major_contiguous())) {
        gy = as_one_row(gy);
        gz = as_one_row(gz);
        if (has_saved) saved = as_one_row(saved);
    }
    const auto k = row_kernels<T>();
    const Tiling tiles(gy.rows, gy.cols);
    const index_t n_rt = tiles.row_tiles;
    const int threads = gy.rows * gy.cols < parallel_threshold(a, true) ? 1 : 0;
    // One partial row of column sums per row tile, combined in tile order.
    runtime::AlignedBuffer<T> partials;
    T* part = nullptr;
    if (column_sums != nullptr) {
        if (n_rt == 1) {
            part = column_sums;  // the single partial is the result
        } else {
            part = partials.reserve(static_cast<std::size_t>(n_rt) * static_cast<std::size_t>(gy.cols));
            std::fill(part, part + n_rt * gy.cols, T(0));
        }
    }
    tiles.run(threads, [&](index_t rt, index_t r0, index_t r1, index_t c0, index_t c1) {
        backward_tile(k, a, slope, gy, saved, gz, part ? part + rt * gy.cols : nullptr, r0, r1, c0, c1);
    });
    if (column_sums != nullptr && n_rt > 1) {
        for (index_t rt = 0; rt < n_rt; ++rt) {
            const T* p = part + rt * gy.cols;
            for (index_t j = 0; j < gy.cols; ++j) column_sums[j] += p[j];
        }
    }
}

template <class T>
void exp_in_place(T* x, index_t n) {
    row_kernels<T>().exp(x, n);
}

template void activation_forward<float>(math::Activation, float, MatrixRef<const float>, MatrixRef<float>);
template void activation_forward<double>(math::Activation, double, MatrixRef<const double>, MatrixRef<double>);
template void activation_backward<float>(math::Activation, float, MatrixRef<const float>, MatrixRef<const float>,
                                         MatrixRef<float>, float*);
template void activation_backward<double>(math::Activation, double, MatrixRef<const double>, MatrixRef<const double>,
                                          MatrixRef<double>, double*);

template void exp_in_place<float>(float*, index_t);
template void exp_in_place<double>(double*, index_t);

std::string activation_isa() { return current_isa() == Isa::avx2 ? "avx2" : "reference"; }

void set_activation_isa(const std::string& name) {
    if (name == "auto") {
        g_isa.store(static_cast<int>(auto_isa()));
    } else if (name == "reference") {
        g_isa.store(static_cast<int>(Isa::reference));
    } else if (name == "avx2") {
        if (!avx2_available())
            throw std::invalid_argument("set_activation_isa: avx2 is not available on this CPU or in this build");
        g_isa.store(static_cast<int>(Isa::avx2));
    } else {
        throw std::invalid_argument("set_activation_isa: unknown ISA '" + name +
                                    "'; expected one of auto, avx2, reference");
    }
}

}  // namespace fusedprop::layers
