// Vectorised activations for AVX2+FMA: include only from translation units
// compiled with -mavx2 -mfma (the *_avx2.cpp files).
//
// Contract (the GEMM epilogue and the elementwise kernels rely on it):
//   forward<A>(z, slope)     -> act(z) lane by lane, for __m256 and __m256d
//   derivative<A>(s, slope)  -> act'(.) from what saved_for(A) keeps (Y or Z)
//   exp(x)                   -> e^x (the cross-entropy loss's softmax)
// Results match math::scalar within a few ulps, NaN and ±Inf as in PyTorch.
//
// How the transcendental parts are built (the detail:: section below):
//
// - exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, with ln2 split in
//   a high part (n * hi exact) and a low part; e^r = 1 + r + r^2 P(r), P a
//   near-minimax fit of relative error (degree 5 for f32: 2.7e-9; degree 10
//   for f64: 2.7e-18). 2^n is applied as two factors 2^(n/2) * 2^(n - n/2),
//   so results that are subnormal are rounded once and correctly, and
//   overflow gives +Inf. The argument is clamped first (NaN kept).
// - tanh: for |x| < 0.625 the odd polynomial x + x^3 P(x^2) (no cancellation
//   near 0); above, 1 - 2 / (e^{2|x|} + 1), where the subtraction loses at most
//   about one bit (the result is >= 0.55). Sign restored at the end, so
//   tanh(-0) = -0 and tanh(±Inf) = ±1.
// - sigmoid: e = exp(-|z|) never overflows; s = 1/(1+e) for z >= 0 and
//   e/(1+e) for z < 0, so neither side cancels and sigmoid(-100) is the tiny
//   correct value, not 0/0. The same e gives 1 - s exactly as cheaply.
// - the normal CDF Phi(z) = (1 + erf(z/sqrt 2)) / 2 (what gelu needs):
//     |z| < 0.75:  Phi = 1/2 + z Q(z^2), Q a near-minimax fit of erf;
//     |z| >= 0.75: Phi(-|z|) = e^{-z^2/2} t G(t), t = 1/(1 + |z|/2), G a fit
//                  of the smooth factor of erfc (the classic "erfc = t exp(..)"
//                  form of Numerical Recipes / Hastings, our own coefficients);
//                  Phi(+|z|) = 1 - Phi(-|z|).
//   e^{-z^2/2} is computed from z itself with z^2 split exactly by an FMA
//   (z^2 = hi + lo), so the large exponent carries no rounding error: that
//   keeps gelu(z) for z << 0 accurate to a few ulps where 1 + erf(.) (as
//   PyTorch computes it) would cancel to nothing.
// - gelu_tanh: 1/2 (1 + tanh(u)) = sigmoid(2u), so gelu_tanh(z) = z sigmoid(2u)
//   without the cancellation of 1 + tanh(u) for z < 0. 2u is formed in double
//   for f32 and in double-double for f64, so the large exponent of the
//   negative tail carries no rounding error (gelu_tanh_sigmoid()).
//
// The coefficient tables come from tools/fit_activation_polys.py (Lawson
// iteration towards minimax relative error, in 60-digit arithmetic); the
// errors quoted next to them are its measurements of the rounded polynomial.
// Measured end-to-end errors are in tests/test_activation_cpp.py.
#pragma once

#include <immintrin.h>

#include <cstddef>

#include "activation.h"
#include "runtime/isa_tag.h"

