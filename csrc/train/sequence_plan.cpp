#include "sequence_plan.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "layers/activation_kernels.h"
#include "layers/batch_norm.h"
#include "layers/elementwise_chain.h"
#include "layers/layer_norm.h"
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
SequencePlan<T>::SequencePlan(std::vector<OpShape> ops, LossShape loss, bool fuse)
    : ops_(std::move(ops)), loss_(loss) {
    if (ops_.empty()) throw std::invalid_argument("SequencePlan: no ops");
    for (std::size_t l = 0; l < ops_.size(); ++l) {
        const OpShape& op = ops_[l];
        if (l > 0 && op.in_features != ops_[l - 1].out_features)
            throw std::invalid_argument("SequencePlan: op widths do not chain");
        if (op.kind != OpKind::linear && op.in_features != op.out_features)
            throw std::invalid_argument("SequencePlan: only a linear op changes the width");
        if (op.kind == OpKind::dropout && !(op.p >= 0.0 && op.p < 1.0))
            throw std::invalid_argument("SequencePlan: dropout p must be in [0, 1)");
        widest_ = std::max({widest_, op.in_features, op.out_features});
    }
    outputs_.resize(ops_.size());
    saved_.resize(ops_.size());

    // The runs: BatchNorm or LayerNorm -> activation [-> dropout], activation -> dropout, or
    // Linear (+ activation) -> dropout (the dropout in the GEMM, layers/linear_forward.h).
    const std::size_t n_ops = ops_.size();
    auto is = [&](std::size_t l, OpKind kind) { return l < n_ops && ops_[l].kind == kind; };
    run_.assign(n_ops, 1);
    back_pair_.assign(n_ops, false);
    if (!fuse) return;
    for (std::size_t l = 0; l < n_ops; ++l) {
        const bool norm = is(l, OpKind::batch_norm) || is(l, OpKind::layer_norm);
        if (norm && is(l + 1, OpKind::activation)) run_[l] = is(l + 2, OpKind::dropout) ? 3 : 2;
        else if ((is(l, OpKind::activation) || is(l, OpKind::linear)) && is(l + 1, OpKind::dropout)) run_[l] = 2;
        if (l > 0 && is(l, OpKind::dropout) && is(l - 1, OpKind::activation)) back_pair_[l] = true;
    }
}

template <class T>
void SequencePlan<T>::reserve(index_t batch) {
    if (batch <= reserved_batch_) return;
    const auto b = static_cast<std::size_t>(batch);
    for (std::size_t l = 0; l < ops_.size(); ++l) {
        const OpShape& op = ops_[l];
        const auto n = static_cast<std::size_t>(op.out_features);
        outputs_[l].reserve(b * n);
        switch (op.kind) {
            case OpKind::linear:
                if (math::saved_for(op.activation) == math::Saved::preactivation) saved_[l].reserve(b * n);
                break;
            case OpKind::batch_norm: saved_[l].reserve(3 * n); break;
            case OpKind::layer_norm: saved_[l].reserve(2 * b); break;
            default: break;
        }
    }
    const auto widest = b * static_cast<std::size_t>(widest_);
    grad_in_.reserve(widest);
    grad_out_.reserve(widest);
    scratch_.reserve(std::max({widest, 2 * b, 2 * static_cast<std::size_t>(widest_)}));  // 2 widest: BatchNorm's a, c
    reserved_batch_ = batch;
}

template <class T>
MatrixRef<T> SequencePlan<T>::output(std::size_t l, index_t batch) const {
    return rows_of(outputs_[l].data(), batch, ops_[l].out_features);
}

template <class T>
MatrixRef<const T> SequencePlan<T>::weight(std::size_t l, const OpTensors<T>& p) const {
    return rows_of<const T>(p.weight, ops_[l].out_features, ops_[l].in_features);
}

// Where a Linear whose activation's backward reads Z keeps it; else empty.
template <class T>
MatrixRef<T> SequencePlan<T>::preactivation(std::size_t l, index_t batch) const {
    if (math::saved_for(ops_[l].activation) != math::Saved::preactivation) return {};
    return rows_of(saved_[l].data(), batch, ops_[l].out_features);
}

