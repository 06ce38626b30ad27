// The elementwise Adam loop of adam.cpp, compiled once per ISA: adam.cpp
// for the baseline, adam_avx2.cpp and adam_avx512.cpp with their ISA flags
// (entered only after gemm's run-time CPU check). The loop is bound by its
// sqrt and two divisions, so wider vectors are most of its speed: on an
// AVX-512 machine the baseline's SSE2 loop took about 10% of a training step
// of 784-256-256-10 sized layers.
//
// Every ISA gives the same bits: the operations are IEEE (add, multiply,
// divide and sqrt correctly rounded, no reduction), and the ISA files are
// compiled with -ffp-contract=off so that no multiply-add is fused into an
// FMA, which would round once instead of twice.
//
// Internal linkage (the unnamed namespace): each translation unit keeps its
// own instantiations, so the linker can never give a baseline caller the
// AVX-512 copy of a template, or the reverse.
#pragma once

#include <cmath>
#include <cstddef>

#include "optim/flush.h"

namespace fusedprop::optim::detail {

struct AdamScalars {
    int decay_kind;        // 0 none, 1 coupled (Adam), 2 decoupled (AdamW)
    double decay;          // 1 - lr * wd (decoupled) or wd (coupled)
    double w;              // 1 - beta1, the lerp weight
    double beta2, one_minus_beta2;
    double bc2_sqrt, eps, neg_step_size;
};

// The loop of each ISA; max_exp_avg_sq is nullptr unless AMSGrad.
template <class T>
void adam_avx2(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const AdamScalars& s) noexcept;
template <class T>
void adam_avx512(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const AdamScalars& s) noexcept;

namespace {

template <class T, int kDecay /*0 none, 1 coupled, 2 decoupled*/, bool kLerpLow, bool kAmsgrad>
void adam_loop(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, T* __restrict vmax,
               std::size_t n, const AdamScalars& s) noexcept {
    const T decay = static_cast<T>(s.decay), w = static_cast<T>(s.w), one_minus_w = static_cast<T>(1.0 - s.w),
            b2 = static_cast<T>(s.beta2), omb2 = static_cast<T>(s.one_minus_beta2),
            bc2s = static_cast<T>(s.bc2_sqrt), eps = static_cast<T>(s.eps), nss = static_cast<T>(s.neg_step_size);
    for (std::size_t i = 0; i < n; ++i) {
        T pi = p[i];
        T gi = g[i];
        if constexpr (kDecay == 2) pi = pi * decay;
        if constexpr (kDecay == 1) gi = gi + decay * pi;
        T mi = m[i];
        if constexpr (kLerpLow) {
            mi = mi + w * (gi - mi);
        } else {
            mi = gi - (gi - mi) * one_minus_w;
        }
        mi = flush_subnormal(mi);
        m[i] = mi;
        T vi = flush_subnormal(v[i] * b2 + omb2 * gi * gi);
        v[i] = vi;
        if constexpr (kAmsgrad) {
            T vm = vmax[i];
            vm = (vi > vm || vi != vi) ? vi : vm;
            vmax[i] = vm;
            vi = vm;
        }
        const T denom = std::sqrt(vi) / bc2s + eps;
        p[i] = pi + nss * (mi / denom);
    }
}

template <class T, int kDecay>
void adam_decay(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const AdamScalars& s) noexcept {
    const bool low = std::fabs(s.w) < 0.5;
    if (vmax != nullptr) {
        if (low) adam_loop<T, kDecay, true, true>(p, g, m, v, vmax, n, s);
        else adam_loop<T, kDecay, false, true>(p, g, m, v, vmax, n, s);
    } else {
        if (low) adam_loop<T, kDecay, true, false>(p, g, m, v, vmax, n, s);
        else adam_loop<T, kDecay, false, false>(p, g, m, v, vmax, n, s);
    }
}

// The loop for s's case, in this translation unit's ISA.
template <class T>
void adam_any(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const AdamScalars& s) noexcept {
    switch (s.decay_kind) {
        case 0: adam_decay<T, 0>(p, g, m, v, vmax, n, s); break;
        case 1: adam_decay<T, 1>(p, g, m, v, vmax, n, s); break;
        default: adam_decay<T, 2>(p, g, m, v, vmax, n, s); break;
    }
}

}  // namespace
}  // namespace fusedprop::optim::detail
