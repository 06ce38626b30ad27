// Optimizer state is flushed to zero where it would be subnormal.
//
// A moment that decays geometrically (a dead ReLU unit's momentum buffer, an
// Adam average whose gradient went to zero) spends a stretch of steps in the
// subnormal range, and every operation on a subnormal costs a microcode
// assist: an SGD step over 26 000 parameters took 8 us with normal buffers
// and 576 us with subnormal ones (measured, AVX2 Xeon). A subnormal moment
// moves its weight by less than lr * 2^-126, so it is dropped, as XLA's
// flush-to-zero does by default. Only the stored state is flushed; NaN and
// Inf pass through. Every backend does the same (backends/optim_numpy.py).
#pragma once

#include <cmath>
#include <limits>

#include "runtime/isa_tag.h"

namespace fusedprop::optim {
// Tagged: the optimizer loops that call it are compiled for several ISAs (update_loops.h).
inline namespace FUSEDPROP_ISA_TAG {

template <class T>
inline T flush_subnormal(T x) noexcept {
    return std::fabs(x) < std::numeric_limits<T>::min() ? T(0) : x;
}

}  // namespace FUSEDPROP_ISA_TAG
}  // namespace fusedprop::optim