// BatchNorm's running statistics from the batch's (mean | invstd | var_unbiased).
template <class T>
void SequencePlan<T>::update_running(const OpTensors<T>& p, const T* stats, index_t n, index_t m) const {
    if (p.running_mean != nullptr && m > 0)
        layers::batch_norm_update_running<T>(p.running_mean, p.running_var, stats, stats + 2 * n, n, p.momentum);
}

template <class T>
void SequencePlan<T>::forward_op(std::size_t l, MatrixRef<const T> in, const OpTensors<T>& p, MatrixRef<T> out,
                                 bool training) {
    const OpShape& op = ops_[l];
    const index_t m = in.rows, n = op.out_features;
    switch (op.kind) {
        case OpKind::linear:
            layers::linear_forward<T>(in, weight(l, p), p.bias, 1, op.activation, static_cast<T>(op.negative_slope),
                                      out, training ? preactivation(l, m) : MatrixRef<T>{}, 0, p.packed_wt);
            break;
        case OpKind::batch_norm: {
            if (!training && !op.batch_stats_in_eval) {
                layers::batch_norm_forward_eval<T>(in.data, m, n, op.eps, p.running_mean, p.running_var, p.weight,
                                                   p.bias, out.data);
                break;
            }
            T* mean = saved_[l].data();
            layers::batch_norm_forward_train<T>(in.data, m, n, op.eps, p.weight, p.bias, out.data, mean, mean + n,
                                                mean + 2 * n);
            if (training) update_running(p, mean, n, m);
            break;
        }
        case OpKind::layer_norm: {
            T* mean = training ? saved_[l].data() : scratch_.data();
            layers::layer_norm_forward<T>(in.data, m, n, op.eps, p.weight, p.bias, out.data, mean, mean + m);
            break;
        }
        case OpKind::activation:
            layers::activation_forward<T>(op.activation, static_cast<T>(op.negative_slope), in, out);
            break;
        case OpKind::dropout:
            if (training) layers::dropout_apply<T>(in.data, out.data, m * n, op.p, p.key);
            else std::memcpy(out.data, in.data, sizeof(T) * static_cast<std::size_t>(m * n));
            break;
    }
}

// Stage 1 of a walk from norm op l (elementwise_chain.h). BatchNorm: the
// affine of its batch statistics (computed here into saved_, the running
// ones updated in training) or, in eval, of its running statistics.
// LayerNorm: its per-row statistics go to saved_.
template <class T>
layers::ChainForward<T> SequencePlan<T>::norm_stage(std::size_t l, MatrixRef<const T> in, const OpTensors<T>& p,
                                                    bool training) {
    using Chain = layers::ChainForward<T>;
    const OpShape& op = ops_[l];
    const index_t m = in.rows, n = op.out_features;
    Chain chain;
    if (op.kind == OpKind::layer_norm) {
        chain.norm = Chain::Norm::layer_norm;
        chain.eps = op.eps;
        chain.gamma = p.weight;
        chain.beta = p.bias;
        chain.mean = saved_[l].data();
        chain.rstd = chain.mean + m;
        return chain;
    }
    T* a = scratch_.data();  // 2n: the affine's a and c
    if (training || op.batch_stats_in_eval) {
        T* stats = saved_[l].data();
        layers::batch_norm_stats<T>(in.data, m, n, op.eps, stats, stats + n, stats + 2 * n);
        if (training) update_running(p, stats, n, m);
        layers::batch_norm_scale_shift<T>(stats, stats + n, p.weight, p.bias, n, a, a + n);
    } else {
        layers::batch_norm_eval_scale_shift<T>(p.running_mean, p.running_var, op.eps, p.weight, p.bias, n, a, a + n);
    }
    chain.norm = Chain::Norm::affine;
    chain.scale = a;
    chain.shift = a + n;
    return chain;
}

