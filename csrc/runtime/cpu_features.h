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

}  // namespace fusedprop::runtime