namespace fusedprop::math::avx2 {
inline namespace FUSEDPROP_ISA_TAG {
namespace detail {

// ------------------------------------------------------------------ helpers

template <std::size_t N>
inline __m256 horner(__m256 x, const float (&c)[N]) {
    __m256 acc = _mm256_set1_ps(c[N - 1]);
    for (std::size_t i = N - 1; i-- > 0;) acc = _mm256_fmadd_ps(acc, x, _mm256_set1_ps(c[i]));
    return acc;
}

template <std::size_t N>
inline __m256d horner(__m256d x, const double (&c)[N]) {
    __m256d acc = _mm256_set1_pd(c[N - 1]);
    for (std::size_t i = N - 1; i-- > 0;) acc = _mm256_fmadd_pd(acc, x, _mm256_set1_pd(c[i]));
    return acc;
}

inline __m256 abs(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
inline __m256d abs(__m256d x) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), x); }

// min(hi, max(lo, x)) with the operand order that lets NaN through: maxps
// returns its second operand when either is NaN.
inline __m256 clamp(__m256 x, float lo, float hi) {
    return _mm256_min_ps(_mm256_set1_ps(hi), _mm256_max_ps(_mm256_set1_ps(lo), x));
}
inline __m256d clamp(__m256d x, double lo, double hi) {
    return _mm256_min_pd(_mm256_set1_pd(hi), _mm256_max_pd(_mm256_set1_pd(lo), x));
}

// ---------------------------------------------------------------------- exp

// exp(r) - 1 - r = r^2 P(r), |r| <= ln2/2. f32: rel err of P 2.7e-9.
inline constexpr float kExpP32[] = {0.5f, 0.1666666716337204f, 0.04166646674275398f,
                                    0.008333360776305199f, 0.0013933597365394235f,
                                    0.00019857789447996765f};
// f64: rel err of P 2.7e-18.
inline constexpr double kExpP64[] = {0.5,
                                     0.1666666666666667,
                                     0.041666666666666616,
                                     0.008333333333326167,
                                     0.0013888888888917961,
                                     0.00019841269874720804,
                                     2.4801587245731676e-05,
                                     2.7557255514236573e-06,
                                     2.7557349629929274e-07,
                                     2.5105173622334437e-08,
                                     2.088937038295052e-09};

// e^x 2^k for every float, k in [0, 64] (k = 0: e^x): underflows to 0
// below about -103.97 - k ln2, overflows to +Inf above 88.72 - k ln2,
// subnormal results rounded once. NaN in, NaN out.
inline __m256 exp_pow2(__m256 x, int k) {
    // -150: below any underflow even at k = 64; both clamps keep n + k in
    // [-216, 192], so 2^n1 and 2^n2 stay normal.
    x = clamp(x, -150.0f, 89.0f);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // ln2 = 0.693359375 - 2.12194440e-4 (+ 1e-12): the high part has 9 bits,
    // so n * hi is exact for |n| <= 2^15.
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    const __m256 r2 = _mm256_mul_ps(r, r);
    const __m256 em1 = _mm256_fmadd_ps(r2, horner(r, kExpP32), r);  // e^r - 1
    const __m256 er = _mm256_add_ps(em1, _mm256_set1_ps(1.0f));
        // 2^(n+k) = 2^n1 * 2^n2, each normal.
    const __m256i ni = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(k));
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(er, s1), s2);
}

inline __m256 exp(__m256 x) { return exp_pow2(x, 0); }

// z sigmoid(t) for t = th + tl (tl a small correction, 0 if unknown) without a
// subnormal intermediate: where sigmoid(t) < 2^-126 but z sigmoid(t) is
// normal, z e^{-|t|} is formed at a scale of 2^64 and scaled back at the end,
// one rounding. Keeps silu(z) and gelu_tanh(z) within a few ulps down to
// their own underflow, and -Inf * 0 = NaN at z = -Inf as in PyTorch.
inline __m256 z_times_sigmoid(__m256 z, __m256 th, __m256 tl) {
    const __m256 a = abs(th);
    __m256 es = exp_pow2(_mm256_sub_ps(_mm256_setzero_ps(), a), 64);  // e^{-|th|} 2^64
    es = _mm256_and_ps(es, _mm256_cmp_ps(a, _mm256_set1_ps(150.0f), _CMP_LE_OQ));  // 0 beyond: -Inf -> NaN
    es = _mm256_fnmadd_ps(es, _mm256_xor_ps(tl, _mm256_and_ps(th, _mm256_set1_ps(-0.0f))), es);
    const __m256 down = _mm256_set1_ps(5.42101086242752217e-20f);  // 2^-64
    const __m256 e = _mm256_mul_ps(es, down);
    const __m256 num = _mm256_blendv_ps(_mm256_set1_ps(1.0f), es, th);
    const __m256 scale = _mm256_blendv_ps(_mm256_set1_ps(1.0f), down, th);
    return _mm256_mul_ps(_mm256_div_ps(_mm256_mul_ps(z, num), _mm256_add_ps(_mm256_set1_ps(1.0f), e)), scale);
}

// 2^k for integral k in [-1022, 1023] held in a double.
inline __m256d pow2i(__m256d k) {
    // k + 1023 + 2^52 holds k + 1023 in its low mantissa bits.
    const __m256d m = _mm256_add_pd(k, _mm256_set1_pd(1023.0 + 4503599627370496.0));
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(m), 52));
}

