// Which compiled copy of the optimizer loops (update_loops.h) runs: AVX-512
// where the CPU and the OS allow it, else AVX2, else the baseline build;
// FUSEDPROP_ISA=avx2 or reference caps it, as it caps the GEMM kernels.
// All three give the same bits, so the choice is about speed only;
// set_optim_isa() switches at run time (tests compare the copies).
#pragma once

#include <cstddef>
#include <string>

#include "optim/update_loops.h"
#include "runtime/thread_pool.h"

namespace fusedprop::optim::detail {

template <class T>
struct UpdateKernels {
    void (*sgd)(T* p, const T* g, T* b, std::size_t n, const SgdScalars<T>& s, bool decay, int kind,
                bool nesterov) noexcept;
    void (*adam)(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const AdamScalars& s,
                 int decay_kind) noexcept;
    double (*sum_of_squares)(const T* a, std::size_t n) noexcept;
};

template <class T>
const UpdateKernels<T>& update_kernels();

// Runs body(begin, count) over [0, n): in chunks of kParallelChunk on the
// thread pool when n is large enough to pay for waking it, else in one
// call. The updates are elementwise, so any split gives the same bits.
inline constexpr std::size_t kParallelChunk = 32768;
template <class Body>
void for_chunks(std::size_t n, const Body& body);

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

namespace fusedprop::optim::detail {

template <class Body>
void for_chunks(std::size_t n, const Body& body) {
    if (n < 2 * kParallelChunk || runtime::get_num_threads() == 1) return body(std::size_t{0}, n);
    const std::size_t tasks = (n + kParallelChunk - 1) / kParallelChunk;
    runtime::parallel_for(tasks, [&](std::size_t t) {
        const std::size_t begin = t * kParallelChunk;
        body(begin, n - begin < kParallelChunk ? n - begin : kParallelChunk);
    });
}

}  // namespace fusedprop::optim::detail
