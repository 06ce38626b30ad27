// An inline namespace named after the compile flags, for headers of inline
// vector code that translation units with different ISA flags include (the
// AVX2 and the AVX-512 kernels both include math/activation_avx2.h). Should
// the compiler emit an out-of-line copy of such a function, the linker keeps
// one copy for every caller: with the tag, an AVX-512 copy and an AVX2 copy
// are different symbols, so an AVX2-only CPU can never land in AVX-512 code.
#pragma once

#if defined(__AVX512F__)
#define FUSEDPROP_ISA_TAG isa_avx512
#elif defined(__AVX2__)
#define FUSEDPROP_ISA_TAG isa_avx2
#else
#define FUSEDPROP_ISA_TAG isa_baseline
#endif
