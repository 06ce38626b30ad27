#include "optim/adam.h"

#include <cmath>

#include "optim/update_kernels.h"

namespace fusedprop::optim {

template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, std::size_t n,
               const AdamOptions& o) noexcept {
    detail::AdamScalars s;
    s.w = 1.0 - o.beta1;
    s.beta2 = o.beta2;
    s.one_minus_beta2 = 1.0 - o.beta2;
    const double bc1 = 1.0 - std::pow(o.beta1, o.step);
    const double bc2 = 1.0 - std::pow(o.beta2, o.step);
    s.neg_step_size = -(o.lr / bc1);
    s.inv_bc2_sqrt = 1.0 / std::sqrt(bc2);
    s.eps = o.eps;
    int decay_kind = 0;
    s.decay = 0;
    if (o.weight_decay != 0.0 && o.decoupled) {
        s.decay = 1.0 - o.lr * o.weight_decay;
        decay_kind = 2;
    } else if (o.weight_decay != 0.0) {
        s.decay = o.weight_decay;
        decay_kind = 1;
    }
    const auto adam = detail::update_kernels<T>().adam;
    detail::for_chunks(n, [&](std::size_t i, std::size_t len) {
        adam(param + i, grad + i, exp_avg + i, exp_avg_sq + i, max_exp_avg_sq ? max_exp_avg_sq + i : nullptr, len, s,
             decay_kind);
    });
}

template void adam_step<float>(float*, const float*, float*, float*, float*, std::size_t, const AdamOptions&) noexcept;
template void adam_step<double>(double*, const double*, double*, double*, double*, std::size_t,
                                const AdamOptions&) noexcept;

}  // namespace fusedprop::optim
