// The AVX-512 peak loop. Compiled with -mavx512f -mavx512dq -mavx512bw
// -mavx512vl -mfma; called only when cpu_features() reports AVX-512 with OS
// support for ZMM state, and the AVX-512 GEMM kernels are the ones in use
// (see fma_peak.cpp), so "% of peak" is of the ISA the GEMM runs.
//
// The same loop as fma_peak_avx2.cpp on ZMM registers: 12 independent
// accumulators. Measured on the Sapphire Rapids development machine with an
// asm probe (12 chains, nothing merged): ZMM 200-228 GFLOP/s f32 against
// 113-120 for YMM, so the core has two 512-bit FMA pipes; 4 chains run at
// half rate (latency 4), 8 already saturate both pipes.
#include <immintrin.h>

#include <chrono>

#include "fma_peak.h"

namespace fusedprop::runtime::detail {
namespace {

double wall_seconds() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

constexpr int kInner = 1 << 16;  // FMAs per chain between clock reads (fma_peak_avx2.cpp)

// Distinct starts per chain, or the compiler merges identical chains.
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

// Through memory: GCC 12's _mm512_reduce_add_* warn (-Wmaybe-uninitialized).
double hsum_ps(__m512 v) {
    alignas(64) float t[16];
    _mm512_store_ps(t, v);
    double s = 0;
    for (float x : t) s += x;
    return s;
}
double hsum_pd(__m512d v) {
    alignas(64) double t[8];
    _mm512_store_pd(t, v);
    double s = 0;
    for (double x : t) s += x;
    return s;
}

}  // namespace

FmaLoopResult fma_loop_avx512(bool double_precision, double seconds) {
    // c <- c*a + b converges to b / (1 - a): finite, never denormal.
    if (double_precision) {
        __m512d init[12];
        for (int i = 0; i < 12; ++i) init[i] = _mm512_set1_pd(1.0 + 0.125 * i);
        return run(_mm512_set1_pd(0.999999), _mm512_set1_pd(1e-6), init, 8,
                   [](__m512d c, __m512d x, __m512d y) { return _mm512_fmadd_pd(c, x, y); },
                   [](__m512d x, __m512d y) { return _mm512_add_pd(x, y); }, &hsum_pd, seconds);
    }
    __m512 init[12];
    for (int i = 0; i < 12; ++i) init[i] = _mm512_set1_ps(1.0f + 0.125f * i);
    return run(_mm512_set1_ps(0.9999f), _mm512_set1_ps(1e-4f), init, 16,
               [](__m512 c, __m512 x, __m512 y) { return _mm512_fmadd_ps(c, x, y); },
               [](__m512 x, __m512 y) { return _mm512_add_ps(x, y); }, &hsum_ps, seconds);
}

}  // namespace fusedprop::runtime::detail
