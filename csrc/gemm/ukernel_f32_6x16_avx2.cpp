// f32 microkernel, 6 x 16 tile, AVX2 + FMA (compiled with -mavx2 -mfma).
//
// Registers (all 16 YMM on x86-64): 12 accumulators (6 rows x 2 vectors of 8
// floats), 2 for the B row, 1 for the broadcast A element: 15 in use.
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
constexpr int kNR = 16;

template <layers::Activation A>
void ukernel_f32_6x16_avx2(const UkernelArgs<float>& p) {
    assert(p.k >= 0);
    assert(p.k == 0 || (p.a != nullptr && p.b != nullptr));
    assert(p.k == 0 || (reinterpret_cast<std::uintptr_t>(p.b) % 32) == 0);
    assert(p.c != nullptr);

    float* c = p.c;
    const index_t rs = p.rs_c;
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {  // a tile row may straddle two cache lines
        _mm_prefetch(reinterpret_cast<const char*>(c + i * rs), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * rs + 15), _MM_HINT_T0);
    }

    // The k loop in inline asm: written with intrinsics, GCC's allocator
    // spills accumulators. The 12 accumulators live in ymm4-15 for the whole
    // loop (4 k steps per iteration, then the remainder); ymm0-1 hold the B
    // row, ymm2 the broadcast A element. They leave through a stack tile in
    // L1 to the write-back below.
    const float* a = p.a;
    const float* b = p.b;
    index_t k4 = p.k / 4, k1 = p.k % 4;
    alignas(32) float acc_tile[kMR * 2 * (32 / sizeof(float))];
    float* acc = acc_tile;
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
        "prefetcht0 192(%[a])\n\t"
        "vmovaps 0(%[b]), %%ymm0\n\t"
        "vmovaps 32(%[b]), %%ymm1\n\t"
        "vbroadcastss 0(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastss 4(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm6\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm7\n\t"
        "vbroadcastss 8(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastss 12(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm10\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm11\n\t"
        "vbroadcastss 16(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
        "vbroadcastss 20(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm14\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm15\n\t"
        "vmovaps 64(%[b]), %%ymm0\n\t"
        "vmovaps 96(%[b]), %%ymm1\n\t"
        "vbroadcastss 24(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastss 28(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm6\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm7\n\t"
        "vbroadcastss 32(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastss 36(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm10\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm11\n\t"
        "vbroadcastss 40(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
        "vbroadcastss 44(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm14\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm15\n\t"
        "vmovaps 128(%[b]), %%ymm0\n\t"
        "vmovaps 160(%[b]), %%ymm1\n\t"
        "vbroadcastss 48(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastss 52(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm6\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm7\n\t"
        "vbroadcastss 56(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastss 60(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm10\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm11\n\t"
        "vbroadcastss 64(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
        "vbroadcastss 68(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm14\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm15\n\t"
        "vmovaps 192(%[b]), %%ymm0\n\t"
        "vmovaps 224(%[b]), %%ymm1\n\t"
        "vbroadcastss 72(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastss 76(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm6\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm7\n\t"
        "vbroadcastss 80(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastss 84(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm10\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm11\n\t"
        "vbroadcastss 88(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
        "vbroadcastss 92(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm14\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm15\n\t"
        "add $96, %[a]\n\t"
        "add $256, %[b]\n\t"
        "dec %[k4]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "test %[k1], %[k1]\n\t"
        "jz 4f\n\t"
        "3:\n\t"
        "vmovaps 0(%[b]), %%ymm0\n\t"
        "vmovaps 32(%[b]), %%ymm1\n\t"
        "vbroadcastss 0(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastss 4(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm6\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm7\n\t"
        "vbroadcastss 8(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastss 12(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm10\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm11\n\t"
        "vbroadcastss 16(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
        "vbroadcastss 20(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm14\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm15\n\t"
        "add $24, %[a]\n\t"
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

    __m256 acc_v[kMR][2];
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
        acc_v[i][0] = _mm256_load_ps(acc + (2 * i) * 8);
        acc_v[i][1] = _mm256_load_ps(acc + (2 * i + 1) * 8);
    }
    avx2::write_back<float, kMR, A>(acc_v, p);
}

}  // namespace

const UkernelTable<float> kUkernelF32Avx2 = {kMR, kNR, "f32_6x16_avx2", FUSEDPROP_UKERNEL_TABLE(ukernel_f32_6x16_avx2),
                                      avx2::rows_table<float>()};

}  // namespace fusedprop::gemm