// e^x for every double: 0 below about -745.13, +Inf above 709.78.
inline __m256d exp(__m256d x) {
    x = clamp(x, -746.0, 710.0);
    const __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634074)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // fdlibm's split of ln2: the high part has 32 zero low bits, n * hi exact.
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93147180369123816490e-01), x);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.90821492927058770002e-10), r);
    const __m256d r2 = _mm256_mul_pd(r, r);
    const __m256d em1 = _mm256_fmadd_pd(r2, horner(r, kExpP64), r);
    const __m256d er = _mm256_add_pd(em1, _mm256_set1_pd(1.0));
    const __m256d n1 = _mm256_round_pd(_mm256_mul_pd(n, _mm256_set1_pd(0.5)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m256d n2 = _mm256_sub_pd(n, n1);
    return _mm256_mul_pd(_mm256_mul_pd(er, pow2i(n1)), pow2i(n2));
}

// ------------------------------------------------------------------ sigmoid

// s = sigmoid(z) and c = 1 - s = sigmoid(-z), each without cancellation.
struct SigmoidPair256 {
    __m256 s, c;
};
struct SigmoidPair256d {
    __m256d s, c;
};

inline __m256 sigmoid(__m256 z) {
    const __m256 e = exp(_mm256_sub_ps(_mm256_setzero_ps(), abs(z)));  // in [0, 1]
    const __m256 num = _mm256_blendv_ps(_mm256_set1_ps(1.0f), e, z);   // e where z < 0 (sign bit)
    return _mm256_div_ps(num, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}
inline __m256d sigmoid(__m256d z) {
    const __m256d e = exp(_mm256_sub_pd(_mm256_setzero_pd(), abs(z)));
    const __m256d num = _mm256_blendv_pd(_mm256_set1_pd(1.0), e, z);
    return _mm256_div_pd(num, _mm256_add_pd(_mm256_set1_pd(1.0), e));
}

inline SigmoidPair256 sigmoid_pair(__m256 z) {
    const __m256 e = exp(_mm256_sub_ps(_mm256_setzero_ps(), abs(z)));
    const __m256 big = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    const __m256 small = _mm256_mul_ps(e, big);
    return {_mm256_blendv_ps(big, small, z), _mm256_blendv_ps(small, big, z)};
}
inline SigmoidPair256d sigmoid_pair(__m256d z) {
    const __m256d e = exp(_mm256_sub_pd(_mm256_setzero_pd(), abs(z)));
    const __m256d big = _mm256_div_pd(_mm256_set1_pd(1.0), _mm256_add_pd(_mm256_set1_pd(1.0), e));
    const __m256d small = _mm256_mul_pd(e, big);
    return {_mm256_blendv_pd(big, small, z), _mm256_blendv_pd(small, big, z)};
}

// --------------------------------------------------------------------- tanh

// tanh(x) = x + x^3 P(x^2) on |x| <= 0.625. f32: rel err of P 1.3e-7 (the
// x^3 term is at most 0.12 of the result, so 1.6e-8 of the result).
inline constexpr float kTanhP32[] = {-0.333333283662796f, 0.13332770764827728f, -0.05385095253586769f,
                                     0.02099734917283058f, -0.006096931640058756f};
// f64: degree 13, rel err of P 1.6e-20, of its double Horner evaluation 1.9e-16.
inline constexpr double kTanhP64[] = {-0.3333333333333333,     0.13333333333333333,    -0.053968253968253076,
                                      0.021869488536096503,    -0.008863235527883461,  0.0035921279948945652,
                                      -0.0014558338280979903,  0.0005900223343484206,  -0.0002390964350916411,
                                      9.676691799337001e-05,   -3.8799103459864874e-05, 1.4832991091123671e-05,
                                      -4.770917801324541e-06,  9.171876387849636e-07};

inline __m256 tanh(__m256 x) {
    const __m256 a = abs(x);
    const __m256 a2 = _mm256_mul_ps(a, a);
    const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(a2, a), horner(a2, kTanhP32), a);
    const __m256 e = exp(_mm256_add_ps(a, a));
    const __m256 large = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                                       _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    const __m256 t = _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
    return _mm256_or_ps(t, _mm256_and_ps(x, _mm256_set1_ps(-0.0f)));
}

inline __m256d tanh(__m256d x) {
    const __m256d a = abs(x);
    const __m256d a2 = _mm256_mul_pd(a, a);
    const __m256d small = _mm256_fmadd_pd(_mm256_mul_pd(a2, a), horner(a2, kTanhP64), a);
    const __m256d e = exp(_mm256_add_pd(a, a));
    const __m256d large = _mm256_sub_pd(_mm256_set1_pd(1.0),
                                        _mm256_div_pd(_mm256_set1_pd(2.0), _mm256_add_pd(e, _mm256_set1_pd(1.0))));
    const __m256d t = _mm256_blendv_pd(large, small, _mm256_cmp_pd(a, _mm256_set1_pd(0.625), _CMP_LT_OQ));
    return _mm256_or_pd(t, _mm256_and_pd(x, _mm256_set1_pd(-0.0)));
}

// ---------------------------------------------------------------- normal cdf

// Phi(z) = 1/2 + z Q(z^2) on |z| <= 0.75 (Q(w) = erf(sqrt(w/2)) / (2 sqrt w)).
// f32: rel err of Q 2.4e-11.
inline constexpr float kPhiQ32[] = {0.3989422917366028f, -0.06649038195610046f, 0.00997353158891201f,
                                    -0.0011871381429955363f, 0.0001147786169894971f, -8.388587957597338e-06f};
// Phi(-|z|) = e^{-z^2/2} t G(t), t = 1/(1 + |z|/2), on 0.75 <= |z| <= 16.
// f32: rel err of G 2.9e-8, of its float Horner evaluation 1.3e-7.
inline constexpr float kPhiG32[] = {0.19948020577430725f, 0.19916947185993195f, 0.15381231904029846f,
                                    0.017657943069934845f, 0.08559403568506241f, -0.5266848206520081f,
                                    0.6322739720344543f, -0.3251464068889618f, 0.063727468252182f};
// f64 central: degree 10, rel err of Q 4.2e-22 (Horner in double 1.6e-16).
inline constexpr double kPhiQ64[] = {0.3989422804014327,     -0.06649038006690544,    0.009973557010035812,
                                     -0.0011873282154803155, 0.00011543468761418469,  -9.444656243174595e-06,
                                     6.659692671765416e-07,  -4.122639316951592e-08,  2.2729277839866714e-09,
                                     -1.122068793717194e-10, 4.4973446959558794e-12};
// f64 tail: one polynomial in t over [0.75, 40] would need degree > 22 with
// coefficients large enough to spoil a double Horner evaluation, so two
// pieces of degree 16, chosen per lane: 0.75 <= |z| < 3 (fit 5e-20, double
// Horner 7e-16) and 3 <= |z| <= 40 (fit 7.8e-17, double Horner 2.5e-16).
inline constexpr double kPhiG64a[] = {0.1994744666830367,  0.19935531981006513, 0.1514925706709082,
                                      0.030722753971428214, 0.07235364426369244, -0.8078810516397219,
                                      2.683265003351459,   -8.00205117826195,   18.869087454779592,
                                      -32.53438441277584,  41.137668858771335,  -38.55724443044712,
                                      26.7259670307838,    -13.405735397951977, 4.6259983837515675,
                                      -0.9862980860589804, 0.09820908676259124};
inline constexpr double kPhiG64b[] = {0.19947114020300696, 0.19947113991262333, 0.14960337156000433,
                                      0.0498672227921975,  -0.06232174682383703, -0.11241708017331764,
                                      -0.03165612885039683, 0.10965324570605099, 0.3670042752598437,
                                      -1.0173279797362051, 3.418277712469067,   -12.608947038361073,
                                      28.863885283741595,  -40.02365196911398,  33.75247236651933,
                                      -16.08992026238543,  3.33249598103709};

// Horner with the coefficients of a where mask is clear and of b where set.
template <std::size_t N>
inline __m256d horner_select(__m256d x, const double (&a)[N], const double (&b)[N], __m256d mask) {
    __m256d acc = _mm256_blendv_pd(_mm256_set1_pd(a[N - 1]), _mm256_set1_pd(b[N - 1]), mask);
    for (std::size_t i = N - 1; i-- > 0;)
        acc = _mm256_fmadd_pd(acc, x, _mm256_blendv_pd(_mm256_set1_pd(a[i]), _mm256_set1_pd(b[i]), mask));
    return acc;
}

// Everything gelu and its derivative need from one z.
struct Gauss256 {
    __m256 phi;      // Phi(z)
    __m256 z_phi;    // z Phi(z), rounded once more carefully in the far tail
    __m256 density;  // phi(z) = e^{-z^2/2} / sqrt(2 pi)
};
struct Gauss256d {
    __m256d phi, z_phi, density;
};

inline Gauss256 gauss(__m256 z) {
    // Beyond |z| = 16, Phi is 0 or 1 and the density 0 in float.
    const __m256 zc = clamp(z, -16.0f, 16.0f);
    const __m256 a = abs(zc);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 half = _mm256_set1_ps(0.5f);
    // e^{-z^2/2} with z^2 = hi + lo exactly: e^{-hi/2} (1 - lo/2).
    const __m256 hi = _mm256_mul_ps(a, a);
    const __m256 lo = _mm256_fmsub_ps(a, a, hi);
    const __m256 eh = exp(_mm256_mul_ps(hi, _mm256_set1_ps(-0.5f)));
    const __m256 ex = _mm256_fnmadd_ps(_mm256_mul_ps(eh, half), lo, eh);
    // Central part.
    const __m256 central = _mm256_fmadd_ps(zc, horner(hi, kPhiQ32), half);
    // Tail: q = Phi(-|z|).
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(a, half, one));
    const __m256 tg = _mm256_mul_ps(t, horner(t, kPhiG32));
    const __m256 q = _mm256_mul_ps(ex, tg);
    const __m256 neg = _mm256_cmp_ps(zc, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 tail = _mm256_blendv_ps(_mm256_sub_ps(one, q), q, neg);
    // z Phi(z) in the tail: z < 0: (z e^{-z^2/2}) tG keeps the intermediate
    // normal further out; z > 0: z (1 - q), which keeps gelu(+Inf) = +Inf.
    const __m256 zq = _mm256_mul_ps(_mm256_mul_ps(z, ex), tg);
    const __m256 z_tail = _mm256_blendv_ps(_mm256_mul_ps(z, tail), zq, neg);
    const __m256 is_central = _mm256_cmp_ps(a, _mm256_set1_ps(0.75f), _CMP_LT_OQ);
    Gauss256 g;
    g.phi = _mm256_blendv_ps(tail, central, is_central);
    g.z_phi = _mm256_blendv_ps(z_tail, _mm256_mul_ps(z, central), is_central);
    g.density = _mm256_mul_ps(ex, _mm256_set1_ps(0.398942280401432678f));
    return g;
}

inline Gauss256d gauss(__m256d z) {
    const __m256d zc = clamp(z, -40.0, 40.0);
    const __m256d a = abs(zc);
    const __m256d one = _mm256_set1_pd(1.0);
    const __m256d half = _mm256_set1_pd(0.5);
    const __m256d hi = _mm256_mul_pd(a, a);
    const __m256d lo = _mm256_fmsub_pd(a, a, hi);
    const __m256d eh = exp(_mm256_mul_pd(hi, _mm256_set1_pd(-0.5)));
    const __m256d ex = _mm256_fnmadd_pd(_mm256_mul_pd(eh, half), lo, eh);
    const __m256d central = _mm256_fmadd_pd(zc, horner(hi, kPhiQ64), half);
    const __m256d t = _mm256_div_pd(one, _mm256_fmadd_pd(a, half, one));
    const __m256d far = _mm256_cmp_pd(a, _mm256_set1_pd(3.0), _CMP_GE_OQ);
    const __m256d tg = _mm256_mul_pd(t, horner_select(t, kPhiG64a, kPhiG64b, far));
    const __m256d q = _mm256_mul_pd(ex, tg);
    const __m256d neg = _mm256_cmp_pd(zc, _mm256_setzero_pd(), _CMP_LT_OQ);
    const __m256d tail = _mm256_blendv_pd(_mm256_sub_pd(one, q), q, neg);
    const __m256d zq = _mm256_mul_pd(_mm256_mul_pd(z, ex), tg);
    const __m256d z_tail = _mm256_blendv_pd(_mm256_mul_pd(z, tail), zq, neg);
    const __m256d is_central = _mm256_cmp_pd(a, _mm256_set1_pd(0.75), _CMP_LT_OQ);
    Gauss256d g;
    g.phi = _mm256_blendv_pd(tail, central, is_central);
    g.z_phi = _mm256_blendv_pd(z_tail, _mm256_mul_pd(z, central), is_central);
    g.density = _mm256_mul_pd(ex, _mm256_set1_pd(0.398942280401432678));
    return g;
}

// (erf itself is not needed: gelu uses Phi(z) = (1 + erf(z / sqrt 2)) / 2
// directly, which saves rounding z / sqrt 2 and the cancellation of 1 + erf.)

// ----------------------------------------------------------------- gelu_tanh

// 2u = 2 sqrt(2/pi) (z + 0.044715 z^3) = z (2c + 2c k z^2).
inline constexpr double kGeluTanhC = 0.79788456080286535588;
inline constexpr double kGeluTanhK = 0.044715;

// sigmoid(2u) for f32 with 2u formed in double: in float, the three
// roundings of 2u (relative 3 eps) become an absolute error of 3 eps |2u| in
// the exponent of sigmoid(2u) for z << 0, ~200 ulps at z = -10. In double,
// 2u is split into hi + lo floats and e^{-|2u|} = e^{-|hi|} (1 - sign(hi) lo).
struct HiLo256 {
    __m256 hi, lo;
};
inline HiLo256 gelu_tanh_arg(__m256 z) {
    const auto two_u = [](__m256d x) {
        const __m256d u = _mm256_mul_pd(
            x, _mm256_fmadd_pd(_mm256_mul_pd(x, x), _mm256_set1_pd(2 * kGeluTanhC * kGeluTanhK), _mm256_set1_pd(2 * kGeluTanhC)));
        return clamp(u, -200.0, 200.0);  // saturated in float; keeps lo finite
    };
    const __m256d ul = two_u(_mm256_cvtps_pd(_mm256_castps256_ps128(z)));
    const __m256d uh = two_u(_mm256_cvtps_pd(_mm256_extractf128_ps(z, 1)));
    const __m128 hl = _mm256_cvtpd_ps(ul), hh = _mm256_cvtpd_ps(uh);
    const __m128 ll = _mm256_cvtpd_ps(_mm256_sub_pd(ul, _mm256_cvtps_pd(hl)));
    const __m128 lh = _mm256_cvtpd_ps(_mm256_sub_pd(uh, _mm256_cvtps_pd(hh)));
    return {_mm256_set_m128(hh, hl), _mm256_set_m128(lh, ll)};
}

inline SigmoidPair256 gelu_tanh_sigmoid(__m256 z) {
    const HiLo256 u = gelu_tanh_arg(z);
    const __m256 hi = u.hi, lo = u.lo;
    const __m256 sign = _mm256_and_ps(hi, _mm256_set1_ps(-0.0f));
    const __m256 eh = exp(_mm256_sub_ps(_mm256_setzero_ps(), abs(hi)));
    const __m256 e = _mm256_fnmadd_ps(eh, _mm256_xor_ps(lo, sign), eh);
    const __m256 big = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    const __m256 small = _mm256_mul_ps(e, big);
    return {_mm256_blendv_ps(big, small, hi), _mm256_blendv_ps(small, big, hi)};
}

// sigmoid(2u) for f64 with 2u in double-double. In plain double, 2u carries
// a relative error of a few eps -- from its operations and from rounding the
// constants 2c and 2ck -- which becomes an absolute error of several eps |2u|
// in the exponent of sigmoid(2u) for z << 0 (1e-13 relative at z = -20).
// Here 2u = hi + lo to ~1e-30, and e^{-|2u|} = e^{-|hi|} (1 - sign(hi) lo).
inline constexpr double kTwoC_hi = 1.5957691216057308, kTwoC_lo = -9.96930880911092e-17;       // 2 sqrt(2/pi)
inline constexpr double kTwoCK_hi = 0.07135481627260025, kTwoCK_lo = -6.175149918155315e-19;  // 2 sqrt(2/pi) 0.044715

inline SigmoidPair256d gelu_tanh_sigmoid(__m256d z) {
    const __m256d zc = clamp(z, -40.0, 40.0);  // sigmoid(2u) is exactly 0 or 1 beyond
    // z^2 = s_hi + s_lo exactly
    const __m256d s_hi = _mm256_mul_pd(zc, zc);
    const __m256d s_lo = _mm256_fmsub_pd(zc, zc, s_hi);
    // p = 2ck z^2 in double-double
    const __m256d bh = _mm256_set1_pd(kTwoCK_hi), bl = _mm256_set1_pd(kTwoCK_lo);
    const __m256d p_hi = _mm256_mul_pd(bh, s_hi);
    const __m256d p_lo = _mm256_fmadd_pd(bl, s_hi, _mm256_fmadd_pd(bh, s_lo, _mm256_fmsub_pd(bh, s_hi, p_hi)));
    // inner = 2c + p (two-sum, either may dominate)
    const __m256d ah = _mm256_set1_pd(kTwoC_hi);
    const __m256d i_hi = _mm256_add_pd(ah, p_hi);
    const __m256d bb = _mm256_sub_pd(i_hi, ah);
    const __m256d i_err = _mm256_add_pd(_mm256_sub_pd(ah, _mm256_sub_pd(i_hi, bb)), _mm256_sub_pd(p_hi, bb));
    const __m256d i_lo = _mm256_add_pd(i_err, _mm256_add_pd(p_lo, _mm256_set1_pd(kTwoC_lo)));
    // 2u = z inner
    const __m256d u_hi = _mm256_mul_pd(zc, i_hi);
    const __m256d u_lo = _mm256_fmadd_pd(zc, i_lo, _mm256_fmsub_pd(zc, i_hi, u_hi));
    const __m256d hi = _mm256_add_pd(u_hi, u_lo);
    const __m256d lo = _mm256_sub_pd(u_lo, _mm256_sub_pd(hi, u_hi));
    const __m256d sign = _mm256_and_pd(hi, _mm256_set1_pd(-0.0));
    const __m256d eh = exp(_mm256_sub_pd(_mm256_setzero_pd(), abs(hi)));
    const __m256d e = _mm256_fnmadd_pd(eh, _mm256_xor_pd(lo, sign), eh);
    const __m256d big = _mm256_div_pd(_mm256_set1_pd(1.0), _mm256_add_pd(_mm256_set1_pd(1.0), e));
    const __m256d small = _mm256_mul_pd(e, big);
    return {_mm256_blendv_pd(big, small, hi), _mm256_blendv_pd(small, big, hi)};
}

}  // namespace detail

