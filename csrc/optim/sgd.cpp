#include "optim/sgd.h"

#include "optim/update_kernels.h"

namespace fusedprop::optim {

template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buffer, std::size_t n, const SgdOptions& o) noexcept {
    const detail::SgdScalars<T> s{static_cast<T>(o.lr), static_cast<T>(o.weight_decay), static_cast<T>(o.momentum),
                                  static_cast<T>(1.0 - o.dampening)};
    const int kind = (o.momentum == 0.0 || momentum_buffer == nullptr) ? 0 : o.first_step ? 2 : 1;
    const auto sgd = detail::update_kernels<T>().sgd;
    const bool decay = o.weight_decay != 0.0;
    detail::for_chunks(n, [&](std::size_t i, std::size_t len) {
        sgd(param + i, grad + i, momentum_buffer ? momentum_buffer + i : nullptr, len, s, decay, kind, o.nesterov);
    });
}

template void sgd_step<float>(float*, const float*, float*, std::size_t, const SgdOptions&) noexcept;
template void sgd_step<double>(double*, const double*, double*, std::size_t, const SgdOptions&) noexcept;

}  // namespace fusedprop::optim
