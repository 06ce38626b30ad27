// The portable peak loop, the ISA dispatch and the threads.
#include "fma_peak.h"

#include <time.h>

#include <atomic>
#include <chrono>
#include <string_view>
#include <thread>
#include <vector>

#include "cpu_features.h"
#include "thread_pool.h"

namespace fusedprop::runtime {
namespace detail {

namespace {
double wall_now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

double thread_cpu_seconds() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
    timespec ts{};
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) return static_cast<double>(ts.tv_sec) + 1e-9 * ts.tv_nsec;
#endif
    return wall_now();
}

bool loop_done(double cpu0, double wall0, double seconds, double* cpu_elapsed) {
    *cpu_elapsed = thread_cpu_seconds() - cpu0;
    return *cpu_elapsed >= seconds || wall_now() - wall0 >= 5 * seconds;
}

namespace {

constexpr int kLanes = 8;    // a width the compiler may vectorise (SSE2: 2 registers)
constexpr int kChains = 12;  // independent accumulators
constexpr int kInner = 1 << 12;

template <class T>
FmaLoopResult portable(T a, T b, double seconds) {
    T c[kChains][kLanes];  // distinct starts, so no two chains can be merged
    for (int i = 0; i < kChains; ++i)
        for (int j = 0; j < kLanes; ++j) c[i][j] = T(1) + T(0.125) * T(i * kLanes + j);
    long long rounds = 0;
    const double cpu0 = thread_cpu_seconds();
    const double wall0 = wall_now();
    double elapsed = 0;
    do {
        for (int i = 0; i < kInner; ++i)
            for (auto& chain : c)
                for (T& x : chain) x = x * a + b;
        ++rounds;
    } while (!loop_done(cpu0, wall0, seconds, &elapsed));
    FmaLoopResult r;
    r.flops = 2.0 * kChains * kLanes * static_cast<double>(kInner) * static_cast<double>(rounds);
    r.seconds = elapsed;
    for (auto& chain : c)
        for (T x : chain) r.sink += static_cast<double>(x);
    return r;
}

}  // namespace

FmaLoopResult fma_loop_portable(bool double_precision, double seconds) {
    return double_precision ? portable<double>(0.999999, 1e-6, seconds) : portable<float>(0.9999f, 1e-4f, seconds);
}

}  // namespace detail

namespace {

enum class Loop { portable, avx2, avx512 };

// The loop for the requested ISA, narrowed to what this CPU and build run.
Loop loop_for(const char* isa) {
    const CpuFeatures& f = cpu_features();
    const std::string_view want = isa != nullptr ? isa : "";
#if defined(FUSEDPROP_HAVE_AVX512)
    if (want == "avx512" && f.avx512f) return Loop::avx512;
#endif
#if defined(FUSEDPROP_HAVE_AVX2)
    if ((want == "avx512" || want == "avx2") && f.avx2 && f.fma) return Loop::avx2;
#endif
    (void)f, (void)want;  // unused in a build without the AVX kernels (aarch64, arm64 macOS)
    return Loop::portable;
}

FmaLoopResult one_thread(Loop loop, bool double_precision, double seconds) {
#if defined(FUSEDPROP_HAVE_AVX512)
    if (loop == Loop::avx512) return detail::fma_loop_avx512(double_precision, seconds);
#endif
#if defined(FUSEDPROP_HAVE_AVX2)
    if (loop == Loop::avx2) return detail::fma_loop_avx2(double_precision, seconds);
#endif
    (void)loop;
    return detail::fma_loop_portable(double_precision, seconds);
}

}  // namespace

const char* fma_peak_isa(const char* isa) {
    switch (loop_for(isa)) {
        case Loop::avx512: return "avx512f+fma";
        case Loop::avx2: return "avx2+fma";
        default: return "portable";
    }
}

double measure_peak_gflops(bool double_precision, int threads, double seconds, const char* isa) {
    if (threads < 1) threads = 1;
    const Loop loop = loop_for(isa);
    std::vector<FmaLoopResult> results(static_cast<std::size_t>(threads));
    std::atomic<int> arrived{0};
    parallel_for(
        results.size(),
        [&](std::size_t i) {
            // Start together, so the loops overlap. Bounded: if the pool ran
            // the tasks one after another on fewer threads, go anyway.
            arrived.fetch_add(1);
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
            while (arrived.load() < threads && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
            results[i] = one_thread(loop, double_precision, seconds);
        },
        threads);
    double total = 0;
    for (const FmaLoopResult& r : results)
        if (r.seconds > 0 && r.sink == r.sink) total += r.flops / r.seconds;
    return total / 1e9;
}

}  // namespace fusedprop::runtime
