// adam_loop.h's loop compiled with the AVX512 flags (and -ffp-contract=off, see there).
#include "optim/adam_loop.h"

namespace fusedprop::optim::detail {

template <class T>
void adam_avx512(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const AdamScalars& s) noexcept {
    adam_any<T>(p, g, m, v, vmax, n, s);
}

template void adam_avx512<float>(float*, const float*, float*, float*, float*, std::size_t, const AdamScalars&) noexcept;
template void adam_avx512<double>(double*, const double*, double*, double*, double*, std::size_t,
                                const AdamScalars&) noexcept;

}  // namespace fusedprop::optim::detail
