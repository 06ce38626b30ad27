// Vectorised activations for AVX2+FMA: include only from translation units
// compiled with -mavx2 -mfma (the *_avx2.cpp files).
//
// Contract (the GEMM epilogue and the elementwise kernels rely on it):
//   forward<A>(z, slope)     -> act(z) lane by lane, for __m256 and __m256d
//   derivative<A>(s, slope)  -> act'(.) from what saved_for(A) keeps (Y or Z)
// Results match layers::scalar within a few ulps, NaN and ±Inf as in PyTorch.
//
// FIRST VERSION: lane-by-lane through the scalar reference. Correct, slow;
// replaced by polynomial exp/erf/tanh.
#pragma once

#include <immintrin.h>

#include "activation.h"

namespace fusedprop::layers::avx2 {

template <Activation A>
inline __m256 forward(__m256 z, float negative_slope) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, z);
    for (float& v : lanes) v = scalar::forward<float>(A, v, negative_slope);
    return _mm256_load_ps(lanes);
}

template <Activation A>
inline __m256d forward(__m256d z, double negative_slope) {
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, z);
    for (double& v : lanes) v = scalar::forward<double>(A, v, negative_slope);
    return _mm256_load_pd(lanes);
}

template <Activation A>
inline __m256 derivative(__m256 saved, float negative_slope) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, saved);
    for (float& v : lanes) v = scalar::derivative<float>(A, v, negative_slope);
    return _mm256_load_ps(lanes);
}

template <Activation A>
inline __m256d derivative(__m256d saved, double negative_slope) {
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, saved);
    for (double& v : lanes) v = scalar::derivative<double>(A, v, negative_slope);
    return _mm256_load_pd(lanes);
}

}  // namespace fusedprop::layers::avx2
