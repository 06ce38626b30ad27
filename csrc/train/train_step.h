// A whole training step of a chain of fused dense layers in C++:
//
//   forward   X_{l+1} = act_l(X_l · W_lᵀ + b_l)      one fused GEMM per layer (linear_forward)
//   loss      L(X_L, target), dL/dX_L                  one pass (losses.h)
//   backward  dZ_l = dX_{l+1} ⊙ act_l'(saved_l), db_l,  then
//             dW_l = dZ_lᵀ · X_l,  dX_l = dZ_l · W_l     (linear_backward; no dX for layer 0)
//
// The plan owns the workspaces (every activation, saved pre-activation and
// gradient buffer), sized for the batch and reallocated only when the batch
// grows. The parameters, their gradients and the optimizer state belong to
// the caller (NumPy arrays the user sees) and are passed to every step, so
// the eager API and the compiled step can alternate freely.
#pragma once

#include <cstdint>
#include <vector>

#include "math/activation.h"
#include "runtime/aligned_buffer.h"
#include "runtime/matrix_ref.h"
#include "train/losses.h"

namespace fusedprop::train {

struct LayerShape {
    math::Activation activation = math::Activation::identity;
    double negative_slope = 0.01;
    bool has_bias = true;
    index_t in_features = 0;
    index_t out_features = 0;
};

enum class LossKind : std::uint8_t { mse, bce_with_logits, cross_entropy };

struct LossShape {
    LossKind kind = LossKind::mse;
    Reduction reduction = Reduction::mean;
    double label_smoothing = 0.0;
};

// One layer's parameters and where its gradients go (C-contiguous arrays).
template <class T>
struct LayerTensors {
    const T* weight = nullptr;  // out x in
    const T* bias = nullptr;    // out, or nullptr
    T* weight_grad = nullptr;   // out x in, overwritten
    T* bias_grad = nullptr;     // out, overwritten; nullptr when there is no bias
};

// The target of the loss: class indices for cross-entropy, else values
// shaped like the output (batch x out, C-contiguous).
template <class T>
struct Target {
    const std::int64_t* classes = nullptr;
    const T* values = nullptr;
};

// The loss of `logits` against `target` and dLoss/dlogits into grad.
template <class T>
double loss_and_gradient(const LossShape& loss, MatrixRef<const T> logits, const Target<T>& target, MatrixRef<T> grad);

template <class T>
class TrainStepPlan {
public:
    TrainStepPlan(std::vector<LayerShape> layers, LossShape loss);

    // Forward, loss and backward for one batch x (batch x in_features of the
    // first layer, any strides). Writes every gradient; returns the loss.
    double forward_backward(MatrixRef<const T> x, const Target<T>& target, const std::vector<LayerTensors<T>>& params);

    // Inference: the forward pass only, into out (batch x out_features).
    void forward(MatrixRef<const T> x, const std::vector<LayerTensors<T>>& params, MatrixRef<T> out);

    const std::vector<LayerShape>& layers() const { return layers_; }

private:
    void reserve(index_t batch);
    MatrixRef<T> output(std::size_t l, index_t batch) const;
    MatrixRef<T> preactivation(std::size_t l, index_t batch) const;
    void forward_layer(std::size_t l, MatrixRef<const T> in, const LayerTensors<T>& p, MatrixRef<T> out,
                       bool save);

    std::vector<LayerShape> layers_;
    LossShape loss_;
    index_t widest_ = 0;
    index_t reserved_batch_ = -1;
    std::vector<runtime::AlignedBuffer<T>> outputs_;         // X_{l+1}, batch x out_l
    std::vector<runtime::AlignedBuffer<T>> preactivations_;  // Z_l where the backward needs it
    runtime::AlignedBuffer<T> grad_in_;                      // dL/dX_{l+1}
    runtime::AlignedBuffer<T> grad_out_;                     // dL/dX_l, then swapped
    runtime::AlignedBuffer<T> bias_scratch_;                 // db of layers without a bias
};

extern template class TrainStepPlan<float>;
extern template class TrainStepPlan<double>;

}  // namespace fusedprop::train
