#include "optim/sgd.h"

#include "optim/update_kernels.h"

namespace fusedprop::optim {

template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buffer, std::size_t n, const SgdOptions& o) noexcept {
    const detail::SgdScalars<T> s{static_cast<T>(o.lr), static_cast<T>(o.weight_decay), static_cast<T>(o.momentum),
                                  static_cast<T>(1.0 - o.dampening)};
    const int kind = (o.momentum == 0.0 || momentum_buffer == nullptr) ? 0 : o.first_step ? 2 : 1;
    detail::update_kernels<T>().sgd(param, grad, momentum_buffer, n, s, o.weight_decay != 0.0, kind, o.nesterov);
}

template void sgd_step<float>(float*, const float*, float*, std::size_t, const SgdOptions&) noexcept;
template void sgd_step<double>(double*, const double*, double*, std::size_t, const SgdOptions&) noexcept;

}  // namespace fusedprop::optim