// ============================================================== the contract

// e^x lane by lane (the softmax of the cross-entropy loss uses it alone).
using detail::exp;

template <Activation A>
inline __m256 forward(__m256 z, float negative_slope) {
    using namespace detail;
    if constexpr (A == Activation::identity) {
        return z;
    } else if constexpr (A == Activation::relu) {
        // z < 0 ? 0 : z  (NaN compares false and stays, -0 stays -0 as in torch)
        return _mm256_blendv_ps(z, _mm256_setzero_ps(), _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ));
    } else if constexpr (A == Activation::leaky_relu) {
        const __m256 pos = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GT_OQ);
        return _mm256_blendv_ps(_mm256_mul_ps(z, _mm256_set1_ps(negative_slope)), z, pos);
    } else if constexpr (A == Activation::sigmoid) {
        return sigmoid(z);
    } else if constexpr (A == Activation::tanh) {
        return detail::tanh(z);
    } else if constexpr (A == Activation::gelu) {
        return gauss(z).z_phi;
    } else if constexpr (A == Activation::gelu_tanh) {
        const HiLo256 u = gelu_tanh_arg(z);
        return z_times_sigmoid(z, u.hi, u.lo);
    } else {  // silu
        return z_times_sigmoid(z, z, _mm256_setzero_ps());
    }
}

