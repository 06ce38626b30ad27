// <immintrin.h> for the AVX-512 translation units, with GCC 12's
// -Wmaybe-uninitialized off while it is parsed: its AVX-512 intrinsics
// (_mm512_castps512_ps256, _mm512_extractf64x4_pd, ...) start from an
// "undefined" register that the warning flags once inlined, pointing into
// the intrinsics header. The pragmas apply to the header's first inclusion
// only, so an *_avx512.cpp file includes this before anything that might
// include <immintrin.h>.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