// The training forward of the run of ops from l (run_[l] of them), reading
// in; returns how many ops it ran. Each op's output is stored where the
// unfused op stores it, but for an output that only the next op reads: a
// norm's before an activation that saves its own output (it stays in the
// activation's output buffer, where the activation runs in place), and a
// Linear's before a dropout when its activation's backward does not read it
// (the dropout runs in place in its own output buffer).
// BatchNorm's statistics need the whole batch, so they come first;
// LayerNorm's are per row and run inside the walk.
template <class T>
std::size_t SequencePlan<T>::forward_run(std::size_t l, MatrixRef<const T> in,
                                         const std::vector<OpTensors<T>>& params) {
    const index_t m = in.rows;
    const std::size_t len = run_[l];
    if (len == 1) {
        forward_op(l, in, params[l], output(l, m), true);
        return 1;
    }
    const OpShape& first = ops_[l];
    const index_t n = first.out_features;
    if (first.kind == OpKind::linear) {
        // The Linear's own output is kept only for an activation whose
        // backward reads it; else the dropout runs in place in its output.
        const bool keep_y = math::saved_for(first.activation) == math::Saved::output;
        T* d = output(l + 1, m).data;
        layers::linear_dropout_forward<T>(in, weight(l, params[l]), params[l].bias, first.activation,
                                          static_cast<T>(first.negative_slope), keep_y ? output(l, m) : rows_of(d, m, n),
                                          preactivation(l, m), ops_[l + 1].p, params[l + 1].key, d);
        return 2;
    }
    layers::ChainForward<T> chain;
    std::size_t at = l;  // the activation's op
    if (first.kind == OpKind::batch_norm || first.kind == OpKind::layer_norm) {
        chain = norm_stage(l, in, params[l], true);
        ++at;
        if (math::saved_for(ops_[at].activation) == math::Saved::preactivation) chain.y = output(l, m).data;
    }
    chain.act = ops_[at].activation;
    chain.slope = static_cast<T>(ops_[at].negative_slope);
    chain.a = output(at, m).data;
    if (at + 1 < l + len) {
        chain.p = ops_[at + 1].p;
        chain.key = params[at + 1].key;
        chain.d = output(at + 1, m).data;
    }
    layers::chain_forward<T>(in.data, m, n, chain);
    return len;
}

template <class T>
void SequencePlan<T>::backward_op(std::size_t l, MatrixRef<const T> in, MatrixRef<const T> grad_y,
                                  const OpTensors<T>& p, MatrixRef<T> grad_x) {
    const OpShape& op = ops_[l];
    const index_t m = in.rows, n = op.out_features;
    T* dx = grad_x.data;  // nullptr: the first op, whose input needs no gradient
    switch (op.kind) {
        case OpKind::linear: {
            MatrixRef<const T> saved{};
            switch (math::saved_for(op.activation)) {
                case math::Saved::output: saved = output(l, m); break;
                case math::Saved::preactivation: saved = preactivation(l, m); break;
                case math::Saved::nothing: break;
            }
            layers::linear_backward<T>(grad_y, in, weight(l, p), saved, op.activation,
                                       static_cast<T>(op.negative_slope), grad_x,
                                       rows_of(p.weight_grad, op.out_features, op.in_features),
                                       p.bias_grad != nullptr ? p.bias_grad : scratch_.data());
            break;
        }
        case OpKind::batch_norm: {
            const T* mean = saved_[l].data();
            layers::batch_norm_backward<T>(grad_y.data, in.data, m, n, mean, mean + n, p.weight, dx, p.weight_grad,
                                           p.bias_grad);
            break;
        }
        case OpKind::layer_norm: {
            const T* mean = saved_[l].data();
            layers::layer_norm_backward<T>(grad_y.data, in.data, m, n, mean, mean + m, p.weight, dx, p.weight_grad,
                                           p.bias_grad);
            break;
        }
        case OpKind::activation: {
            if (dx == nullptr) break;
            const MatrixRef<const T> saved =
                math::saved_for(op.activation) == math::Saved::output ? MatrixRef<const T>(output(l, m)) : in;
            layers::activation_backward<T>(op.activation, static_cast<T>(op.negative_slope), grad_y, saved, grad_x,
                                           nullptr);
            break;
        }
        case OpKind::dropout:
            if (dx != nullptr) layers::dropout_apply<T>(grad_y.data, dx, m * n, op.p, p.key);
            break;
    }
}