template <Activation A>
inline __m256d forward(__m256d z, double negative_slope) {
    using namespace detail;
    if constexpr (A == Activation::identity) {
        return z;
    } else if constexpr (A == Activation::relu) {
        return _mm256_blendv_pd(z, _mm256_setzero_pd(), _mm256_cmp_pd(z, _mm256_setzero_pd(), _CMP_LT_OQ));
    } else if constexpr (A == Activation::leaky_relu) {
        const __m256d pos = _mm256_cmp_pd(z, _mm256_setzero_pd(), _CMP_GT_OQ);
        return _mm256_blendv_pd(_mm256_mul_pd(z, _mm256_set1_pd(negative_slope)), z, pos);
    } else if constexpr (A == Activation::sigmoid) {
        return sigmoid(z);
    } else if constexpr (A == Activation::tanh) {
        return detail::tanh(z);
    } else if constexpr (A == Activation::gelu) {
        return gauss(z).z_phi;
    } else if constexpr (A == Activation::gelu_tanh) {
        return _mm256_mul_pd(z, gelu_tanh_sigmoid(z).s);
    } else {
        return _mm256_mul_pd(z, sigmoid(z));
    }
}

template <Activation A>
inline __m256 derivative(__m256 saved, float negative_slope) {
    using namespace detail;
    const __m256 one = _mm256_set1_ps(1.0f);
    if constexpr (A == Activation::identity) {
        return one;
    } else if constexpr (A == Activation::relu) {
        // Y <= 0 ? 0 : 1 (NaN -> 1, as torch's threshold_backward)
        return _mm256_andnot_ps(_mm256_cmp_ps(saved, _mm256_setzero_ps(), _CMP_LE_OQ), one);
    } else if constexpr (A == Activation::leaky_relu) {
        return _mm256_blendv_ps(_mm256_set1_ps(negative_slope), one,
                                _mm256_cmp_ps(saved, _mm256_setzero_ps(), _CMP_GT_OQ));
    } else if constexpr (A == Activation::sigmoid) {
        return _mm256_mul_ps(saved, _mm256_sub_ps(one, saved));
    } else if constexpr (A == Activation::tanh) {
        return _mm256_fnmadd_ps(saved, saved, one);
    } else if constexpr (A == Activation::gelu) {
        const Gauss256 g = gauss(saved);
        return _mm256_fmadd_ps(saved, g.density, g.phi);
    } else if constexpr (A == Activation::gelu_tanh) {
        // s + z s (1 - s) (2c + 6ck z^2), s = sigmoid(2u) = (1 + tanh u) / 2.
        const __m256 z = saved;
        const __m256 z2 = _mm256_mul_ps(z, z);
        const SigmoidPair256 p = gelu_tanh_sigmoid(z);
        const __m256 du = _mm256_fmadd_ps(z2, _mm256_set1_ps(float(6 * kGeluTanhC * kGeluTanhK)), _mm256_set1_ps(float(2 * kGeluTanhC)));
        return _mm256_fmadd_ps(_mm256_mul_ps(z, _mm256_mul_ps(p.s, p.c)), du, p.s);
    } else {  // silu: s (1 + z (1 - s))
        const SigmoidPair256 p = sigmoid_pair(saved);
        return _mm256_fmadd_ps(_mm256_mul_ps(p.s, saved), p.c, p.s);
    }
}

