// f64 microkernel, 6 x 8 tile, AVX2 + FMA (compiled with -mavx2 -mfma).
//
// Registers (all 16 YMM on x86-64): 12 accumulators (6 rows x 2 vectors of 4
// doubles), 2 for the B row, 1 for the broadcast A element: 15 in use.
// Per k step: 2 aligned B loads, 6 broadcasts, 12 FMAs; Zen 3 issues 2 FMAs
// per cycle with latency 4, so 12 independent chains keep both pipes busy.
// Contract and packed layout: ukernel.h.
#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "ukernel_avx2.h"

namespace fusedprop::gemm {
namespace {

constexpr int kMR = avx2::kMR;
constexpr int kNR = 8;

template <layers::Activation A>
void ukernel_f64_6x8_avx2(const UkernelArgs<double>& p) {
    assert(p.k >= 0);
    assert(p.k == 0 || (p.a != nullptr && p.b != nullptr));
    assert(p.k == 0 || (reinterpret_cast<std::uintptr_t>(p.b) % 32) == 0);
    assert(p.c != nullptr);

    double* c = p.c;
    const index_t rs = p.rs_c;
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {  // a tile row may straddle two cache lines
        _mm_prefetch(reinterpret_cast<const char*>(c + i * rs), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * rs + 7), _MM_HINT_T0);
    }

    // The k loop in inline asm: written with intrinsics, GCC's allocator
    // spills accumulators. The 12 accumulators live in ymm4-15 for the whole
    // loop (4 k steps per iteration, then the remainder); ymm0-1 hold the B
    // row, ymm2 the broadcast A element. They leave through a stack tile in
    // L1 to the write-back below.
    const double* a = p.a;
    const double* b = p.b;
    index_t k4 = p.k / 4, k1 = p.k % 4;
    alignas(32) double acc_tile[kMR * 2 * (32 / sizeof(double))];
    double* acc = acc_tile;
    __asm__ volatile(
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
        "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "vxorps %%ymm12, %%ymm12, %%ymm12\n\t"
        "vxorps %%ymm13, %%ymm13, %%ymm13\n\t"
        "vxorps %%ymm14, %%ymm14, %%ymm14\n\t"
        "vxorps %%ymm15, %%ymm15, %%ymm15\n\t"
        "test %[k4], %[k4]\n\t"
        "jz 2f\n\t"
        ".p2align 5\n\t"
        "1:\n\t"
        "prefetcht0 384(%[a])\n\t"
        "vmovaps 0(%[b]), %%ymm0\n\t"
        "vmovaps 32(%[b]), %%ymm1\n\t"
        "vbroadcastsd 0(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastsd 8(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm6\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm7\n\t"
        "vbroadcastsd 16(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastsd 24(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm10\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm11\n\t"
        "vbroadcastsd 32(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm13\n\t"
        "vbroadcastsd 40(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm14\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm15\n\t"
        "vmovaps 64(%[b]), %%ymm0\n\t"
        "vmovaps 96(%[b]), %%ymm1\n\t"
        "vbroadcastsd 48(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastsd 56(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm6\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm7\n\t"
        "vbroadcastsd 64(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastsd 72(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm10\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm11\n\t"
        "vbroadcastsd 80(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm13\n\t"
        "vbroadcastsd 88(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm14\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm15\n\t"
        "vmovaps 128(%[b]), %%ymm0\n\t"
        "vmovaps 160(%[b]), %%ymm1\n\t"
        "vbroadcastsd 96(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastsd 104(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm6\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm7\n\t"
        "vbroadcastsd 112(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastsd 120(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm10\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm11\n\t"
        "vbroadcastsd 128(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm13\n\t"
        "vbroadcastsd 136(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm14\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm15\n\t"
        "vmovaps 192(%[b]), %%ymm0\n\t"
        "vmovaps 224(%[b]), %%ymm1\n\t"
        "vbroadcastsd 144(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastsd 152(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm6\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm7\n\t"
        "vbroadcastsd 160(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastsd 168(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm10\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm11\n\t"
        "vbroadcastsd 176(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm13\n\t"
        "vbroadcastsd 184(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm14\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm15\n\t"
        "add $192, %[a]\n\t"
        "add $256, %[b]\n\t"
        "dec %[k4]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "test %[k1], %[k1]\n\t"
        "jz 4f\n\t"
        "3:\n\t"
        "vmovaps 0(%[b]), %%ymm0\n\t"
        "vmovaps 32(%[b]), %%ymm1\n\t"
        "vbroadcastsd 0(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastsd 8(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm6\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm7\n\t"
        "vbroadcastsd 16(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastsd 24(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm10\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm11\n\t"
        "vbroadcastsd 32(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm13\n\t"
        "vbroadcastsd 40(%[a]), %%ymm2\n\t"
        "vfmadd231pd %%ymm0, %%ymm2, %%ymm14\n\t"
        "vfmadd231pd %%ymm1, %%ymm2, %%ymm15\n\t"
        "add $48, %[a]\n\t"
        "add $64, %[b]\n\t"
        "dec %[k1]\n\t"
        "jnz 3b\n\t"
        "4:\n\t"
        "vmovaps %%ymm4, 0(%[acc])\n\t"
        "vmovaps %%ymm5, 32(%[acc])\n\t"
        "vmovaps %%ymm6, 64(%[acc])\n\t"
        "vmovaps %%ymm7, 96(%[acc])\n\t"
        "vmovaps %%ymm8, 128(%[acc])\n\t"
        "vmovaps %%ymm9, 160(%[acc])\n\t"
        "vmovaps %%ymm10, 192(%[acc])\n\t"
        "vmovaps %%ymm11, 224(%[acc])\n\t"
        "vmovaps %%ymm12, 256(%[acc])\n\t"
        "vmovaps %%ymm13, 288(%[acc])\n\t"
        "vmovaps %%ymm14, 320(%[acc])\n\t"
        "vmovaps %%ymm15, 352(%[acc])\n\t"
        : [a] "+r"(a), [b] "+r"(b), [k4] "+r"(k4), [k1] "+r"(k1)
        : [acc] "r"(acc)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");

    __m256d acc_v[kMR][2];
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
        acc_v[i][0] = _mm256_load_pd(acc + (2 * i) * 4);
        acc_v[i][1] = _mm256_load_pd(acc + (2 * i + 1) * 4);
    }
    avx2::write_back<double, kMR, A>(acc_v, p);
}

}  // namespace

const UkernelTable<double> kUkernelF64Avx2 = {kMR, kNR, "f64_6x8_avx2", FUSEDPROP_UKERNEL_TABLE(ukernel_f64_6x8_avx2),
                                      avx2::rows_table<double>()};

}  // namespace fusedprop::gemm
