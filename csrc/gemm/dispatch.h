// Which kernels run: chosen once from runtime::cpu_features() (AVX-512
// F/DQ/BW/VL with OS support for ZMM state -> the AVX-512 kernels, else AVX2
// and FMA -> the AVX2 kernels, else the portable reference), unless
// FUSEDPROP_ISA says "reference", "avx2" or "avx512" (ignored when that ISA
// is not available here). set_isa() switches at run time (tests use it
// to cover both paths in one process); don't call it while GEMMs run.
#pragma once

#include "config.h"
#include "ukernel.h"

namespace fusedprop::gemm {

struct KernelSet {
    const Config* config;
    const UkernelTable<float>* f32;
    const UkernelTable<double>* f64;
};

const KernelSet& active_kernels();

template <class T>
const UkernelTable<T>& active_table();
template <>
inline const UkernelTable<float>& active_table<float>() { return *active_kernels().f32; }
template <>
inline const UkernelTable<double>& active_table<double>() { return *active_kernels().f64; }

// "avx512", "avx2" or "reference".
const char* active_isa();
Isa active_isa_id();

// Is this ISA compiled in and supported by this CPU?
bool isa_available(Isa isa);

// Returns false (and changes nothing) if the ISA is unknown or unavailable.
bool set_isa(const char* name);

// Tuning only (not thread safe, changes the rounding when kc changes):
// override MC, KC, NC, NB of one ISA and dtype. False if the values don't
// fit the tile (mc a multiple of MR, nc and nb of NR).
bool set_block_sizes(const char* isa, bool f64, int mc, int kc, int nc, int nb);

}  // namespace fusedprop::gemm
