// Fused Adam / AdamW (optionally AMSGrad) update of one parameter in one pass.
//
// PyTorch's single-tensor rule (torch/optim/adam.py), per element, with
// w = 1 - beta1, bc1 = 1 - beta1^step, bc2 = 1 - beta2^step:
//   p = p * (1 - lr * wd)                 (AdamW, decoupled, if wd != 0)
//   g = g + wd * p                        (Adam, if wd != 0)
//   m = |w| < 0.5 ? m + w * (g - m) : g - (g - m) * (1 - w)     (lerp)
//   v = v * beta2 + (1 - beta2) * g * g
//   vmax = max(vmax, v)                   (AMSGrad; NaN propagates)
//   denom = sqrt(AMSGrad ? vmax : v) * (1 / sqrt(bc2)) + eps
//   p = p + (-lr / bc1) * (m / denom)
// One departure: PyTorch divides by sqrt(bc2); we multiply by its reciprocal
// (rounded to T once per step). A division and a square root per element
// are the divider's whole budget, and a second division cost 30% of the
// update (1.45 -> 1.10 cycles per f32 element on Zen 4). denom moves by at
// most about an ulp, the parameters by far less than the tests' tolerances
// against PyTorch; every backend and ISA still gives the same bits.
#pragma once

#include <cstddef>

namespace fusedprop::optim {

struct AdamOptions {
    double step = 1;  // after the increment: 1 on the first update
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0;
    bool decoupled = false;  // AdamW
};

// All arrays hold n contiguous elements; max_exp_avg_sq is nullptr unless AMSGrad.
template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, std::size_t n,
               const AdamOptions& o) noexcept;

extern template void adam_step<float>(float*, const float*, float*, float*, float*, std::size_t,
                                      const AdamOptions&) noexcept;
extern template void adam_step<double>(double*, const double*, double*, double*, double*, std::size_t,
                                       const AdamOptions&) noexcept;

}  // namespace fusedprop::optim
