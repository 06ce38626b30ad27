// A whole training step (and the eval forward) of a Sequential chain of
// ops: fused Linear (+ activation), BatchNorm1d, LayerNorm, a standalone
// activation (after a norm) and Dropout, in any order:
//
//   forward   X_{l+1} = op_l(X_l)           every X_l kept for the backward
//   loss      L(X_L, target), dL/dX_L        (train_step.h)
//   backward  dX_l = op_l'(dX_{l+1}), and each op's weight gradients
//
// BatchNorm updates its running statistics in the step (the caller counts
// num_batches_tracked and passes the momentum); Dropout regenerates its
// mask in the backward from the key it is given (layers/dropout.h). Every
// kernel is deterministic, so a step gives the same bits as the eager ops
// on the same backend (same kernels, same order) for every thread count.
//
// Workspaces as in TrainStepPlan: owned by the plan, grown with the batch.
// Parameters, gradients, running statistics and optimizer state belong to
// the caller and come with every call.
#pragma once

#include <cstdint>
#include <vector>

#include "layers/dropout.h"
#include "layers/elementwise_chain.h"
#include "math/activation.h"
#include "runtime/aligned_buffer.h"
#include "runtime/matrix_ref.h"
#include "train/train_step.h"

namespace fusedprop::gemm {
template <class T>
class PackedB;
}

namespace fusedprop::train {

enum class OpKind : std::uint8_t { linear, batch_norm, layer_norm, activation, dropout };

struct OpShape {
    OpKind kind = OpKind::linear;
    math::Activation activation = math::Activation::identity;  // linear (fused) and activation ops
    double negative_slope = 0.01;
    bool has_weight = false;  // linear: always; norms: affine
    bool has_bias = false;
    bool batch_stats_in_eval = false;  // batch norm without running statistics
    index_t in_features = 0;
    index_t out_features = 0;  // == in_features except for linear
    double eps = 1e-5;         // norms
    double p = 0.0;            // dropout
};

// One op's tensors for one call (C-contiguous; nullptr where absent).
template <class T>
struct OpTensors {
    const T* weight = nullptr;
    const T* bias = nullptr;
    T* weight_grad = nullptr;
    T* bias_grad = nullptr;
    T* running_mean = nullptr;  // batch norm: updated in training when given
    T* running_var = nullptr;
    double momentum = 0.0;
    layers::DropoutKey key{};  // dropout
    const gemm::PackedB<T>* packed_wt = nullptr;  // linear, eval forward: W^T packed from weight, or nullptr
};

template <class T>
class SequencePlan {
public:
    // fuse: run the training step's runs of elementwise ops in one walk each
    // (elementwise_chain.h; the same bits either way, false is for tests).
    SequencePlan(std::vector<OpShape> ops, LossShape loss, bool fuse = true);

    // Training step for a batch x (batch x in_features; any strides if the first
    // op is a Linear, else C-contiguous): writes every gradient, updates the
    // running statistics, returns the loss.
    double forward_backward(MatrixRef<const T> x, const Target<T>& target, const std::vector<OpTensors<T>>& params);

    // Eval forward (running statistics, no dropout) into out (batch x out, C-contiguous).
    void forward(MatrixRef<const T> x, const std::vector<OpTensors<T>>& params, MatrixRef<T> out);

    const std::vector<OpShape>& ops() const { return ops_; }

private:
    void reserve(index_t batch);
    MatrixRef<T> output(std::size_t l, index_t batch) const;
    void forward_op(std::size_t l, MatrixRef<const T> in, const OpTensors<T>& p, MatrixRef<T> out, bool training);
    void backward_op(std::size_t l, MatrixRef<const T> in, MatrixRef<const T> grad_y, const OpTensors<T>& p,
                     MatrixRef<T> grad_x);
    MatrixRef<const T> weight(std::size_t l, const OpTensors<T>& p) const;
    MatrixRef<T> preactivation(std::size_t l, index_t batch) const;
    void update_running(const OpTensors<T>& p, const T* stats, index_t n, index_t m) const;
    layers::ChainForward<T> norm_stage(std::size_t l, MatrixRef<const T> in, const OpTensors<T>& p, bool training);
    std::size_t forward_run(std::size_t l, MatrixRef<const T> in, const std::vector<OpTensors<T>>& params);
    bool forward_norm_act_eval(std::size_t l, MatrixRef<const T> in, const std::vector<OpTensors<T>>& params,
                               MatrixRef<T> y);

    std::vector<OpShape> ops_;
    LossShape loss_;
    // Training step fusion, decided once: run_[l] ops from l run as one
    // forward walk (1: op l alone); back_pair_[l]: dropout op l and the
    // activation op l - 1 run as one backward walk.
    std::vector<std::size_t> run_;
    std::vector<bool> back_pair_;
    index_t widest_ = 0;
    index_t reserved_batch_ = -1;
    std::vector<runtime::AlignedBuffer<T>> outputs_;   // X_{l+1}
    std::vector<runtime::AlignedBuffer<T>> saved_;     // linear: Z where needed; norms: mean | invstd | var
    runtime::AlignedBuffer<T> grad_in_, grad_out_;
    runtime::AlignedBuffer<T> scratch_;  // db of a Linear without bias; BatchNorm's a and c; LayerNorm's eval statistics
};

extern template class SequencePlan<float>;
extern template class SequencePlan<double>;

}  // namespace fusedprop::train
