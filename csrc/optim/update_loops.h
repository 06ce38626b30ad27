// The element loops of the optimizer updates and the sum of squares of a
// parameter, written once and compiled three times: baseline (sgd.cpp,
// adam.cpp, update_dispatch.cpp), AVX2 and AVX-512 (update_avx2.cpp,
// update_avx512.cpp), picked at run time (update_kernels.h).
//
// Every ISA gives the same bits: the loops use only +, -, *, /, sqrt and
// compares, each correctly rounded whatever the vector width, in the same
// order, and the ISA files are compiled with -ffp-contract=off so that no
// a * b + c becomes an FMA (which rounds once instead of twice).
#pragma once

#include <cmath>
#include <cstddef>

#include "optim/flush.h"
#include "runtime/isa_tag.h"

namespace fusedprop::optim::detail {

// Adam's per-step scalars in double; the loops round them to T first, as
// PyTorch does for a T tensor.
struct AdamScalars {
    double decay;          // 1 - lr * wd (decoupled) or wd (coupled)
    double w;              // 1 - beta1, the lerp weight
    double beta2, one_minus_beta2;
    double inv_bc2_sqrt, eps, neg_step_size;  // inv_bc2_sqrt = 1 / sqrt(1 - beta2^step)
};

// SGD's scalars, already rounded to T (PyTorch rounds them per tensor).
template <class T>
struct SgdScalars {
    T lr, wd, mom, one_minus_damp;
};

inline namespace FUSEDPROP_ISA_TAG {

// One loop per case, so every loop body is branch-free and vectorises.
template <class T, bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
void sgd_loop(T* __restrict p, const T* __restrict g, T* __restrict b, std::size_t n,
              const SgdScalars<T>& s) noexcept {
    const T lr = s.lr, wd = s.wd, mom = s.mom, one_minus_damp = s.one_minus_damp;
    for (std::size_t i = 0; i < n; ++i) {
        T d = g[i];
        if constexpr (kDecay) d = d + wd * p[i];
        if constexpr (kMomentum) {
            T buf;
            if constexpr (kFirst) {
                buf = d;
            } else {
                buf = b[i] * mom + one_minus_damp * d;
            }
            buf = flush_subnormal(buf);
            b[i] = buf;
            if constexpr (kNesterov) {
                d = d + mom * buf;
            } else {
                d = buf;
            }
        }
        p[i] = p[i] - lr * d;
    }
}

// kind: 0 plain, 1 momentum, 2 momentum on the first step; nesterov on top.
template <class T, bool kDecay>
void sgd_cases(T* p, const T* g, T* b, std::size_t n, const SgdScalars<T>& s, int kind, bool nesterov) noexcept {
    if (kind == 0) {
        sgd_loop<T, kDecay, false, false, false>(p, g, b, n, s);
    } else if (kind == 2) {
        if (nesterov) sgd_loop<T, kDecay, true, true, true>(p, g, b, n, s);
        else sgd_loop<T, kDecay, true, true, false>(p, g, b, n, s);
    } else {
        if (nesterov) sgd_loop<T, kDecay, true, false, true>(p, g, b, n, s);
        else sgd_loop<T, kDecay, true, false, false>(p, g, b, n, s);
    }
}

template <class T>
void sgd_update(T* p, const T* g, T* b, std::size_t n, const SgdScalars<T>& s, bool decay, int kind,
                bool nesterov) noexcept {
    if (decay) sgd_cases<T, true>(p, g, b, n, s, kind, nesterov);
    else sgd_cases<T, false>(p, g, b, n, s, kind, nesterov);
}

template <class T, int kDecay /*0 none, 1 coupled, 2 decoupled*/, bool kLerpLow, bool kAmsgrad>
void adam_loop(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, T* __restrict vmax,
               std::size_t n, const AdamScalars& s) noexcept {
    const T decay = static_cast<T>(s.decay), w = static_cast<T>(s.w), one_minus_w = static_cast<T>(1.0 - s.w),
            b2 = static_cast<T>(s.beta2), omb2 = static_cast<T>(s.one_minus_beta2),
            inv_bc2s = static_cast<T>(s.inv_bc2_sqrt), eps = static_cast<T>(s.eps),
            nss = static_cast<T>(s.neg_step_size);
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
        const T denom = std::sqrt(vi) * inv_bc2s + eps;
        p[i] = pi + nss * (mi / denom);
    }
}

template <class T, int kDecay>
void adam_cases(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const AdamScalars& s) noexcept {
    const bool low = std::fabs(s.w) < 0.5;
    if (vmax != nullptr) {
        if (low) adam_loop<T, kDecay, true, true>(p, g, m, v, vmax, n, s);
        else adam_loop<T, kDecay, false, true>(p, g, m, v, vmax, n, s);
    } else {
        if (low) adam_loop<T, kDecay, true, false>(p, g, m, v, vmax, n, s);
        else adam_loop<T, kDecay, false, false>(p, g, m, v, vmax, n, s);
    }
}

// decay_kind: 0 none, 1 coupled (Adam), 2 decoupled (AdamW).
template <class T>
void adam_update(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const AdamScalars& s,
                 int decay_kind) noexcept {
    if (decay_kind == 0) adam_cases<T, 0>(p, g, m, v, vmax, n, s);
    else if (decay_kind == 2) adam_cases<T, 2>(p, g, m, v, vmax, n, s);
    else adam_cases<T, 1>(p, g, m, v, vmax, n, s);
}

// The sum of a[i]^2 in double (scikit-learn's L2 loss term, over a
// layer's weights). Element i goes into partial sum i % kSquarePartials and
// the partials are added pairwise at the end, so every vector width adds in
// the same order: the same bits on every ISA. Fewer partials make a chain
// of dependent adds (4 cycles each): on 85k weights (scikit-learn's digits
// net, Zen 5) four partials in the baseline build took 12 us (f64) and 15 us
// (f32) per step, these 16 with AVX-512 4 us.
inline constexpr std::size_t kSquarePartials = 16;
template <class T>
double sum_of_squares(const T* __restrict a, std::size_t n) noexcept {
    constexpr std::size_t P = kSquarePartials;
    double s[P] = {};
    std::size_t i = 0;
    for (; i + P <= n; i += P)
        for (std::size_t j = 0; j < P; ++j) {
            const double x = a[i + j];
            s[j] += x * x;
        }
    for (std::size_t j = 0; i + j < n; ++j) {
        const double x = a[i + j];
        s[j] += x * x;
    }
    for (std::size_t w = P / 2; w > 0; w /= 2)
        for (std::size_t j = 0; j < w; ++j) s[j] += s[j + w];
    return s[0];
}

}  // namespace FUSEDPROP_ISA_TAG
}  // namespace fusedprop::optim::detail
