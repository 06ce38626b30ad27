// Run-time choice of the optimizer loops' copy (update_kernels.h).
#include <atomic>
#include <stdexcept>

#include "optim/sum_of_squares.h"
#include "optim/update_kernels.h"
#include "runtime/cpu_features.h"

namespace fusedprop::optim {
namespace {

using runtime::Isa;

std::atomic<int> g_isa{-1};  // -1: not decided yet

Isa current_isa() {
    int v = g_isa.load(std::memory_order_relaxed);
    if (v < 0) {
        v = static_cast<int>(runtime::default_isa());
        g_isa.store(v, std::memory_order_relaxed);
    }
    return static_cast<Isa>(v);
}

template <class T>
detail::UpdateKernels<T> kernels_for(Isa isa) {
    switch (isa) {
#ifdef FUSEDPROP_HAVE_AVX512
        case Isa::avx512: return detail::avx512_update_kernels<T>();
#endif
#ifdef FUSEDPROP_HAVE_AVX2
        case Isa::avx2: return detail::avx2_update_kernels<T>();
#endif
        default: return {&detail::sgd_update<T>, &detail::adam_update<T>, &detail::sum_of_squares<T>};
    }
}

template <class T>
const detail::UpdateKernels<T>& table(Isa isa) {
    static const detail::UpdateKernels<T> tables[3] = {kernels_for<T>(Isa::reference), kernels_for<T>(Isa::avx2),
                                                      kernels_for<T>(Isa::avx512)};
    return tables[static_cast<int>(isa)];
}

}  // namespace

namespace detail {

template <class T>
const UpdateKernels<T>& update_kernels() {
    return table<T>(current_isa());
}

template const UpdateKernels<float>& update_kernels<float>();
template const UpdateKernels<double>& update_kernels<double>();

}  // namespace detail

template <class T>
double sum_of_squares(const T* a, std::size_t n) noexcept {
    return detail::update_kernels<T>().sum_of_squares(a, n);
}
template double sum_of_squares<float>(const float*, std::size_t) noexcept;
template double sum_of_squares<double>(const double*, std::size_t) noexcept;

std::string optim_isa() {
    switch (current_isa()) {
        case Isa::avx512: return "avx512";
        case Isa::avx2: return "avx2";
        default: return "reference";
    }
}

void set_optim_isa(const std::string& name) {
    Isa isa = runtime::default_isa();
    if (name != "auto" && !runtime::parse_isa(name.c_str(), &isa))
        throw std::invalid_argument("set_optim_isa: unknown ISA '" + name +
                                    "'; expected one of auto, avx512, avx2, reference");
    if (!runtime::isa_supported(isa))
        throw std::invalid_argument("set_optim_isa: " + name + " is not available on this CPU or in this build");
    g_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace fusedprop::optim
