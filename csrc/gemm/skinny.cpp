// The small-batch entry (skinny.h): picks the layout and the kernels, splits
// the columns over threads; and the portable reference kernels.
#include "skinny.h"

#include <algorithm>
#include <atomic>
#include <cassert>

#include "config.h"
#include "dispatch.h"
#include "runtime/aligned_buffer.h"
#include "runtime/thread_pool.h"

namespace fusedprop::gemm {
namespace {

// Row j of W as the reference nt kernel reads it: lane l at nt_row(p, j) +
// (l / L) * nt_step(p) + l % L, in either layout.
template <class T>
inline const T* nt_row(const SkinnyArgs<T>& p, index_t j) {
    constexpr index_t L = kNtLanes<T>;
    if (!p.interleaved) return p.b + j * p.ld_b;
    return p.b + (j / L) * L * nt_rows_k_pad<T>(p.k) + (j % L) * L;
}
template <class T>
inline index_t nt_step(const SkinnyArgs<T>& p) {
    return p.interleaved ? kNtLanes<T> * kNtLanes<T> : kNtLanes<T>;
}

template <class T>
T epilogue(const SkinnyArgs<T>& p, index_t i, index_t j, T v) {
    if (p.bias != nullptr) v += p.bias[j];
    if (p.z != nullptr) p.z[i * p.rs_z + j] = v;
    return math::scalar::forward<T>(p.act, v, p.slope);
}

template <class T>
void skinny_nt_ref(const SkinnyArgs<T>& p) {
    constexpr index_t L = kNtLanes<T>;
    const index_t step = nt_step(p);
    for (index_t i = 0; i < p.m; ++i)
        for (index_t j = p.j0; j < p.j1; ++j) {
            const T* x = p.a + i * p.rs_a;
            const T* w = nt_row(p, j);
            T acc = T(0);
            for (index_t l = 0; l < p.k; ++l) acc += x[l] * w[l / L * step + l % L];
            p.c[i * p.rs_c + j] = epilogue(p, i, j, acc);
        }
}

template <class T>
void skinny_nn_ref(const SkinnyArgs<T>& p) {
    for (index_t i = 0; i < p.m; ++i) {
        T* c = p.c + i * p.rs_c;
        for (index_t j = p.j0; j < p.j1; ++j) c[j] = T(0);
        for (index_t l = 0; l < p.k; ++l) {
            const T ail = p.a[i * p.rs_a + l * p.cs_a];
            const T* b = p.b + l * p.ld_b;
            for (index_t j = p.j0; j < p.j1; ++j) c[j] += ail * b[j];
        }
        for (index_t j = p.j0; j < p.j1; ++j) c[j] = epilogue(p, i, j, c[j]);
    }
}

template <class T>
const SkinnyKernels<T>& active_skinny();
template <>
const SkinnyKernels<float>& active_skinny<float>() {
#if defined(FUSEDPROP_HAVE_AVX512)
    if (active_isa_id() == Isa::avx512) return kSkinnyF32Avx512;
#endif
#if defined(FUSEDPROP_HAVE_AVX2)
    if (active_isa_id() != Isa::reference) return kSkinnyF32Avx2;
#endif
    return kSkinnyF32Ref;
}
template <>
const SkinnyKernels<double>& active_skinny<double>() {
#if defined(FUSEDPROP_HAVE_AVX512)
    if (active_isa_id() == Isa::avx512) return kSkinnyF64Avx512;
#endif
#if defined(FUSEDPROP_HAVE_AVX2)
    if (active_isa_id() != Isa::reference) return kSkinnyF64Avx2;
#endif
    return kSkinnyF64Ref;
}

index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// Runs fn(begin, end) on the pool for [0, total) cut into `chunks` whole
// chunks of `chunk` (the last one short), dealt as evenly as they go to at
// most kTasksPerThread tasks per thread: whole chunks, so every element is
// computed the same way at any thread count.
template <class F>
void deal_chunks(index_t chunks, index_t chunk, index_t total, int threads, const F& fn) {
    const index_t tasks = std::min<index_t>(chunks, kTasksPerThread * threads);
    runtime::parallel_for(
        static_cast<std::size_t>(tasks),
        [&](std::size_t t) {
            const index_t per = chunks / tasks, extra = chunks % tasks, ti = static_cast<index_t>(t);
            const index_t first = ti * per + std::min(ti, extra);
            const index_t begin = first * chunk, end = std::min(total, (first + per + (ti < extra ? 1 : 0)) * chunk);
            if (end > begin) fn(begin, end);
        },
        threads);
}

std::atomic<int> g_rows_override{-1};

}  // namespace

template <class T>
std::size_t nt_rows_size(index_t k, index_t n) {
    return static_cast<std::size_t>(ceil_div(n, kNtLanes<T>) * kNtLanes<T>) *
           static_cast<std::size_t>(nt_rows_k_pad<T>(k));
}

template <class T>
void pack_nt_rows(MatrixRef<const T> w, T* dst) {
    constexpr index_t L = kNtLanes<T>;
    const index_t n = w.rows, k = w.cols;
    for (index_t j0 = 0; j0 < n; j0 += L)
        for (index_t l0 = 0; l0 < k; l0 += L)
            for (index_t j = j0; j < j0 + L; ++j)
                for (index_t l = l0; l < l0 + L; ++l) *dst++ = j < n && l < k ? w(j, l) : T(0);
}

template std::size_t nt_rows_size<float>(index_t, index_t);
template std::size_t nt_rows_size<double>(index_t, index_t);
template void pack_nt_rows<float>(MatrixRef<const float>, float*);
template void pack_nt_rows<double>(MatrixRef<const double>, double*);

int skinny_rows_cutover(index_t k, index_t n, std::size_t elem_size, bool nt) {
    const int o = g_rows_override.load(std::memory_order_relaxed);
    return o >= 0 ? o : skinny_max_rows(k, n, elem_size, nt && active_skinny<float>().four_row_nt);
}

void set_skinny_max_rows(int rows) { g_rows_override.store(rows < 0 ? -1 : rows, std::memory_order_relaxed); }

const SkinnyKernels<float> kSkinnyF32Ref = {&skinny_nt_ref<float>, &skinny_nn_ref<float>, false};
const SkinnyKernels<double> kSkinnyF64Ref = {&skinny_nt_ref<double>, &skinny_nn_ref<double>, false};

template <class T>
bool skinny_gemm(MatrixRef<const T> a, MatrixRef<const T> b, MatrixRef<T> c, const Epilogue<T>& ep,
                 int max_threads, const T* nt_rows) {
    const index_t m = c.rows, n = c.cols, k = a.cols;
    const double b_bytes = double(n) * double(k) * double(sizeof(T));
    if (m == 0 || n == 0 || k == 0) return false;
    if (c.col_stride != 1 || (ep.z.data != nullptr && ep.z.col_stride != 1)) return false;
    // nt when W's rows are contiguous (B = W^T), nn when B's rows are; the
    // one-column and one-row cases fit both and take nt.
    const bool nt = b.row_stride == 1 || k == 1;
    const bool nn = !nt && (b.col_stride == 1 || n == 1);
    if (!nt && !nn) return false;
    if (m > skinny_rows_cutover(k, n, sizeof(T), nt)) return false;

    SkinnyArgs<T> args;
    args.m = m;
    args.k = k;
    args.a = a.data;
    args.rs_a = a.row_stride;
    args.cs_a = a.col_stride;
    args.b = b.data;
    args.ld_b = nt ? (n == 1 ? 0 : b.col_stride) : (k == 1 ? 0 : b.row_stride);
    // Only one row of A: its blocks read all L rows of a group together, one
    // stream. Blocks of several rows read a half group each, which measured
    // slower than W's own rows (4 rows of 784-1024-1024-10: 1.2x slower).
    static_assert(kSkinnyColumnChunk % kNtLanes<float> == 0 && kSkinnyColumnChunk % kNtLanes<double> == 0,
                  "column chunks of whole interleaved groups");
    if (nt && nt_rows != nullptr && m == 1) {
        args.b = nt_rows;
        args.interleaved = true;
    }
    args.c = c.data;
    args.rs_c = c.row_stride;
    args.z = ep.z.data;
    args.rs_z = ep.z.row_stride;
    args.act = ep.activation;
    args.slope = ep.negative_slope;

    // The nt kernels read rows of A as vectors: give them contiguous rows.
    // The copies are small by construction (m rows).
    thread_local runtime::AlignedBuffer<T> a_copy, bias_copy;
    if (nt && a.col_stride != 1 && k > 1) {
        T* dst = a_copy.reserve(static_cast<std::size_t>(m * k));
        for (index_t i = 0; i < m; ++i)
            for (index_t l = 0; l < k; ++l) dst[i * k + l] = a(i, l);
        args.a = dst;
        args.rs_a = k;
        args.cs_a = 1;
    }
    if (ep.bias != nullptr && ep.bias_stride != 1) {
        T* dst = bias_copy.reserve(static_cast<std::size_t>(n));
        for (index_t j = 0; j < n; ++j) dst[j] = ep.bias[j * ep.bias_stride];
        args.bias = dst;
    } else {
        args.bias = ep.bias;
    }

    const SkinnyKernel<T> kernel = nt ? active_skinny<T>().nt : active_skinny<T>().nn;
    // Reading B dominates: split its columns over threads once B is large
    // enough to pay for waking the pool (deal_chunks: the same bits at any
    // thread count).
    int threads = max_threads > 0 ? max_threads : runtime::get_num_threads();
    args.j0 = 0;
    args.j1 = n;
    if (b_bytes < kSkinnyParallelBytes) {
        // A small B (a narrow layer): many rows are split instead, each row
        // computed as it would be alone.
        const index_t row_chunks = ceil_div(m, kSkinnyRowChunk);
        if (threads == 1 || row_chunks == 1 || 2.0 * double(m) * double(k) * double(n) < kParallelFlopThreshold) {
            kernel(args);
            return true;
        }
        deal_chunks(row_chunks, kSkinnyRowChunk, m, threads, [&](index_t i0, index_t i1) {
            SkinnyArgs<T> part = args;
            part.m = i1 - i0;
            part.a = args.a + i0 * args.rs_a;
            part.c = args.c + i0 * args.rs_c;
            if (part.z != nullptr) part.z = args.z + i0 * args.rs_z;
            kernel(part);
        });
        return true;
    }
    const index_t chunks = ceil_div(n, kSkinnyColumnChunk);
    if (threads == 1 || chunks == 1) {
        kernel(args);
        return true;
    }
    deal_chunks(chunks, kSkinnyColumnChunk, n, threads, [&](index_t j0, index_t j1) {
        SkinnyArgs<T> part = args;
        part.j0 = j0;
        part.j1 = j1;
        kernel(part);
    });
    return true;
}

template bool skinny_gemm<float>(MatrixRef<const float>, MatrixRef<const float>, MatrixRef<float>,
                                 const Epilogue<float>&, int, const float*);
template bool skinny_gemm<double>(MatrixRef<const double>, MatrixRef<const double>, MatrixRef<double>,
                                  const Epilogue<double>&, int, const double*);

}  // namespace fusedprop::gemm
