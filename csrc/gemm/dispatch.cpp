// Kernel selection. Compiled with baseline flags: it must run on any CPU,
// since it decides whether the AVX2 and AVX-512 translation units may be
// entered.
#include "dispatch.h"

#include <atomic>

#include "runtime/cpu_features.h"

namespace fusedprop::gemm {
namespace {

// Mutable copies of config.h's table: tuning tools may override block sizes
// at run time (set_block_sizes); everyone else sees the table's values.
Config g_configs[] = {config_for(Isa::reference), config_for(Isa::avx2), config_for(Isa::avx512)};

const KernelSet kReference = {&g_configs[0], &kUkernelF32Ref, &kUkernelF64Ref};
#if defined(FUSEDPROP_HAVE_AVX2)
const KernelSet kAvx2 = {&g_configs[1], &kUkernelF32Avx2, &kUkernelF64Avx2};
#endif
#if defined(FUSEDPROP_HAVE_AVX512)
const KernelSet kAvx512 = {&g_configs[2], &kUkernelF32Avx512, &kUkernelF64Avx512};
#endif

const KernelSet* kernels_for(Isa isa) {
#if defined(FUSEDPROP_HAVE_AVX2)
    if (isa == Isa::avx2) return &kAvx2;
#endif
#if defined(FUSEDPROP_HAVE_AVX512)
    if (isa == Isa::avx512) return &kAvx512;
#endif
    if (isa == Isa::reference) return &kReference;
    return nullptr;
}

const KernelSet* choose_at_startup() { return kernels_for(runtime::default_isa()); }

std::atomic<const KernelSet*> g_active{nullptr};

}  // namespace

bool isa_available(Isa isa) {
    return kernels_for(isa) != nullptr && runtime::isa_supported(isa);  // compiled in, and this CPU runs it
}

const KernelSet& active_kernels() {
    const KernelSet* k = g_active.load(std::memory_order_acquire);
    if (k == nullptr) {
        k = choose_at_startup();
        g_active.store(k, std::memory_order_release);
    }
    return *k;
}

const char* active_isa() { return active_kernels().config->name; }
Isa active_isa_id() { return active_kernels().config->isa; }

bool set_isa(const char* name) {
    Isa isa;
    if (!runtime::parse_isa(name, &isa) || !isa_available(isa)) return false;
    g_active.store(kernels_for(isa), std::memory_order_release);
    return true;
}

bool set_block_sizes(const char* isa_name, bool f64, int mc, int kc, int nc, int nb) {
    Isa isa;
    if (!runtime::parse_isa(isa_name, &isa)) return false;
    BlockSizes& bs = f64 ? g_configs[static_cast<int>(isa)].f64 : g_configs[static_cast<int>(isa)].f32;
    const auto multiple_of = [](int size, int unit) { return size >= unit && size % unit == 0; };
    if (!multiple_of(mc, bs.mr) || kc < 1 || !multiple_of(nc, bs.nr) || !multiple_of(nb, bs.nr)) return false;
    bs.mc = mc;
    bs.kc = kc;
    bs.nc = nc;
    bs.nb = nb;
    return true;
}

}  // namespace fusedprop::gemm
