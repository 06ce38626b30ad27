#include "inference_plan.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "gemm/config.h"
#include "gemm/dispatch.h"
#include "gemm/skinny.h"
#include "layers/linear_forward.h"
#include "runtime/thread_pool.h"

namespace fusedprop::train {

template <class T>
InferencePlan<T>::InferencePlan(std::vector<LayerShape> layers) : layers_(std::move(layers)) {
    if (layers_.empty()) throw std::invalid_argument("InferencePlan: no layers");
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        if (l > 0 && layers_[l].in_features != layers_[l - 1].out_features)
            throw std::invalid_argument("InferencePlan: layer widths do not chain");
        if (l + 1 < layers_.size()) widest_hidden_ = std::max(widest_hidden_, layers_[l].out_features);
    }
}

template <class T>
std::unique_ptr<typename InferencePlan<T>::Buffers> InferencePlan<T>::take() const {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (pool_.empty()) return std::make_unique<Buffers>();
    auto b = std::move(pool_.back());
    pool_.pop_back();
    return b;
}

template <class T>
void InferencePlan<T>::give_back(std::unique_ptr<Buffers> b) const {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    pool_.push_back(std::move(b));
}

template <class T>
void InferencePlan<T>::forward(MatrixRef<const T> x, const std::vector<InferenceWeights<T>>& weights,
                               MatrixRef<T> out, int max_threads) const {
    const index_t batch = x.rows;
    if (batch == 0) return;
    std::unique_ptr<Buffers> buffers = take();
    const auto hidden = static_cast<std::size_t>(batch) * static_cast<std::size_t>(widest_hidden_);
    T* ping = buffers->ping.reserve(hidden);
    T* pong = buffers->pong.reserve(hidden);

    // Rows [r0, r1) through every layer; their activations in rows r0.. of
    // ping and pong, so row ranges never share a buffer.
    auto chain = [&](index_t r0, index_t r1, int threads) {
        const index_t rows = r1 - r0;
        T* a = ping;
        T* b = pong;
        MatrixRef<const T> in = x.block(r0, 0, rows, x.cols);
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const LayerShape& s = layers_[l];
            const InferenceWeights<T>& w = weights[l];
            MatrixRef<T> y = l + 1 == layers_.size() ? out.block(r0, 0, rows, out.cols)
                                                     : MatrixRef<T>{a + r0 * s.out_features, rows, s.out_features,
                                                                    s.out_features, 1};
            layers::linear_forward<T>(in, {w.weight, s.out_features, s.in_features, s.in_features, 1}, w.bias, 1,
                                      s.activation, static_cast<T>(s.negative_slope), y, {}, threads, w.packed_wt);
            in = y;
            std::swap(a, b);
        }
    };

    // Several threads: each takes a share of the batch through the whole
    // network (one wake of the pool per call, where splitting every layer's
    // GEMM wakes it per layer, and a small net's layers are each too small
    // to split at all). Shares start at whole row tiles (MR) and hold at
    // least kSplitRows rows, so every row lands in the tile, and the kernel,
    // it has in one call over the batch; and no share crosses a layer's
    // skinny cut-over (gemm/config.h) that the whole batch does not, else
    // the batch runs unsplit: the same bits at every thread count. Measured on the
    // Zen 4 machine (2026-12-07), 2 threads against 1: 64-128-128-10 1.73x
    // at batch 64 (split per layer: none, each GEMM under the pool's
    // threshold) and 1.78x at 1024; 784-256-256-10 1.79x / 1.99x;
    // 784-1024-1024-10 1.84x / 2.00x.
    const int threads = max_threads > 0 ? max_threads : runtime::get_num_threads();
    const index_t mr = gemm::active_table<T>().mr;
    const index_t tiles = batch / mr;  // whole tiles; the rest joins the last share
    const index_t parts = std::min<index_t>(threads, tiles * mr / kSplitRows);
    if (parts < 2 || flops(batch) < kSplitFlops || !shares_keep_paths(batch, (tiles / parts) * mr)) {
        chain(0, batch, max_threads);
    } else {
        runtime::parallel_for(
            static_cast<std::size_t>(parts),
            [&](std::size_t t) {
                const index_t i = static_cast<index_t>(t);
                const index_t r0 = (tiles * i + parts - 1) / parts * mr;
                const index_t r1 = i + 1 == parts ? batch : (tiles * (i + 1) + parts - 1) / parts * mr;
                chain(r0, r1, 1);
            },
            threads);
    }
    give_back(std::move(buffers));
}

template <class T>
double InferencePlan<T>::flops(index_t batch) const {
    double f = 0;
    for (const LayerShape& s : layers_) f += 2.0 * double(batch) * double(s.in_features) * double(s.out_features);
    return f;
}

// Whether every layer takes the same path (skinny or packed) for a share of
// at least `smallest` rows as for the whole batch: the cut-over is a rows
// bound, so a share can only fall under it when the batch does not.
template <class T>
bool InferencePlan<T>::shares_keep_paths(index_t batch, index_t smallest) const {
    for (const LayerShape& s : layers_) {
        const int cut = gemm::skinny_rows_cutover(s.in_features, s.out_features, sizeof(T), true);
        if ((batch <= cut) != (smallest <= cut)) return false;
    }
    return true;
}

template class InferencePlan<float>;
template class InferencePlan<double>;

}  // namespace fusedprop::train
