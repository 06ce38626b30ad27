#include "optim/adam.h"

#include <cmath>

#include "gemm/dispatch.h"
#include "optim/adam_loop.h"

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
    s.bc2_sqrt = std::sqrt(bc2);
    s.eps = o.eps;
    if (o.weight_decay == 0.0) {
        s.decay_kind = 0;
        s.decay = 0;
    } else if (o.decoupled) {
        s.decay_kind = 2;
        s.decay = 1.0 - o.lr * o.weight_decay;
    } else {
        s.decay_kind = 1;
        s.decay = o.weight_decay;
    }
    // The ISA the GEMM kernels use (checked against the CPU there; tests switch it to cover each loop).
    switch (gemm::active_isa_id()) {
#if defined(FUSEDPROP_HAVE_AVX512)
        case gemm::Isa::avx512:
            detail::adam_avx512<T>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, s);
            return;
#endif
#if defined(FUSEDPROP_HAVE_AVX2)
        case gemm::Isa::avx2:
            detail::adam_avx2<T>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, s);
            return;
#endif
        default:
            detail::adam_any<T>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, s);
    }
}

template void adam_step<float>(float*, const float*, float*, float*, float*, std::size_t, const AdamOptions&) noexcept;
template void adam_step<double>(double*, const double*, double*, double*, double*, std::size_t,
                                const AdamOptions&) noexcept;

}  // namespace fusedprop::optim
