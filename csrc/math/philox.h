// Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror and Shaw,
// "Parallel random numbers: as easy as 1, 2, 3" (SC'11), as in Random123.
//
// A pure function of (counter, key): every element's random number is
// computed from its own index, so a mask is the same bits whatever thread
// computes which part, and nothing has to be stored to regenerate it.
// python/fusedprop/backends/_philox.py is the NumPy twin (and the oracle the
// tests compare against, with Random123's known-answer vectors).
#pragma once

#include <cstdint>

namespace fusedprop::math {

struct Philox4x32 {
    std::uint32_t v[4];
};

namespace detail {
inline constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr std::uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
inline constexpr std::uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1
}  // namespace detail

inline Philox4x32 philox4x32_10(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3,
                                std::uint32_t k0, std::uint32_t k1) {
    for (int round = 0; round < 10; ++round) {
        const std::uint64_t p0 = static_cast<std::uint64_t>(detail::kPhiloxM0) * c0;
        const std::uint64_t p1 = static_cast<std::uint64_t>(detail::kPhiloxM1) * c2;
        const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1 ^ k0;
        const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3 ^ k1;
        c1 = static_cast<std::uint32_t>(p1);
        c3 = static_cast<std::uint32_t>(p0);
        c0 = n0;
        c2 = n2;
        k0 += detail::kPhiloxW0;
        k1 += detail::kPhiloxW1;
    }
    return {{c0, c1, c2, c3}};
}

}  // namespace fusedprop::math