template <class T>
double SequencePlan<T>::forward_backward(MatrixRef<const T> x, const Target<T>& target,
                                         const std::vector<OpTensors<T>>& params) {
    const index_t batch = x.rows;
    reserve(batch);
    const std::size_t n_ops = ops_.size();
    MatrixRef<const T> in = x;
    for (std::size_t l = 0; l < n_ops;) {
        l += forward_run(l, in, params);
        in = output(l - 1, batch);
    }
    const index_t n_out = ops_.back().out_features;
    const double loss =
        loss_and_gradient<T>(loss_, output(n_ops - 1, batch), target, rows_of(grad_in_.data(), batch, n_out));
    for (std::size_t l = n_ops; l-- > 0;) {
        const OpShape& op = ops_[l];
        const MatrixRef<const T> layer_in = l == 0 ? x : MatrixRef<const T>(output(l - 1, batch));
        const MatrixRef<const T> grad_y = rows_of<const T>(grad_in_.data(), batch, op.out_features);
        const MatrixRef<T> grad_x = l > 0 ? rows_of(grad_out_.data(), batch, op.in_features) : MatrixRef<T>{};
        if (back_pair_[l]) {  // dropout l and activation l - 1 in one walk, into the activation's input gradient
            const layers::DropoutKey key = params[l].key;
            const std::size_t a = --l;  // the loop goes on below the activation
            if (a == 0) break;          // the first op's input needs no gradient
            const OpShape& act = ops_[a];
            const T* saved = math::saved_for(act.activation) == math::Saved::output ? output(a, batch).data
                                                                                      : output(a - 1, batch).data;
            layers::dropout_act_backward<T>(grad_y.data, op.p, key, act.activation, static_cast<T>(act.negative_slope),
                                            saved, batch, op.out_features, grad_x.data);
        } else {
            backward_op(l, layer_in, grad_y, params[l], grad_x);
        }
        std::swap(grad_in_, grad_out_);
    }
    return loss;
}

// The eval forward of a norm and the activation after it as one walk, into
// y: the bits of the two ops alone. False: not such a pair.
template <class T>
bool SequencePlan<T>::forward_norm_act_eval(std::size_t l, MatrixRef<const T> in,
                                            const std::vector<OpTensors<T>>& params, MatrixRef<T> y) {
    const OpKind kind = ops_[l].kind;
    if (run_[l] < 2 || (kind != OpKind::batch_norm && kind != OpKind::layer_norm)) return false;
    layers::ChainForward<T> chain = norm_stage(l, in, params[l], false);
    chain.act = ops_[l + 1].activation;
    chain.slope = static_cast<T>(ops_[l + 1].negative_slope);
    chain.a = y.data;
    layers::chain_forward<T>(in.data, in.rows, ops_[l].out_features, chain);
    return true;
}

template <class T>
void SequencePlan<T>::forward(MatrixRef<const T> x, const std::vector<OpTensors<T>>& params, MatrixRef<T> out) {
    reserve(x.rows);
    MatrixRef<const T> in = x;
    const std::size_t n_ops = ops_.size();
    for (std::size_t l = 0; l < n_ops; ++l) {
        if (ops_[l].kind == OpKind::dropout && l + 1 < n_ops) continue;  // the identity in eval: no copy
        if (l + 1 < n_ops) {  // a norm -> activation pair: the activation's output, y
            const MatrixRef<T> y = l + 2 == n_ops ? out : output(l + 1, x.rows);
            if (forward_norm_act_eval(l, in, params, y)) {
                in = y;
                ++l;
                continue;
            }
        }
        MatrixRef<T> y = l + 1 == n_ops ? out : output(l, x.rows);
        forward_op(l, in, params[l], y, false);
        in = y;
    }
}

template class SequencePlan<float>;
template class SequencePlan<double>;

}  // namespace fusedprop::train
