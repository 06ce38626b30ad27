// The sum of the squares of n contiguous elements, accumulated in double
// (scikit-learn's L2 loss term is 0.5 * alpha * this, over the weights).
// Vectorised, and the same bits on every ISA (update_loops.h); not split
// over threads: a layer's weights take a few microseconds.
#pragma once

#include <cstddef>

namespace fusedprop::optim {

template <class T>
double sum_of_squares(const T* a, std::size_t n) noexcept;

extern template double sum_of_squares<float>(const float*, std::size_t) noexcept;
extern template double sum_of_squares<double>(const double*, std::size_t) noexcept;

}  // namespace fusedprop::optim
