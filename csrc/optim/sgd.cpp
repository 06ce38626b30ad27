#include "optim/sgd.h"

#include "optim/flush.h"

namespace fusedprop::optim {

namespace {

// One loop per case, so every loop body is branch-free and vectorises.
template <class T, bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
void sgd_loop(T* __restrict p, const T* __restrict g, T* __restrict b, std::size_t n, T lr, T wd, T mom,
              T one_minus_damp) noexcept {
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

template <class T, bool kDecay>
void sgd_dispatch(T* p, const T* g, T* b, std::size_t n, const SgdOptions& o) noexcept {
    const T lr = static_cast<T>(o.lr), wd = static_cast<T>(o.weight_decay), mom = static_cast<T>(o.momentum),
            omd = static_cast<T>(1.0 - o.dampening);
    if (o.momentum == 0.0 || b == nullptr) {
        sgd_loop<T, kDecay, false, false, false>(p, g, b, n, lr, wd, mom, omd);
    } else if (o.first_step) {
        if (o.nesterov) sgd_loop<T, kDecay, true, true, true>(p, g, b, n, lr, wd, mom, omd);
        else sgd_loop<T, kDecay, true, true, false>(p, g, b, n, lr, wd, mom, omd);
    } else {
        if (o.nesterov) sgd_loop<T, kDecay, true, false, true>(p, g, b, n, lr, wd, mom, omd);
        else sgd_loop<T, kDecay, true, false, false>(p, g, b, n, lr, wd, mom, omd);
    }
}

}  // namespace

template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buffer, std::size_t n, const SgdOptions& o) noexcept {
    if (o.weight_decay != 0.0) sgd_dispatch<T, true>(param, grad, momentum_buffer, n, o);
    else sgd_dispatch<T, false>(param, grad, momentum_buffer, n, o);
}

template void sgd_step<float>(float*, const float*, float*, std::size_t, const SgdOptions&) noexcept;
template void sgd_step<double>(double*, const double*, double*, std::size_t, const SgdOptions&) noexcept;

}  // namespace fusedprop::optim
