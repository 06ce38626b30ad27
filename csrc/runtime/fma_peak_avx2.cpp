// The AVX2+FMA peak loop. Compiled with -mavx2 -mfma; called only when
// cpu_features() reports both (see fma_peak.cpp).
//
// 12 independent YMM accumulators: Zen 3 and Haswell..Alder Lake have two FMA
// pipes with a latency of 4-5 cycles, so 8-10 chains in flight keep both busy;
// 12 leaves headroom and still fits the 16 YMM registers with the two
// multiplier/addend registers.
#include <immintrin.h>

#include <chrono>

#include "fma_peak.h"

namespace fusedprop::runtime::detail {
namespace {

double wall_seconds() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// FMAs per accumulator between clock reads. The thread CPU clock is a system
// call (about a microsecond, no vDSO): at 1 << 13 (50 000 cycles a round) it
// took 5-6% of the loop and the "peak" read 89-94 GFLOP/s f32 on a core
// where the GEMM's own k loop runs at 99. 1 << 16 makes it well under 1%.
constexpr int kInner = 1 << 16;

// Each chain starts from its own value: with equal starts the compiler proves
// the 12 chains identical and keeps one (GCC -O3 does), and the loop then
// "measures" 12 times the FMAs it runs.
template <class V, class Fma, class Add>
FmaLoopResult run(V a, V b, const V (&init)[12], int lanes, Fma fma, Add add, double (*hsum)(V), double seconds) {
    V c0 = init[0], c1 = init[1], c2 = init[2], c3 = init[3], c4 = init[4], c5 = init[5];
    V c6 = init[6], c7 = init[7], c8 = init[8], c9 = init[9], c10 = init[10], c11 = init[11];
    long long rounds = 0;
    const double cpu0 = thread_cpu_seconds();
    const double wall0 = wall_seconds();
    double elapsed = 0;
    do {
        for (int i = 0; i < kInner; ++i) {
            c0 = fma(c0, a, b); c1 = fma(c1, a, b); c2 = fma(c2, a, b); c3 = fma(c3, a, b);
            c4 = fma(c4, a, b); c5 = fma(c5, a, b); c6 = fma(c6, a, b); c7 = fma(c7, a, b);
            c8 = fma(c8, a, b); c9 = fma(c9, a, b); c10 = fma(c10, a, b); c11 = fma(c11, a, b);
        }
        ++rounds;
    } while (!loop_done(cpu0, wall0, seconds, &elapsed));
    V s = add(add(add(c0, c1), add(c2, c3)), add(add(c4, c5), add(c6, c7)));
    s = add(s, add(add(c8, c9), add(c10, c11)));
    FmaLoopResult r;
    r.flops = 2.0 * 12.0 * lanes * static_cast<double>(kInner) * static_cast<double>(rounds);
    r.seconds = elapsed;
    r.sink = hsum(s);
    return r;
}

double hsum_ps(__m256 v) {
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    double s = 0;
    for (float x : t) s += x;
    return s;
}

double hsum_pd(__m256d v) {
    alignas(32) double t[4];
    _mm256_store_pd(t, v);
    return t[0] + t[1] + t[2] + t[3];
}

}  // namespace

FmaLoopResult fma_loop_avx2(bool double_precision, double seconds) {
    // c <- c*a + b converges to b / (1 - a): finite, never denormal.
    if (double_precision) {
        __m256d init[12];
        for (int i = 0; i < 12; ++i) init[i] = _mm256_set1_pd(1.0 + 0.125 * i);
        return run(_mm256_set1_pd(0.999999), _mm256_set1_pd(1e-6), init, 4,
                   [](__m256d c, __m256d x, __m256d y) { return _mm256_fmadd_pd(c, x, y); },
                   [](__m256d x, __m256d y) { return _mm256_add_pd(x, y); }, &hsum_pd, seconds);
    }
    __m256 init[12];
    for (int i = 0; i < 12; ++i) init[i] = _mm256_set1_ps(1.0f + 0.125f * i);
    return run(_mm256_set1_ps(0.9999f), _mm256_set1_ps(1e-4f), init, 8,
               [](__m256 c, __m256 x, __m256 y) { return _mm256_fmadd_ps(c, x, y); },
               [](__m256 x, __m256 y) { return _mm256_add_ps(x, y); }, &hsum_ps, seconds);
}

}  // namespace fusedprop::runtime::detail
