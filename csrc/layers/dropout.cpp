#include "dropout.h"

#include <algorithm>

#include "math/philox.h"
#include "runtime/thread_pool.h"

namespace fusedprop::layers {
namespace {

// Elements per task: a multiple of 4 (whole Philox blocks), fixed so the
// cut does not depend on the thread count (it would not matter for the
// bits, but keeps the work even).
constexpr index_t kChunk = index_t(1) << 14;
// Below this a call stays on the calling thread (a hand-off costs more than
// ~64k elements of Philox on a busy machine).
constexpr index_t kParallelFrom = index_t(1) << 17;

template <class T>
void apply_range(const T* in, T* out, index_t begin, index_t end, std::uint32_t threshold, T scale, DropoutKey key) {
    const auto k0 = static_cast<std::uint32_t>(key.seed), k1 = static_cast<std::uint32_t>(key.seed >> 32);
    index_t e = begin;
    while (e < end) {
        const auto block = static_cast<std::uint64_t>(e) >> 2;
        const math::Philox4x32 r = math::philox4x32_10(static_cast<std::uint32_t>(block),
                                                       static_cast<std::uint32_t>(block >> 32), key.step, key.stream,
                                                       k0, k1);
        const index_t lane0 = e & 3;
        const index_t stop = std::min<index_t>(end, e - lane0 + 4);
        for (index_t i = e; i < stop; ++i) {
            // A multiply, not a select: NaN and Inf inputs give NaN where dropped, as PyTorch's x * mask.
            out[i] = in[i] * (r.v[i & 3] >= threshold ? scale : T(0));
        }
        e = stop;
    }
}

}  // namespace

std::uint32_t dropout_threshold(double p) {
    return static_cast<std::uint32_t>(p * 4294967296.0);
}

template <class T>
void dropout_apply(const T* in, T* out, index_t n, double p, DropoutKey key, int max_threads) {
    if (n <= 0) return;
    const std::uint32_t threshold = dropout_threshold(p);
    const T scale = T(1) / static_cast<T>(1.0 - p);
    const index_t tasks = (n + kChunk - 1) / kChunk;
    if (n < kParallelFrom || tasks == 1) {
        apply_range<T>(in, out, 0, n, threshold, scale, key);
        return;
    }
    runtime::parallel_for(
        static_cast<std::size_t>(tasks),
        [&](std::size_t t) {
            const index_t b = static_cast<index_t>(t) * kChunk;
            apply_range<T>(in, out, b, std::min(n, b + kChunk), threshold, scale, key);
        },
        max_threads);
}

template void dropout_apply<float>(const float*, float*, index_t, double, DropoutKey, int);
template void dropout_apply<double>(const double*, double*, index_t, double, DropoutKey, int);

}  // namespace fusedprop::layers
