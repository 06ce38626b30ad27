// The core's measured read bandwidth: the benchmark reports how fast a
// small-batch layer streams its weights against this number (a product that
// reads W once per call can go no faster than W's bytes at this rate).
//
// One thread sums a buffer of `bytes` (touched once first, so it sits where a
// weight matrix of that size sits between calls: L2, L3 or memory) pass
// after pass for about `seconds` of its CPU time. Baseline code: 64-bit
// integer adds, which the compiler vectorises, several independent sums.
#pragma once

#include <cstddef>

namespace fusedprop::runtime {

// GB/s (1e9 bytes per second of this thread's CPU time). bytes >= 64 and
// seconds > 0 (checked by the binding).
double measure_read_bandwidth(std::size_t bytes, double seconds);

}  // namespace fusedprop::runtime
