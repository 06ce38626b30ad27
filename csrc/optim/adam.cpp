#include "optim/adam.h"

#include <cmath>

#include "optim/flush.h"

namespace fusedprop::optim {

namespace {

struct AdamScalars {
    double decay;          // 1 - lr * wd (decoupled) or wd (coupled)
    double w;              // 1 - beta1, the lerp weight
    double beta2, one_minus_beta2;
    double bc2_sqrt, eps, neg_step_size;
};

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
void adam_dispatch(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const AdamScalars& s) noexcept {
    const bool low = std::fabs(s.w) < 0.5;
    if (vmax != nullptr) {
        if (low) adam_loop<T, kDecay, true, true>(p, g, m, v, vmax, n, s);
        else adam_loop<T, kDecay, false, true>(p, g, m, v, vmax, n, s);
    } else {
        if (low) adam_loop<T, kDecay, true, false>(p, g, m, v, vmax, n, s);
        else adam_loop<T, kDecay, false, false>(p, g, m, v, vmax, n, s);
    }
}

}  // namespace

template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, std::size_t n,
               const AdamOptions& o) noexcept {
    AdamScalars s;
    s.w = 1.0 - o.beta1;
    s.beta2 = o.beta2;
    s.one_minus_beta2 = 1.0 - o.beta2;
    const double bc1 = 1.0 - std::pow(o.beta1, o.step);
    const double bc2 = 1.0 - std::pow(o.beta2, o.step);
    s.neg_step_size = -(o.lr / bc1);
    s.bc2_sqrt = std::sqrt(bc2);
    s.eps = o.eps;
    if (o.weight_decay == 0.0) {
        s.decay = 0;
        adam_dispatch<T, 0>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, s);
    } else if (o.decoupled) {
        s.decay = 1.0 - o.lr * o.weight_decay;
        adam_dispatch<T, 2>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, s);
    } else {
        s.decay = o.weight_decay;
        adam_dispatch<T, 1>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, s);
    }
}

template void adam_step<float>(float*, const float*, float*, float*, float*, std::size_t, const AdamOptions&) noexcept;
template void adam_step<double>(double*, const double*, double*, double*, double*, std::size_t,
                                const AdamOptions&) noexcept;

}  // namespace fusedprop::optim
