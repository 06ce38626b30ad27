// The forward pass of a chain of fused dense layers, for inference, in one
// call: X_{l+1} = act_l(X_l W_l^T + b_l), nothing saved for a backward.
//
// Each layer runs the fused GEMM, which takes the small-batch path with no
// packing for a few rows (gemm/skinny.h) and otherwise reads W^T from the
// pre-packed copy when one is given (gemm/packed_b.h). The result is bitwise
// that of the eager layers (F.linear one after another) on the same weights.
//
// Threads: each takes a share of the batch through every layer (see
// forward()), with the same bits as one thread.
//
// Thread safety: forward() may be called from several threads at once. Each
// call takes a set of intermediate buffers from the plan's pool (or makes
// one) and gives it back, so buffers are reused between calls and never
// shared by two calls at the same time.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "gemm/packed_b.h"
#include "runtime/aligned_buffer.h"
#include "runtime/matrix_ref.h"
#include "train/train_step.h"

namespace fusedprop::train {

// One layer's weights for inference: C-contiguous W (out x in) and bias (or
// nullptr); packed_wt: W^T packed ahead of time, or nullptr.
template <class T>
struct InferenceWeights {
    const T* weight = nullptr;
    const T* bias = nullptr;
    const gemm::PackedB<T>* packed_wt = nullptr;
};

template <class T>
class InferencePlan {
public:
    using value_type = T;
    explicit InferencePlan(std::vector<LayerShape> layers);

    // out (batch x out_features of the last layer, any strides with a unit
    // column stride or not) = the chain applied to x (batch x in_features).
    void forward(MatrixRef<const T> x, const std::vector<InferenceWeights<T>>& weights, MatrixRef<T> out,
                 int max_threads = 0) const;

    const std::vector<LayerShape>& layers() const { return layers_; }

    // forward() at several threads splits the batch in shares of at least
    // this many rows (above the skinny rows cut-over of wide layers,
    // gemm/config.h; narrow ones are checked per call), when the
    // whole pass costs at least kSplitFlops (below, the pool's wake-up is
    // most of the gain). See inference_plan.cpp.
    static constexpr index_t kSplitRows = 24;
    static constexpr double kSplitFlops = 1.0e6;

private:
    double flops(index_t batch) const;
    bool shares_keep_paths(index_t batch, index_t smallest) const;
    struct Buffers {
        runtime::AlignedBuffer<T> ping, pong;
    };
    std::unique_ptr<Buffers> take() const;
    void give_back(std::unique_ptr<Buffers> b) const;

    std::vector<LayerShape> layers_;
    index_t widest_hidden_ = 0;
    mutable std::mutex pool_mutex_;
    mutable std::vector<std::unique_ptr<Buffers>> pool_;
};

extern template class InferencePlan<float>;
extern template class InferencePlan<double>;

}  // namespace fusedprop::train
