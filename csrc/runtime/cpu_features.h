// What the CPU and the OS let us run. Detected once, on first use.
#pragma once

#include <string>

namespace fusedprop::runtime {

struct CpuFeatures {
    bool sse2 = false;
    bool avx = false;      // CPU has AVX and the OS saves YMM state
    bool avx2 = false;
    bool fma = false;
    bool avx512f = false;  // CPU has AVX-512F and the OS saves ZMM state
    bool avx512dq = false;
    bool avx512bw = false;
    bool avx512vl = false;
};

const CpuFeatures& cpu_features();

// "AMD EPYC 7B13", or "unknown" where cpuid has no brand string.
std::string cpu_model_name();

// The instruction sets the kernels come in. Every kernel family (GEMM,
// activations, optimizer updates, dropout) picks its copy with the two
// functions below, so FUSEDPROP_ISA caps them all alike.
enum class Isa : int { reference = 0, avx2 = 1, avx512 = 2 };

// "reference", "avx2" or "avx512" into *out; false (and *out untouched) otherwise.
bool parse_isa(const char* name, Isa* out);

// Compiled into this build (FUSEDPROP_HAVE_AVX2 / _AVX512) and runnable
// here: AVX2 needs AVX2+FMA; AVX-512 needs F, DQ, BW, VL with the OS saving
// ZMM state, and AVX2+FMA too (its kernels call the AVX2 helpers).
bool isa_supported(Isa isa);

// The widest supported ISA, capped by FUSEDPROP_ISA when it names one
// (read once, at first use).
Isa default_isa();

}  // namespace fusedprop::runtime