template <Activation A>
inline __m256d derivative(__m256d saved, double negative_slope) {
    using namespace detail;
    const __m256d one = _mm256_set1_pd(1.0);
    if constexpr (A == Activation::identity) {
        return one;
    } else if constexpr (A == Activation::relu) {
        return _mm256_andnot_pd(_mm256_cmp_pd(saved, _mm256_setzero_pd(), _CMP_LE_OQ), one);
    } else if constexpr (A == Activation::leaky_relu) {
        return _mm256_blendv_pd(_mm256_set1_pd(negative_slope), one, _mm256_cmp_pd(saved, _mm256_setzero_pd(), _CMP_GT_OQ));
    } else if constexpr (A == Activation::sigmoid) {
        return _mm256_mul_pd(saved, _mm256_sub_pd(one, saved));
    } else if constexpr (A == Activation::tanh) {
        return _mm256_fnmadd_pd(saved, saved, one);
    } else if constexpr (A == Activation::gelu) {
        const Gauss256d g = gauss(saved);
        return _mm256_fmadd_pd(saved, g.density, g.phi);
    } else if constexpr (A == Activation::gelu_tanh) {
        const __m256d z = saved;
        const __m256d z2 = _mm256_mul_pd(z, z);
        const SigmoidPair256d p = gelu_tanh_sigmoid(z);
        const __m256d du = _mm256_fmadd_pd(z2, _mm256_set1_pd(6 * kGeluTanhC * kGeluTanhK), _mm256_set1_pd(2 * kGeluTanhC));
        return _mm256_fmadd_pd(_mm256_mul_pd(z, _mm256_mul_pd(p.s, p.c)), du, p.s);
    } else {
        const SigmoidPair256d p = sigmoid_pair(saved);
        return _mm256_fmadd_pd(_mm256_mul_pd(p.s, saved), p.c, p.s);
    }
}

}  // namespace FUSEDPROP_ISA_TAG
}  // namespace fusedprop::math::avx2
