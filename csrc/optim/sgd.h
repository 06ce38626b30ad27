// Fused SGD update of one parameter: weight decay, momentum (with dampening
// and Nesterov) and the step in one pass over the elements.
//
// PyTorch's single-tensor rule (torch/optim/sgd.py), per element:
//   d = g + weight_decay * p                      (if weight_decay != 0)
//   b = first_step ? d : momentum * b + (1 - dampening) * d   (if momentum != 0)
//   d = nesterov ? d + momentum * b : b           (if momentum != 0)
//   p = p - lr * d
// Scalars are rounded to T first, as PyTorch does for a T tensor.
#pragma once

#include <cstddef>

namespace fusedprop::optim {

struct SgdOptions {
    double lr = 0;
    double momentum = 0;
    double dampening = 0;
    double weight_decay = 0;
    bool nesterov = false;
    bool first_step = false;  // fill the momentum buffer instead of decaying it
};

// param, grad and momentum_buffer (nullptr when momentum == 0) hold n
// contiguous elements; param and momentum_buffer are updated in place.
template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buffer, std::size_t n, const SgdOptions& o) noexcept;

extern template void sgd_step<float>(float*, const float*, float*, std::size_t, const SgdOptions&) noexcept;
extern template void sgd_step<double>(double*, const double*, double*, std::size_t, const SgdOptions&) noexcept;

}  // namespace fusedprop::optim
