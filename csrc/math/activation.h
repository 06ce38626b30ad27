// Every activation fusedprop knows: its name, what the backward needs saved,
// and a scalar reference of its value and derivative.
//
// The scalar forms are the portable path and the oracle for the vector ones
// (activation_avx2.h). They follow PyTorch's definitions, NaN and ±Inf
// included: relu(NaN) is NaN, the gradient of relu where Y is NaN passes dY.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

namespace fusedprop::math {

enum class Activation : std::uint8_t {
    identity,
    relu,
    leaky_relu,
    sigmoid,
    tanh,
    gelu,       // 0.5 z (1 + erf(z / sqrt 2))
    gelu_tanh,  // 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))
    silu,       // z sigmoid(z)
};
inline constexpr int kNumActivations = 8;

// What the forward keeps for the backward: the least each activation needs.
enum class Saved : std::uint8_t { nothing, output, preactivation };

constexpr Saved saved_for(Activation a) {
    switch (a) {
        case Activation::identity: return Saved::nothing;
        case Activation::relu:
        case Activation::leaky_relu:
        case Activation::sigmoid:
        case Activation::tanh: return Saved::output;
        default: return Saved::preactivation;
    }
}

constexpr const char* activation_name(Activation a) {
    constexpr const char* names[] = {"identity", "relu", "leaky_relu", "sigmoid",
                                     "tanh",     "gelu", "gelu_tanh",  "silu"};
    return names[static_cast<int>(a)];
}

inline std::optional<Activation> parse_activation(std::string_view name) {
    for (int i = 0; i < kNumActivations; ++i)
        if (name == activation_name(static_cast<Activation>(i))) return static_cast<Activation>(i);
    return std::nullopt;
}

namespace scalar {

template <class T>
T sigmoid(T z) {
    // Two branches keep exp() from overflowing for large |z|.
    if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
    T e = std::exp(z);
    return e / (T(1) + e);
}

// The working precision of the transcendental forms: double for float.
template <class T>
using Wide = std::conditional_t<std::is_same_v<T, float>, double, T>;
inline constexpr double kSqrtHalfW = 0.70710678118654752440;
inline constexpr double kSqrt2OverPiW = 0.79788456080286535588;
inline constexpr double kKappaW = 0.044715;
inline constexpr double kInvSqrt2PiW = 0.39894228040143267794;

template <class T>
T forward(Activation a, T z, T negative_slope) {
    using W = Wide<T>;
    switch (a) {
        case Activation::identity: return z;
        case Activation::relu: return z < T(0) ? T(0) : z;  // NaN stays NaN
        case Activation::leaky_relu: return z > T(0) ? z : z * negative_slope;
        case Activation::sigmoid: return T(sigmoid<W>(z));
        case Activation::tanh: return T(std::tanh(W(z)));
        // 1 + erf(x) = erfc(-x) and 1/2 (1 + tanh(u)) = sigmoid(2u): the same
        // functions, without the cancellation of 1 + (-1 + tiny) for z < 0.
        // float is evaluated in double (W): no rounding of a large exponent.
        case Activation::gelu: {
            const W zw = z;
            return T(W(0.5) * zw * std::erfc(-zw * W(kSqrtHalfW)));
        }
        case Activation::gelu_tanh: {
            const W zw = z;
            return T(zw * sigmoid<W>(W(2 * kSqrt2OverPiW) * (zw + W(kKappaW) * zw * zw * zw)));
        }
        case Activation::silu: {
            const W zw = z;
            return T(zw * sigmoid<W>(zw));
        }
    }
    return z;
}

// d act / d z, from what saved_for(a) keeps: Y for relu, leaky_relu (which
// needs negative_slope >= 0 to tell the sign of Z from Y), sigmoid, tanh; Z
// for gelu, gelu_tanh, silu; nothing for identity.
template <class T>
T derivative(Activation a, T saved, T negative_slope) {
    using W = Wide<T>;
    switch (a) {
        case Activation::identity: return T(1);
        case Activation::relu: return saved <= T(0) ? T(0) : T(1);  // as torch's threshold_backward
        case Activation::leaky_relu: return saved > T(0) ? T(1) : negative_slope;
        case Activation::sigmoid: return saved * (T(1) - saved);
        case Activation::tanh: return T(1) - saved * saved;
        case Activation::gelu: {  // Phi(z) + z phi(z)
            const W z = saved;
            const W cdf = W(0.5) * std::erfc(-z * W(kSqrtHalfW));
            const W pdf = W(kInvSqrt2PiW) * std::exp(W(-0.5) * z * z);
            return T(cdf + z * pdf);
        }
        case Activation::gelu_tanh: {
            // 1/2 (1 + t) + 1/2 z (1 - t^2) c (1 + 3k z^2), t = tanh(u), written
            // with s = sigmoid(2u) = (1 + t)/2 and 1 - s = sigmoid(-2u):
            // s + 2 z s (1 - s) c (1 + 3k z^2). z^2 in T, as PyTorch: for
            // float, |z| > 1.8e19 gives 0 * Inf = NaN there too.
            const W z = saved;
            const W u2 = W(2 * kSqrt2OverPiW) * (z + W(kKappaW) * z * z * z);
            const W s = sigmoid<W>(u2), sm = sigmoid<W>(-u2);
            const W slope_u = W(2 * kSqrt2OverPiW) * (W(1) + W(3 * kKappaW) * W(saved * saved));
            return T(s + z * s * sm * slope_u);
        }
        case Activation::silu: {  // s (1 + z (1 - s)), 1 - s = sigmoid(-z)
            const W z = saved;
            const W s = sigmoid<W>(z), sm = sigmoid<W>(-z);
            return T(s * (W(1) + z * sm));
        }
    }
    return T(1);
}

}  // namespace scalar
}  // namespace fusedprop::math
