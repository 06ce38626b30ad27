#include "cpu_features.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define FUSEDPROP_X86 1
#include <cpuid.h>
#endif

namespace fusedprop::runtime {

#ifdef FUSEDPROP_X86
namespace {

struct Regs {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(unsigned leaf, unsigned subleaf = 0) {
    Regs r;
    __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
    return r;
}

// XGETBV through inline asm: the intrinsic needs -mxsave, and this file is
// compiled for baseline x86-64.
std::uint64_t xgetbv0() {
    std::uint32_t lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

CpuFeatures detect() {
    CpuFeatures f;
    const unsigned max_leaf = cpuid(0).eax;
    const Regs l1 = cpuid(1);
    f.sse2 = (l1.edx >> 26) & 1;
    const bool osxsave = (l1.ecx >> 27) & 1;
    const bool cpu_avx = (l1.ecx >> 28) & 1;
    const bool cpu_fma = (l1.ecx >> 12) & 1;

    // The CPU flag alone is not enough: the OS must save the wider registers
    // on a context switch, or AVX code corrupts other processes' state.
    std::uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    const bool os_ymm = (xcr0 & 0x6) == 0x6;            // SSE + AVX state
    const bool os_zmm = os_ymm && (xcr0 & 0xE0) == 0xE0;  // opmask + ZMM state

    f.avx = cpu_avx && os_ymm;
    f.fma = f.avx && cpu_fma;
    if (max_leaf >= 7) {
        const Regs l7 = cpuid(7, 0);
        f.avx2 = f.avx && ((l7.ebx >> 5) & 1);
        f.avx512f = os_zmm && ((l7.ebx >> 16) & 1);
        f.avx512dq = f.avx512f && ((l7.ebx >> 17) & 1);
        f.avx512bw = f.avx512f && ((l7.ebx >> 30) & 1);
        f.avx512vl = f.avx512f && ((l7.ebx >> 31) & 1);
    }
    return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detect();
    return features;
}

std::string cpu_model_name() {
    if (cpuid(0x80000000).eax < 0x80000004) return "unknown";
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
        Regs r = cpuid(0x80000002 + i);
        std::memcpy(brand + 16 * i + 0, &r.eax, 4);
        std::memcpy(brand + 16 * i + 4, &r.ebx, 4);
        std::memcpy(brand + 16 * i + 8, &r.ecx, 4);
        std::memcpy(brand + 16 * i + 12, &r.edx, 4);
    }
    std::string name(brand);
    const auto first = name.find_first_not_of(' ');
    const auto last = name.find_last_not_of(' ');
    return first == std::string::npos ? "unknown" : name.substr(first, last - first + 1);
}

#else  // not x86: only the portable kernels exist

const CpuFeatures& cpu_features() {
    static const CpuFeatures features{};
    return features;
}

std::string cpu_model_name() { return "unknown"; }

#endif

bool parse_isa(const char* name, Isa* out) {
    if (name == nullptr) return false;
    if (std::strcmp(name, "reference") == 0) *out = Isa::reference;
    else if (std::strcmp(name, "avx2") == 0) *out = Isa::avx2;
    else if (std::strcmp(name, "avx512") == 0) *out = Isa::avx512;
    else return false;
    return true;
}

bool isa_supported(Isa isa) {
    const CpuFeatures& f = cpu_features();
    switch (isa) {
        case Isa::reference: return true;
        case Isa::avx2:
#ifdef FUSEDPROP_HAVE_AVX2
            return f.avx2 && f.fma;
#else
            return false;
#endif
        case Isa::avx512:
#ifdef FUSEDPROP_HAVE_AVX512
            return f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl && f.avx2 && f.fma;
#else
            return false;
#endif
    }
    (void)f;
    return false;
}

Isa default_isa() {
    static const Isa isa = [] {
        Isa cap = Isa::avx512;
        parse_isa(std::getenv("FUSEDPROP_ISA"), &cap);
        for (int i = static_cast<int>(cap); i > 0; --i)
            if (isa_supported(static_cast<Isa>(i))) return static_cast<Isa>(i);
        return Isa::reference;
    }();
    return isa;
}

}  // namespace fusedprop::runtime
