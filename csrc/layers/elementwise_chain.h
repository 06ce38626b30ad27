// Runs of elementwise ops of a training step, in one walk over blocks of rows
// that stay in cache, instead of one pass over the whole batch per op:
//
//   forward   [BatchNorm's affine y = x * a + c, or LayerNorm] -> act -> [dropout]
//   backward  dropout's backward -> act's backward
//
// Each stage runs the kernel that stage runs alone (norm_kernels.h,
// activation_kernels.h, dropout.h) on the block, so every element gets the
// same operations in the same order: the bits are those of the unfused ops
// at every block size and thread count. What is saved is memory traffic:
// each block's arrays are read back while they are in cache, and an
// intermediate that nothing reads later is not stored (BatchNorm's output
// before an activation that saves its own output: the activation runs in
// place on it).
#pragma once

#include "layers/dropout.h"
#include "math/activation.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::layers {

template <class T>
struct ChainForward {
    // Stage 1, if any: BatchNorm's affine y = x * scale[j] + shift[j] (n
    // values each), or LayerNorm row by row (gamma, beta: nullptr for 1 and
    // 0; mean and rstd stored per row). y: where to keep its output, or
    // nullptr: it goes to a, where the activation then runs in place.
    enum class Norm { none, affine, layer_norm } norm = Norm::none;
    const T* scale = nullptr;
    const T* shift = nullptr;
    double eps = 1e-5;
    const T* gamma = nullptr;
    const T* beta = nullptr;
    T* mean = nullptr;
    T* rstd = nullptr;
    T* y = nullptr;
    // Stage 2, the activation, output at a.
    math::Activation act = math::Activation::identity;
    T slope = T(0);
    T* a = nullptr;
    // Stage 3, if d is set: dropout with p and key, output at d.
    double p = 0.0;
    DropoutKey key{};
    T* d = nullptr;
};

// x and every output: m x n, C-contiguous, none aliasing another.
template <class T>
void chain_forward(const T* x, index_t m, index_t n, const ChainForward<T>& chain, int max_threads = 0);

// Dropout's backward then the activation's: grad_x = act'(saved) applied to
// dropout(grad_d), where saved is what math::saved_for(act) keeps (the
// activation's output or its input). All m x n, C-contiguous; grad_x must
// not alias grad_d or saved. (Dropout writes grad_x, the activation's
// backward then runs on it in place, while the block is in cache.)
template <class T>
void dropout_act_backward(const T* grad_d, double p, DropoutKey key, math::Activation act, T slope, const T* saved,
                          index_t m, index_t n, T* grad_x, int max_threads = 0);

}  // namespace fusedprop::layers
