// The fused dense layer: linear, linear_forward, linear_backward.
// Positional signatures match the backend contract (numpy_backend.py), so
// cpp_backend.py binds them with no Python in between.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "array_args.h"
#include "bindings.h"
#include "layers/linear_backward.h"
#include "layers/linear_forward.h"

namespace py = pybind11;

namespace fusedprop::bindings {
namespace {

using math::Activation;
using math::Saved;

struct LinearArgs {
    py::array x, weight;
    py::object bias;  // null handle when None
    DType dtype;
    ActivationArg act;
    std::vector<py::ssize_t> y_shape;  // x.shape[:-1] + (out_features,)
};

// check_linear of _validation.py, in its order.
LinearArgs check_linear(const char* fn, py::handle x_obj, py::handle w_obj, py::handle bias_obj, py::handle activation,
                        py::handle negative_slope) {
    DType dtype;
    py::array x = check_array(fn, "x", x_obj, &dtype);
    py::array w = check_array(fn, "weight", w_obj);
    check_same_dtype(fn, "x", x, "weight", w);
    if (w.ndim() != 2)
        throw py::value_error(std::string(fn) + ": weight must be 2-D (out_features, in_features), got shape " +
                              shape_str(w));
    if (x.ndim() < 1)
        throw py::value_error(std::string(fn) +
                              ": x must have at least 1 dimension (..., in_features), got a 0-D array");
    if (x.shape(x.ndim() - 1) != w.shape(1))
        throw py::value_error(std::string(fn) + ": x.shape[-1] (" + std::to_string(x.shape(x.ndim() - 1)) +
                              ") must equal weight.shape[1] (in_features = " + std::to_string(w.shape(1)) +
                              "); got x " + shape_str(x) + " and weight " + shape_str(w));
    py::object bias;
    if (!bias_obj.is_none()) {
        py::array b = check_array(fn, "bias", bias_obj);
        check_same_dtype(fn, "x", x, "bias", b);
        if (b.ndim() != 1 || b.shape(0) != w.shape(0))
            throw py::value_error(std::string(fn) + ": bias must have shape (" + std::to_string(w.shape(0)) +
                                  ",) (out_features), got " + shape_str(b));
        bias = b;
    }
    const ActivationArg act = check_activation(fn, activation, negative_slope);
    std::vector<py::ssize_t> y_shape(x.shape(), x.shape() + x.ndim());
    y_shape.back() = w.shape(0);
    return LinearArgs{x, w, bias, dtype, act, std::move(y_shape)};
}

template <class T>
struct Inputs {
    MatrixRef<const T> x, w;
    const T* bias = nullptr;
    index_t bias_stride = 1;
    py::object keep_x, keep_w, keep_bias;  // copies, when a layout needed one
};

template <class T>
Inputs<T> unpack(const char* fn, const LinearArgs& a) {
    Inputs<T> in;
    flatten_leading<const T>(fn, a.x, &in.x, &in.keep_x);
    as_matrix<const T>(a.weight, &in.w, &in.keep_w);
    if (a.bias) {
        index_t s;
        auto b = py::reinterpret_borrow<py::array>(a.bias);
        if (!element_strides<const T>(b, &s)) {
            b = contiguous_copy(b);
            in.keep_bias = b;
            s = 1;
        }
        in.bias = static_cast<const T*>(b.data());
        in.bias_stride = s;
    }
    return in;
}

// A writeable (..., n) output as an M x n matrix; false if it cannot be
// written in place (then the caller computes into a temporary and copies).
template <class T>
bool output_view(const char* fn, const py::array& out, MatrixRef<T>* view) {
    return !has_zero_stride(out) && flatten_leading<T>(fn, out, view, nullptr, false);
}

template <class T>
py::object linear_impl(const LinearArgs& a, py::handle out_obj) {
    const char* fn = "linear";
    Inputs<T> in = unpack<T>(fn, a);
    py::object result, target;
    MatrixRef<T> y;
    if (!out_obj.is_none()) {
        auto out = py::reinterpret_borrow<py::array>(out_obj);
        result = out;
        if (output_view<T>(fn, out, &y)) target = out;
    }
    if (!target) {
        py::array fresh = new_array<T>(a.y_shape.data(), static_cast<py::ssize_t>(a.y_shape.size()));
        flatten_leading<T>(fn, fresh, &y, nullptr, false);
        target = fresh;
        if (!result) result = fresh;
    }
    {
        py::gil_scoped_release release;
        layers::linear_forward<T>(in.x, in.w, in.bias, in.bias_stride, a.act.activation,
                                  static_cast<T>(a.act.negative_slope), y);
    }
    if (target.ptr() != result.ptr()) py::module_::import("numpy").attr("copyto")(result, target);
    return result;
}

py::object linear(py::handle x, py::handle weight, py::handle bias, py::handle activation, py::handle negative_slope,
                  py::handle out) {
    const char* fn = "linear";
    LinearArgs a = check_linear(fn, x, weight, bias, activation, negative_slope);
    if (!out.is_none())
        check_out(fn, out, a.y_shape.data(), static_cast<py::ssize_t>(a.y_shape.size()), a.x,
                  {{"x", x}, {"weight", weight}, {"bias", bias}});
    return a.dtype == DType::f32 ? linear_impl<float>(a, out) : linear_impl<double>(a, out);
}

template <class T>
py::tuple linear_forward_impl(const LinearArgs& a) {
    const char* fn = "linear_forward";
    Inputs<T> in = unpack<T>(fn, a);
    const auto nd = static_cast<py::ssize_t>(a.y_shape.size());
    py::array y_arr = new_array<T>(a.y_shape.data(), nd);
    MatrixRef<T> y, z{};
    flatten_leading<T>(fn, y_arr, &y, nullptr, false);
    const Saved saved = math::saved_for(a.act.activation);
    py::object z_obj = py::none();
    if (saved == Saved::preactivation) {
        py::array z_arr = new_array<T>(a.y_shape.data(), nd);
        flatten_leading<T>(fn, z_arr, &z, nullptr, false);
        z_obj = z_arr;
    }
    {
        py::gil_scoped_release release;
        layers::linear_forward<T>(in.x, in.w, in.bias, in.bias_stride, a.act.activation,
                                  static_cast<T>(a.act.negative_slope), y, z);
    }
    if (saved == Saved::output) return py::make_tuple(y_arr, y_arr);
    return py::make_tuple(y_arr, z_obj);
}

py::tuple linear_forward(py::handle x, py::handle weight, py::handle bias, py::handle activation,
                         py::handle negative_slope) {
    LinearArgs a = check_linear("linear_forward", x, weight, bias, activation, negative_slope);
    return a.dtype == DType::f32 ? linear_forward_impl<float>(a) : linear_forward_impl<double>(a);
}

template <class T>
py::tuple linear_backward_impl(const LinearArgs& a, const py::array& grad_y, const py::object& saved_arr,
                               bool needs_input_grad) {
    const char* fn = "linear_backward";
    Inputs<T> in = unpack<T>(fn, a);
    MatrixRef<const T> dy, saved{};
    py::object keep_dy, keep_saved;
    flatten_leading<const T>(fn, grad_y, &dy, &keep_dy);
    if (saved_arr) flatten_leading<const T>(fn, py::reinterpret_borrow<py::array>(saved_arr), &saved, &keep_saved);

    const index_t n = a.weight.shape(0), k = a.weight.shape(1);
    const py::ssize_t w_shape[2] = {n, k};
    const py::ssize_t b_shape[1] = {n};
    py::array gw = new_array<T>(w_shape, 2), gb = new_array<T>(b_shape, 1);
    py::object gx_obj = py::none();
    MatrixRef<T> gx{}, gwv{static_cast<T*>(gw.mutable_data()), n, k, k, 1};
    if (needs_input_grad) {
        py::array gx_arr = new_array<T>(a.x.shape(), a.x.ndim());
        flatten_leading<T>(fn, gx_arr, &gx, nullptr, false);
        gx_obj = gx_arr;
    }
    T* db = static_cast<T*>(gb.mutable_data());
    {
        py::gil_scoped_release release;
        layers::linear_backward<T>(dy, in.x, in.w, saved, a.act.activation, static_cast<T>(a.act.negative_slope), gx,
                                   gwv, db);
    }
    return py::make_tuple(gx_obj, gw, gb);
}

py::tuple linear_backward(py::handle grad_y_obj, py::handle x, py::handle weight, py::handle saved_obj,
                          py::handle activation, py::handle negative_slope, py::handle needs_input_grad) {
    const char* fn = "linear_backward";
    LinearArgs a = check_linear(fn, x, weight, py::none(), activation, negative_slope);
    py::array grad_y = check_array(fn, "grad_y", grad_y_obj);
    check_same_dtype(fn, "x", a.x, "grad_y", grad_y);
    const auto nd = static_cast<py::ssize_t>(a.y_shape.size());
    if (!shape_equals(grad_y, a.y_shape.data(), nd))
        throw py::value_error(std::string(fn) + ": grad_y must have shape " + shape_str(a.y_shape.data(), nd) +
                              " (x.shape[:-1] + (out_features,)), got " + shape_str(grad_y));
    py::object saved;
    const Saved what = math::saved_for(a.act.activation);
    if (what != Saved::nothing) {  // identity: nothing is needed, anything is ignored
        if (saved_obj.is_none())
            throw py::value_error(std::string(fn) + ": activation " + repr_str(activation) + " needs saved (the " +
                                  (what == Saved::output ? "output Y" : "pre-activation Z") +
                                  " from the forward), got None");
        py::array s = check_array(fn, "saved", saved_obj);
        if (dtype_of(s) != a.dtype)
            throw py::type_error(std::string(fn) + ": saved must have dtype " + dtype_str(a.x) + ", got " +
                                 dtype_str(s));
        if (!shape_equals(s, a.y_shape.data(), nd))
            throw py::value_error(std::string(fn) + ": saved must have shape " + shape_str(a.y_shape.data(), nd) +
                                  ", got " + shape_str(s));
        saved = s;
    }
    const int truth = PyObject_IsTrue(needs_input_grad.ptr());
    if (truth < 0) throw py::error_already_set();
    return a.dtype == DType::f32 ? linear_backward_impl<float>(a, grad_y, saved, truth != 0)
                                 : linear_backward_impl<double>(a, grad_y, saved, truth != 0);
}

}  // namespace

void register_layers(py::module_& m) {
    m.def("linear", &linear, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("activation"),
          py::arg("negative_slope"), py::arg("out"), "act(x @ weight.T + bias) in one fused call.");
    m.def("linear_forward", &linear_forward, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("activation"),
          py::arg("negative_slope"), "Training forward: (y, saved).");
    m.def("linear_backward", &linear_backward, py::arg("grad_y"), py::arg("x"), py::arg("weight"), py::arg("saved"),
          py::arg("activation"), py::arg("negative_slope"), py::arg("needs_input_grad"),
          "(grad_x or None, grad_weight, grad_bias) of the fused layer.");
}

}  // namespace fusedprop::bindings
