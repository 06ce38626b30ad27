// Which compiled copy of the normalisation loops (norm_loops.h) runs: AVX2
// where the CPU has it (AVX-512 CPUs too), else the baseline build;
// FUSEDPROP_ISA=reference caps it, as it caps the GEMM kernels. Both give
// the same bits, so the choice is about speed only (a test runs each in a
// child process and compares).
//
// No AVX-512 copy: LayerNorm's row sums keep eight partial sums (one YMM),
// which GCC's 512-bit code splits and shuffles back, 2x slower than the
// baseline build; BatchNorm's column loops gained 10% at most from ZMM
// (256 x 512 f32, Zen 4, 2026-12-07).
#pragma once

#include "layers/norm_loops.h"

namespace fusedprop::layers::detail {

template <class T>
struct NormKernels {
    decltype(&bn_forward_train_block<T>) bn_forward_train;
    decltype(&bn_stats_block<T>) bn_stats;
    decltype(&affine_rows<T>) affine_rows;
    decltype(&bn_forward_eval_block<T>) bn_forward_eval;
    decltype(&bn_backward_block<T>) bn_backward;
    decltype(&ln_forward_rows<T>) ln_forward;
    decltype(&ln_backward_rows<T>) ln_backward;
    decltype(&ln_weight_grad_block<T>) ln_weight_grad;
};

// This translation unit's copies of the loops, as a table.
#define FUSEDPROP_NORM_KERNELS(T)                                                                   \
    NormKernels<T> {                                                                                \
        &bn_forward_train_block<T>, &bn_stats_block<T>, &affine_rows<T>, &bn_forward_eval_block<T>, \
            &bn_backward_block<T>, &ln_forward_rows<T>, &ln_backward_rows<T>, &ln_weight_grad_block<T> \
    }

template <class T>
const NormKernels<T>& norm_kernels();

// The copy compiled with AVX2 flags (norm_avx2.cpp).
template <class T>
NormKernels<T> avx2_norm_kernels();

}  // namespace fusedprop::layers::detail
