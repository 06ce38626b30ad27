#include "train_step.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "layers/linear_backward.h"
#include "layers/linear_forward.h"

namespace fusedprop::train {
namespace {

template <class T>
MatrixRef<T> rows_of(T* data, index_t rows, index_t cols) {
    return {data, rows, cols, cols, 1};
}

}  // namespace

template <class T>
double loss_and_gradient(const LossShape& loss, MatrixRef<const T> logits, const Target<T>& target, MatrixRef<T> grad) {
    const index_t batch = logits.rows, n_out = logits.cols;
    switch (loss.kind) {
        case LossKind::mse:
            return mse_loss<T>(logits, rows_of(target.values, batch, n_out), loss.reduction, grad);
        case LossKind::bce_with_logits:
            return bce_with_logits_loss<T>(logits, rows_of(target.values, batch, n_out), loss.reduction, grad);
        case LossKind::cross_entropy:
            return cross_entropy_loss<T>(logits, target.classes, loss.label_smoothing, loss.reduction, grad);
    }
    return 0.0;
}

template double loss_and_gradient<float>(const LossShape&, MatrixRef<const float>, const Target<float>&,
                                         MatrixRef<float>);
template double loss_and_gradient<double>(const LossShape&, MatrixRef<const double>, const Target<double>&,
                                          MatrixRef<double>);

template <class T>
TrainStepPlan<T>::TrainStepPlan(std::vector<LayerShape> layers, LossShape loss)
    : layers_(std::move(layers)), loss_(loss) {
    if (layers_.empty()) throw std::invalid_argument("TrainStepPlan: no layers");
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        if (l > 0 && layers_[l].in_features != layers_[l - 1].out_features)
            throw std::invalid_argument("TrainStepPlan: layer widths do not chain");
        widest_ = std::max({widest_, layers_[l].in_features, layers_[l].out_features});
    }
    outputs_.resize(layers_.size());
    preactivations_.resize(layers_.size());
}

template <class T>
void TrainStepPlan<T>::reserve(index_t batch) {
    if (batch <= reserved_batch_) return;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const auto n = static_cast<std::size_t>(batch) * static_cast<std::size_t>(layers_[l].out_features);
        outputs_[l].reserve(n);
        if (math::saved_for(layers_[l].activation) == math::Saved::preactivation) preactivations_[l].reserve(n);
    }
    const auto widest = static_cast<std::size_t>(batch) * static_cast<std::size_t>(widest_);
    grad_in_.reserve(widest);
    grad_out_.reserve(widest);
    bias_scratch_.reserve(static_cast<std::size_t>(widest_));
    reserved_batch_ = batch;
}

template <class T>
MatrixRef<T> TrainStepPlan<T>::output(std::size_t l, index_t batch) const {
    return rows_of(outputs_[l].data(), batch, layers_[l].out_features);
}

template <class T>
MatrixRef<T> TrainStepPlan<T>::preactivation(std::size_t l, index_t batch) const {
    if (math::saved_for(layers_[l].activation) != math::Saved::preactivation) return {};
    return rows_of(preactivations_[l].data(), batch, layers_[l].out_features);
}

template <class T>
void TrainStepPlan<T>::forward_layer(std::size_t l, MatrixRef<const T> in, const LayerTensors<T>& p,
                                     MatrixRef<T> out, bool save) {
    const LayerShape& shape = layers_[l];
    layers::linear_forward<T>(in, rows_of<const T>(p.weight, shape.out_features, shape.in_features), p.bias, 1,
                              shape.activation, static_cast<T>(shape.negative_slope), out,
                              save ? preactivation(l, in.rows) : MatrixRef<T>{});
}

template <class T>
void TrainStepPlan<T>::forward(MatrixRef<const T> x, const std::vector<LayerTensors<T>>& params, MatrixRef<T> out) {
    reserve(x.rows);
    MatrixRef<const T> in = x;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        MatrixRef<T> y = l + 1 == layers_.size() ? out : output(l, x.rows);
        forward_layer(l, in, params[l], y, false);
        in = y;
    }
}

template <class T>
double TrainStepPlan<T>::forward_backward(MatrixRef<const T> x, const Target<T>& target,
                                          const std::vector<LayerTensors<T>>& params) {
    const index_t batch = x.rows;
    reserve(batch);
    const std::size_t n_layers = layers_.size();

    // Forward: every layer's output stays in the plan for the backward.
    MatrixRef<const T> in = x;
    for (std::size_t l = 0; l < n_layers; ++l) {
        forward_layer(l, in, params[l], output(l, batch), true);
        in = output(l, batch);
    }

    // Loss and its gradient with respect to the last output.
    const index_t n_out = layers_.back().out_features;
    const double loss = loss_and_gradient<T>(loss_, output(n_layers - 1, batch), target,
                                             rows_of(grad_in_.data(), batch, n_out));

    // Backward, last layer first.
    for (std::size_t l = n_layers; l-- > 0;) {
        const LayerShape& shape = layers_[l];
        const LayerTensors<T>& p = params[l];
        const MatrixRef<const T> layer_in = l == 0 ? x : MatrixRef<const T>(output(l - 1, batch));
        MatrixRef<const T> saved{};
        switch (math::saved_for(shape.activation)) {
            case math::Saved::output: saved = output(l, batch); break;
            case math::Saved::preactivation: saved = preactivation(l, batch); break;
            case math::Saved::nothing: break;
        }
        const MatrixRef<const T> grad_y = rows_of<const T>(grad_in_.data(), batch, shape.out_features);
        // dX becomes the next layer's incoming gradient; the first layer needs none.
        const MatrixRef<T> grad_x = l > 0 ? rows_of(grad_out_.data(), batch, shape.in_features) : MatrixRef<T>{};
        layers::linear_backward<T>(grad_y, layer_in, rows_of<const T>(p.weight, shape.out_features, shape.in_features),
                                   saved, shape.activation, static_cast<T>(shape.negative_slope), grad_x,
                                   rows_of(p.weight_grad, shape.out_features, shape.in_features),
                                   p.bias_grad != nullptr ? p.bias_grad : bias_scratch_.data());
        std::swap(grad_in_, grad_out_);
    }
    return loss;
}

template class TrainStepPlan<float>;
template class TrainStepPlan<double>;

}  // namespace fusedprop::train
