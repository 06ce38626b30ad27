#include "read_bandwidth.h"

#include <chrono>
#include <cstdint>
#include <cstring>

#include "aligned_buffer.h"
#include "fma_peak.h"

namespace fusedprop::runtime {
namespace {

// 16 independent sums: no add waits for another, so loads are the limit.
std::uint64_t sum_pass(const std::uint64_t* p, std::size_t n) {
    std::uint64_t acc[16] = {};
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
    for (; i < n; ++i) acc[0] += p[i];
    std::uint64_t s = 0;
    for (std::uint64_t a : acc) s += a;
    return s;
}

}  // namespace

double measure_read_bandwidth(std::size_t bytes, double seconds) {
    const std::size_t n = bytes / sizeof(std::uint64_t);
    AlignedBuffer<std::uint64_t> buffer(n);
    std::uint64_t* p = buffer.data();
    for (std::size_t i = 0; i < n; ++i) p[i] = i;
    volatile std::uint64_t sink = sum_pass(p, n);  // warm: the buffer where it will stay
    const double cpu0 = detail::thread_cpu_seconds();
    const double wall0 = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    double elapsed = 0;
    std::size_t passes = 0;
    do {
        sink = sink + sum_pass(p, n);
        ++passes;
    } while (!detail::loop_done(cpu0, wall0, seconds, &elapsed));
    (void)sink;
    return elapsed > 0 ? double(passes) * double(n * sizeof(std::uint64_t)) / elapsed / 1e9 : 0.0;
}

}  // namespace fusedprop::runtime
