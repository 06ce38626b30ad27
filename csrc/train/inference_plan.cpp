#include "inference_plan.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "layers/linear_forward.h"

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
    MatrixRef<const T> in = x;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const LayerShape& s = layers_[l];
        const InferenceWeights<T>& w = weights[l];
        MatrixRef<T> y = l + 1 == layers_.size() ? out : MatrixRef<T>{ping, batch, s.out_features, s.out_features, 1};
        layers::linear_forward<T>(in, {w.weight, s.out_features, s.in_features, s.in_features, 1}, w.bias, 1,
                                  s.activation, static_cast<T>(s.negative_slope), y, {}, max_threads, w.packed_wt);
        in = y;
        std::swap(ping, pong);
    }
    give_back(std::move(buffers));
}

template class InferencePlan<float>;
template class InferencePlan<double>;

}  // namespace fusedprop::train
