// What both compiled steps (TrainPlan, SequencePlan) take from Python
// besides the parameters: the loss's spec, the batch x and the target y,
// parsed and checked the same way for both.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "array_args.h"
#include "param_updates.h"
#include "train/losses.h"
#include "train/train_step.h"

namespace fusedprop::bindings {

// fn names the plan in errors ("TrainPlan", "SequencePlan").
inline train::LossShape loss_shape(const char* fn, const std::string& loss, const std::string& reduction,
                                   double label_smoothing) {
    train::LossShape l;
    if (loss == "mse") l.kind = train::LossKind::mse;
    else if (loss == "bce_with_logits") l.kind = train::LossKind::bce_with_logits;
    else if (loss == "cross_entropy") l.kind = train::LossKind::cross_entropy;
    else throw py::value_error(std::string(fn) + ": unknown loss " + loss);
    if (reduction == "mean") l.reduction = train::Reduction::mean;
    else if (reduction == "sum") l.reduction = train::Reduction::sum;
    else throw py::value_error(std::string(fn) + ": reduction must be 'mean' or 'sum', got " + reduction);
    l.label_smoothing = label_smoothing;
    return l;
}

// x as a (batch, in_features) matrix of T, any whole-element strides.
template <class T>
MatrixRef<const T> input_matrix(const py::array& x, index_t in_features) {
    if (!has_dtype<T>(x))
        throw py::type_error("TrainStep: x must have dtype " + std::string(py::str(py::dtype::of<T>())) + ", got " +
                             std::string(py::str(x.dtype())));
    if (x.ndim() != 2 || x.shape(1) != in_features)
        throw py::value_error("TrainStep: x must have shape (batch, " + std::to_string(in_features) + ")");
    const auto item = static_cast<index_t>(sizeof(T));
    if (x.strides(0) % item || x.strides(1) % item)
        throw py::value_error("TrainStep: x has strides that are not a multiple of its item size");
    return {static_cast<const T*>(x.data()), x.shape(0), x.shape(1), x.strides(0) / item, x.strides(1) / item};
}

// y for `rows` outputs of n_out: class indices for cross-entropy (each in
// [0, n_out)), else values shaped like the output.
template <class T>
train::Target<T> target_of(const py::handle& y, train::LossKind kind, index_t rows, index_t n_out) {
    train::Target<T> target;
    if (kind == train::LossKind::cross_entropy) {
        target.classes = contiguous<std::int64_t>(y, "y", {rows}, false);
        const index_t bad = train::first_invalid_class(target.classes, rows, n_out);
        if (bad >= 0)
            throw py::value_error("TrainStep: target class index " + std::to_string(target.classes[bad]) +
                                  " is out of range [0, " + std::to_string(n_out) + ")");
    } else {
        target.values = contiguous<T>(y, "y", {rows, n_out}, false);
    }
    return target;
}

}  // namespace fusedprop::bindings
