// Run-time choice of the optimizer loops' copy (update_kernels.h).
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "optim/update_kernels.h"
#include "runtime/cpu_features.h"

namespace fusedprop::optim {
namespace {

enum class Isa : int { reference = 0, avx2 = 1, avx512 = 2 };

bool available(Isa isa) {
    const auto& f = runtime::cpu_features();
    switch (isa) {
        case Isa::reference: return true;
        case Isa::avx2:
#ifdef FUSEDPROP_HAVE_AVX2
            return f.avx2;
#else
            return false;
#endif
        case Isa::avx512:
#ifdef FUSEDPROP_HAVE_AVX512
            return f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl;
#else
            return false;
#endif
    }
    return false;
}

Isa auto_isa() {
    const char* env = std::getenv("FUSEDPROP_ISA");
    Isa cap = Isa::avx512;
    if (env != nullptr && std::strcmp(env, "reference") == 0) cap = Isa::reference;
    if (env != nullptr && std::strcmp(env, "avx2") == 0) cap = Isa::avx2;
    for (int i = static_cast<int>(cap); i > 0; --i)
        if (available(static_cast<Isa>(i))) return static_cast<Isa>(i);
    return Isa::reference;
}

std::atomic<int> g_isa{-1};  // -1: not decided yet

Isa current_isa() {
    int v = g_isa.load(std::memory_order_relaxed);
    if (v < 0) {
        v = static_cast<int>(auto_isa());
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
        default: return {&detail::sgd_update<T>, &detail::adam_update<T>};
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

std::string optim_isa() {
    switch (current_isa()) {
        case Isa::avx512: return "avx512";
        case Isa::avx2: return "avx2";
        default: return "reference";
    }
}

void set_optim_isa(const std::string& name) {
    Isa isa;
    if (name == "auto") isa = auto_isa();
    else if (name == "reference") isa = Isa::reference;
    else if (name == "avx2") isa = Isa::avx2;
    else if (name == "avx512") isa = Isa::avx512;
    else throw std::invalid_argument("set_optim_isa: unknown ISA '" + name +
                                     "'; expected one of auto, avx512, avx2, reference");
    if (!available(isa))
        throw std::invalid_argument("set_optim_isa: " + name + " is not available on this CPU or in this build");
    g_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace fusedprop::optim
