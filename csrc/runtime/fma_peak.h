// The CPU's measured floating-point peak: "% of peak" in the benchmark report
// is of this number, measured on this machine, not of a datasheet.
//
// Each thread runs a register-only loop of independent fused multiply-adds
// (no loads, no stores), long enough to cover the FMA latency on every FMA
// pipe. The loop is that of the vector ISA the GEMM kernels use (the caller
// says which: bindings pass gemm::active_isa()), so "% of peak" is honest
// whichever kernels run: ZMM registers for "avx512" (its own translation
// unit), YMM for "avx2" (both entered only after the run-time CPU check);
// otherwise a portable loop, which measures what the compiler makes of
// baseline code. An ISA this CPU cannot run falls back to the next narrower.
#pragma once

namespace fusedprop::runtime {

struct FmaLoopResult {
    double flops = 0;    // floating-point operations done (an FMA counts 2)
    double seconds = 0;  // CPU time this thread spent in its loop (see thread_cpu_seconds)
    double sink = 0;     // the accumulators' sum, so the loop is not optimised away
};

// Sum over `threads` threads of each thread's own FLOP rate (FLOPs per second
// of its CPU time), in GFLOP/s, each running its loop for about `seconds`. double_precision picks f64 over f32.
// threads >= 1, seconds > 0 (checked by the binding). isa: "avx512", "avx2"
// or anything else (portable).
double measure_peak_gflops(bool double_precision, int threads, double seconds, const char* isa);

// "avx512f+fma", "avx2+fma" or "portable": which loop measure_peak_gflops
// runs here for that isa.
const char* fma_peak_isa(const char* isa);

namespace detail {
// This thread's CPU time in seconds (CLOCK_THREAD_CPUTIME_ID; wall time where
// that clock is missing). The peak divides by CPU time, not wall time, so it
// is the hardware's rate even when other processes share the cores: a thread
// that is descheduled does no work and spends no CPU time.
double thread_cpu_seconds();
// Whether a loop that started at (cpu0, wall0) has run long enough: `seconds`
// of CPU time, or 5x that of wall time on a very busy machine.
bool loop_done(double cpu0, double wall0, double seconds, double* cpu_elapsed);
FmaLoopResult fma_loop_portable(bool double_precision, double seconds);
#if defined(FUSEDPROP_HAVE_AVX2)
FmaLoopResult fma_loop_avx2(bool double_precision, double seconds);
#endif
#if defined(FUSEDPROP_HAVE_AVX512)
FmaLoopResult fma_loop_avx512(bool double_precision, double seconds);
#endif
}  // namespace detail

}  // namespace fusedprop::runtime
