// The portable reference microkernels: plain C++ on baseline flags (the
// compiler may use SSE2). Same contract as every kernel (ukernel.h); serves
// CPUs without AVX2+FMA and FUSEDPROP_ISA=reference.
#include <cassert>
#include <cstdint>

#include "math/activation.h"
#include "ukernel.h"

namespace fusedprop::gemm {
namespace {

constexpr int kMR = 4;
constexpr int kNR = 8;

template <class T, math::Activation A>
void ukernel_ref(const UkernelArgs<T>& p) {
    assert(p.k >= 0);
    assert(p.k == 0 || (p.a != nullptr && p.b != nullptr));
    assert(p.c != nullptr);
    T acc[kMR][kNR] = {};
    const T* a = p.a;
    const T* b = p.b;
    for (index_t l = 0; l < p.k; ++l) {
        for (int i = 0; i < kMR; ++i) {
            const T ai = a[i];
            for (int j = 0; j < kNR; ++j) acc[i][j] += ai * b[j];
        }
        a += kMR;
        b += kNR;
    }
    for (int i = 0; i < kMR; ++i) {
        T* c = p.c + i * p.rs_c;
        for (int j = 0; j < kNR; ++j) {
            T v = acc[i][j];
            if (p.accumulate) v += c[j];
            if (p.last) {
                if (p.bias != nullptr) v += p.bias[j];
                if (p.z != nullptr) p.z[i * p.rs_z + j] = v;
                v = math::scalar::forward<T>(A, v, p.slope);
            }
            c[j] = v;
        }
    }
}

template <math::Activation A>
void ukernel_f32_4x8_ref(const UkernelArgs<float>& p) { ukernel_ref<float, A>(p); }
template <math::Activation A>
void ukernel_f64_4x8_ref(const UkernelArgs<double>& p) { ukernel_ref<double, A>(p); }

}  // namespace

// No partial-tile kernels: the portable path is for correctness, not speed.
const UkernelTable<float> kUkernelF32Ref = {kMR, kNR, "f32_4x8_ref", FUSEDPROP_UKERNEL_TABLE(ukernel_f32_4x8_ref), {}, {}};
const UkernelTable<double> kUkernelF64Ref = {kMR, kNR, "f64_4x8_ref", FUSEDPROP_UKERNEL_TABLE(ukernel_f64_4x8_ref),
                                             {}, {}};

}  // namespace fusedprop::gemm
