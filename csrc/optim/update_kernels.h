// Which compiled copy of the optimizer loops (update_loops.h) runs: AVX-512
// where the CPU and the OS allow it, else AVX2, else the baseline build;
// FUSEDPROP_ISA=avx2 or reference caps it, as it caps the GEMM kernels.
// All three give the same bits, so the choice is about speed only;
// set_optim_isa() switches at run time (tests compare the copies).
#pragma once

#include <cstddef>
#include <string>

#include "optim/update_loops.h"

namespace fusedprop::optim::detail {

template <class T>
struct UpdateKernels {
    void (*sgd)(T* p, const T* g, T* b, std::size_t n, const SgdScalars<T>& s, bool decay, int kind,
                bool nesterov) noexcept;
    void (*adam)(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const AdamScalars& s,
                 int decay_kind) noexcept;
};

template <class T>
const UpdateKernels<T>& update_kernels();

// The copies compiled with other flags (update_avx2.cpp, update_avx512.cpp).
template <class T>
UpdateKernels<T> avx2_update_kernels();
template <class T>
UpdateKernels<T> avx512_update_kernels();

}  // namespace fusedprop::optim::detail

namespace fusedprop::optim {

// "avx512", "avx2" or "reference".
std::string optim_isa();
// "auto", "avx512", "avx2" or "reference"; std::invalid_argument if unknown
// or not available on this CPU or in this build.
void set_optim_isa(const std::string& name);

}  // namespace fusedprop::optim
