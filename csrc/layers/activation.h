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

namespace fusedprop::layers {

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

template <class T>
T forward(Activation a, T z, T negative_slope) {
    constexpr T kSqrtHalf = T(0.70710678118654752440);
    constexpr T kSqrt2OverPi = T(0.79788456080286535588);
    constexpr T kKappa = T(0.044715);
    switch (a) {
        case Activation::identity: return z;
        case Activation::relu: return z < T(0) ? T(0) : z;  // NaN stays NaN
        case Activation::leaky_relu: return z > T(0) ? z : z * negative_slope;
        case Activation::sigmoid: return sigmoid(z);
        case Activation::tanh: return std::tanh(z);
        case Activation::gelu: return T(0.5) * z * (T(1) + std::erf(z * kSqrtHalf));
        case Activation::gelu_tanh:
            return T(0.5) * z * (T(1) + std::tanh(kSqrt2OverPi * (z + kKappa * z * z * z)));
        case Activation::silu: return z * sigmoid(z);
    }
    return z;
}

// d act / d z, from what saved_for(a) keeps: Y for relu, leaky_relu (which
// needs negative_slope >= 0 to tell the sign of Z from Y), sigmoid, tanh; Z
// for gelu, gelu_tanh, silu; nothing for identity.
template <class T>
T derivative(Activation a, T saved, T negative_slope) {
    constexpr T kSqrtHalf = T(0.70710678118654752440);
    constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
    constexpr T kSqrt2OverPi = T(0.79788456080286535588);
    constexpr T kKappa = T(0.044715);
    switch (a) {
        case Activation::identity: return T(1);
        case Activation::relu: return saved <= T(0) ? T(0) : T(1);  // as torch's threshold_backward
        case Activation::leaky_relu: return saved > T(0) ? T(1) : negative_slope;
        case Activation::sigmoid: return saved * (T(1) - saved);
        case Activation::tanh: return T(1) - saved * saved;
        case Activation::gelu: {
            T cdf = T(0.5) * (T(1) + std::erf(saved * kSqrtHalf));
            T pdf = kInvSqrt2Pi * std::exp(T(-0.5) * saved * saved);
            return cdf + saved * pdf;
        }
        case Activation::gelu_tanh: {
            T z2 = saved * saved;
            T t = std::tanh(kSqrt2OverPi * (saved + kKappa * z2 * saved));
            T left = T(0.5) * saved;
            return T(0.5) * (T(1) + t) + left * (T(1) - t * t) * kSqrt2OverPi * (T(1) + T(3) * kKappa * z2);
        }
        case Activation::silu: {
            T s = sigmoid(saved);
            return s * (T(1) + saved * (T(1) - s));
        }
    }
    return T(1);
}

}  // namespace scalar
}  // namespace fusedprop::layers
