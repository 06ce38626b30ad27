#include "dropout.h"

#include <algorithm>

#include "layers/dropout_kernels.h"
#include "math/philox.h"
#include "runtime/cpu_features.h"
#include "runtime/thread_pool.h"

namespace fusedprop::layers {
namespace {

// Elements per task: a multiple of 32 (whole groups), fixed so the
// cut does not depend on the thread count (it would not matter for the
// bits, but keeps the work even).
constexpr index_t kChunk = index_t(1) << 14;
// Below this a call stays on the calling thread (a hand-off costs more than
// ~64k elements of Philox on a busy machine).
constexpr index_t kParallelFrom = index_t(1) << 17;

// Elements [begin, end) of the groups of 32 (see dropout.h), portable.
template <class T>
void apply_range_ref(const T* in, T* out, index_t begin, index_t end, std::uint32_t threshold, T scale,
                     DropoutKey key) {
    const auto k0 = static_cast<std::uint32_t>(key.seed), k1 = static_cast<std::uint32_t>(key.seed >> 32);
    for (index_t g0 = begin & ~index_t(31); g0 < end; g0 += 32) {
        std::uint32_t words[4][8];
        const auto base = static_cast<std::uint64_t>(g0 >> 5) << 3;
        for (int j = 0; j < 8; ++j) {
            const std::uint64_t block = base + static_cast<std::uint64_t>(j);
            const math::Philox4x32 r = math::philox4x32_10(static_cast<std::uint32_t>(block),
                                                           static_cast<std::uint32_t>(block >> 32), key.step,
                                                           key.stream, k0, k1);
            for (int w = 0; w < 4; ++w) words[w][j] = r.v[w];
        }
        const index_t lo = std::max(begin, g0), hi = std::min(end, g0 + 32);
        for (index_t e = lo; e < hi; ++e) {
            // A multiply, not a select: NaN and Inf inputs give NaN where dropped, as PyTorch's x * mask.
            out[e] = in[e] * (words[(e >> 3) & 3][e & 7] >= threshold ? scale : T(0));
        }
    }
}

enum class Simd { none, avx2, avx512 };

// The ISA every kernel family uses (FUSEDPROP_ISA caps it: runtime/cpu_features.h).
Simd simd() {
    switch (runtime::default_isa()) {
        case runtime::Isa::avx512: return Simd::avx512;
        case runtime::Isa::avx2: return Simd::avx2;
        default: return Simd::none;
    }
}

// Whole groups on the widest SIMD kernel the CPU has, a ragged head or end
// group by group: the same bits either way.
template <class T>
void apply_range(const T* in, T* out, index_t begin, index_t end, std::uint32_t threshold, T scale, DropoutKey key) {
    const Simd level = simd();
#if defined(FUSEDPROP_HAVE_AVX2)
    if ((begin & 31) != 0 && level != Simd::none) {  // a ragged head (a row of a block, linear_forward.h)
        const index_t head = std::min(end, (begin | 31) + 1);
        detail::dropout_partial_group_avx2<T>(in, out, begin, head, threshold, scale, key);
        begin = head;
    }
#endif
#ifdef FUSEDPROP_HAVE_AVX512
    if (level == Simd::avx512 && (begin & 31) == 0) {
        // Pairs of groups while their 16 blocks share the counter's high word (below 2^35 elements: always).
        while (end - begin >= 64) {
            const auto first = static_cast<std::uint64_t>(begin >> 5) << 3;
            const std::uint64_t to_wrap = (std::uint64_t(1) << 32) - (first & 0xFFFFFFFFu);  // blocks until hi + 1
            index_t pairs = (end - begin) / 64;
            if (to_wrap < 16) break;  // this pair straddles: leave it to the 8-lane paths
            pairs = std::min<index_t>(pairs, static_cast<index_t>(to_wrap / 16));
            detail::dropout_group_pairs_avx512(in, out, begin, begin + 64 * pairs, threshold, scale, key);
            begin += 64 * pairs;
        }
    }
#endif
#if defined(FUSEDPROP_HAVE_AVX2)
    if (level != Simd::none && (begin & 31) == 0) {
        const index_t whole = begin + ((end - begin) & ~index_t(31));
        detail::dropout_groups_avx2(in, out, begin, whole, threshold, scale, key);
        begin = whole;
        if (begin < end) detail::dropout_partial_group_avx2<T>(in, out, begin, end, threshold, scale, key);
        return;
    }
#endif
    (void)level;
    if (begin < end) apply_range_ref<T>(in, out, begin, end, threshold, scale, key);
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

template <class T>
void dropout_apply_range(const T* in, T* out, index_t begin, index_t end, double p, DropoutKey key) {
    if (end <= begin) return;
    apply_range<T>(in, out, begin, end, dropout_threshold(p), T(1) / static_cast<T>(1.0 - p), key);
}

template void dropout_apply<float>(const float*, float*, index_t, double, DropoutKey, int);
template void dropout_apply<double>(const double*, double*, index_t, double, DropoutKey, int);
template void dropout_apply_range<float>(const float*, float*, index_t, index_t, double, DropoutKey);
template void dropout_apply_range<double>(const double*, double*, index_t, index_t, double, DropoutKey);

}  // namespace fusedprop::layers
