// BatchNorm1d and LayerNorm kernels on (rows x features) matrices; the nn
// layer reshapes (N, C, L) and (..., *normalized_shape) inputs to that.
// Positional signatures follow the backend contract (numpy_backend.py).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings.h"
#include "layers/batch_norm.h"
#include "layers/layer_norm.h"
#include "norm_args.h"

namespace py = pybind11;

namespace fusedprop::bindings {
namespace {

template <class T>
CArray<T> new_vector(index_t n) {
    return CArray<T>(std::vector<py::ssize_t>{static_cast<py::ssize_t>(n)});
}

template <class T>
CArray<T> new_matrix(index_t m, index_t n) {
    return CArray<T>(std::vector<py::ssize_t>{static_cast<py::ssize_t>(m), static_cast<py::ssize_t>(n)});
}

py::array matrix_x(const char* fn, py::handle x_obj, DType* dtype) {
    py::array x = check_array(fn, "x", x_obj, dtype);
    if (x.ndim() != 2) throw py::value_error(std::string(fn) + ": x must be 2-D (rows, features), got shape " + shape_str(x));
    return x;
}

void same_shape(const char* fn, const char* name, const py::array& a, const py::array& x) {
    if (a.ndim() != x.ndim() || a.shape(0) != x.shape(0) || a.shape(1) != x.shape(1))
        throw py::value_error(std::string(fn) + ": " + name + " must have x's shape " + shape_str(x) + ", got " +
                              shape_str(a));
}

// ------------------------------------------------------------- batch norm

template <class T>
py::tuple bn_forward(const py::array& x_in, py::handle weight, py::handle bias, double eps) {
    const char* fn = "batch_norm_forward";
    CArray<T> x = CArray<T>::ensure(x_in);
    const index_t m = x.shape(0), n = x.shape(1);
    py::object kw, kb;
    const T* w = vector_arg<T>(fn, "weight", weight, x_in, n, &kw);
    const T* b = vector_arg<T>(fn, "bias", bias, x_in, n, &kb);
    CArray<T> y = new_matrix<T>(m, n), mean = new_vector<T>(n), invstd = new_vector<T>(n), var = new_vector<T>(n);
    const T* xp = x.data();
    T *yp = y.mutable_data(), *mp = mean.mutable_data(), *ip = invstd.mutable_data(), *vp = var.mutable_data();
    {
        py::gil_scoped_release release;
        layers::batch_norm_forward_train<T>(xp, m, n, eps, w, b, yp, mp, ip, vp);
    }
    return py::make_tuple(y, mean, invstd, var);
}

py::tuple batch_norm_forward(py::handle x_obj, py::handle weight, py::handle bias, py::handle eps) {
    DType dt;
    py::array x = matrix_x("batch_norm_forward", x_obj, &dt);
    const double e = eps_arg("batch_norm_forward", eps);
    return dt == DType::f32 ? bn_forward<float>(x, weight, bias, e) : bn_forward<double>(x, weight, bias, e);
}

template <class T>
py::array bn_eval(const py::array& x_in, py::handle rm, py::handle rv, py::handle weight, py::handle bias, double eps) {
    const char* fn = "batch_norm_eval";
    CArray<T> x = CArray<T>::ensure(x_in);
    const index_t m = x.shape(0), n = x.shape(1);
    if (rm.is_none() || rv.is_none())
        throw py::type_error(std::string(fn) + ": running_mean and running_var must be arrays, got None");
    py::object k1, k2, k3, k4;
    const T* mean = vector_arg<T>(fn, "running_mean", rm, x_in, n, &k1);
    const T* var = vector_arg<T>(fn, "running_var", rv, x_in, n, &k2);
    const T* w = vector_arg<T>(fn, "weight", weight, x_in, n, &k3);
    const T* b = vector_arg<T>(fn, "bias", bias, x_in, n, &k4);
    CArray<T> y = new_matrix<T>(m, n);
    const T* xp = x.data();
    T* yp = y.mutable_data();
    {
        py::gil_scoped_release release;
        layers::batch_norm_forward_eval<T>(xp, m, n, eps, mean, var, w, b, yp);
    }
    return y;
}

py::array batch_norm_eval(py::handle x_obj, py::handle rm, py::handle rv, py::handle weight, py::handle bias,
                          py::handle eps) {
    DType dt;
    py::array x = matrix_x("batch_norm_eval", x_obj, &dt);
    const double e = eps_arg("batch_norm_eval", eps);
    return dt == DType::f32 ? bn_eval<float>(x, rm, rv, weight, bias, e) : bn_eval<double>(x, rm, rv, weight, bias, e);
}

// In place: the running buffers must be C-contiguous and writeable (they are the module's own arrays).
template <class T>
void bn_update(const py::array& rm_in, const py::array& rv_in, py::handle mean, py::handle var, double momentum) {
    const char* fn = "batch_norm_update";
    for (const py::array* a : {&rm_in, &rv_in})
        if (!(a->flags() & py::array::c_style) || !a->writeable() || a->ndim() != 1)
            throw py::value_error(std::string(fn) + ": the running statistics must be writeable, C-contiguous 1-D arrays");
    const index_t n = rm_in.shape(0);
    if (rv_in.shape(0) != n) throw py::value_error(std::string(fn) + ": running_var must match running_mean's shape");
    py::object k1, k2;
    const T* mp = vector_arg<T>(fn, "mean", mean, rm_in, n, &k1);
    const T* vp = vector_arg<T>(fn, "var", var, rm_in, n, &k2);
    if (mp == nullptr || vp == nullptr) throw py::type_error(std::string(fn) + ": mean and var must be arrays, got None");
    layers::batch_norm_update_running<T>(static_cast<T*>(const_cast<void*>(rm_in.data())),
                                         static_cast<T*>(const_cast<void*>(rv_in.data())), mp, vp, n, momentum);
}

void batch_norm_update(py::handle rm, py::handle rv, py::handle mean, py::handle var, double momentum) {
    DType dt;
    py::array a = check_array("batch_norm_update", "running_mean", rm, &dt);
    py::array b = check_array("batch_norm_update", "running_var", rv);
    check_same_dtype("batch_norm_update", "running_mean", a, "running_var", b);
    if (dt == DType::f32) bn_update<float>(a, b, mean, var, momentum);
    else bn_update<double>(a, b, mean, var, momentum);
}

template <class T>
py::tuple bn_backward(const py::array& gy_in, const py::array& x_in, py::handle mean, py::handle invstd,
                      py::handle weight, bool needs_input_grad) {
    const char* fn = "batch_norm_backward";
    CArray<T> gy = CArray<T>::ensure(gy_in), x = CArray<T>::ensure(x_in);
    const index_t m = x.shape(0), n = x.shape(1);
    py::object k1, k2, k3;
    const T* mp = vector_arg<T>(fn, "mean", mean, x_in, n, &k1);
    const T* ip = vector_arg<T>(fn, "invstd", invstd, x_in, n, &k2);
    if (mp == nullptr || ip == nullptr) throw py::type_error(std::string(fn) + ": mean and invstd must be arrays, got None");
    const T* w = vector_arg<T>(fn, "weight", weight, x_in, n, &k3);
    py::object gx = py::none(), gw = py::none(), gb = py::none();
    T *gxp = nullptr, *gwp = nullptr, *gbp = nullptr;
    if (needs_input_grad) {
        auto a = new_matrix<T>(m, n);
        gxp = a.mutable_data();
        gx = a;
    }
    if (w != nullptr) {
        auto a = new_vector<T>(n), b = new_vector<T>(n);
        gwp = a.mutable_data();
        gbp = b.mutable_data();
        gw = a;
        gb = b;
    }
    const T *gyp = gy.data(), *xp = x.data();
    {
        py::gil_scoped_release release;
        layers::batch_norm_backward<T>(gyp, xp, m, n, mp, ip, w, gxp, gwp, gbp);
    }
    return py::make_tuple(gx, gw, gb);
}

py::tuple batch_norm_backward(py::handle gy_obj, py::handle x_obj, py::handle mean, py::handle invstd,
                              py::handle weight, bool needs_input_grad) {
    const char* fn = "batch_norm_backward";
    DType dt;
    py::array x = matrix_x(fn, x_obj, &dt);
    py::array gy = check_array(fn, "grad_y", gy_obj);
    check_same_dtype(fn, "x", x, "grad_y", gy);
    same_shape(fn, "grad_y", gy, x);
    return dt == DType::f32 ? bn_backward<float>(gy, x, mean, invstd, weight, needs_input_grad)
                            : bn_backward<double>(gy, x, mean, invstd, weight, needs_input_grad);
}

// ------------------------------------------------------------- layer norm

template <class T>
py::tuple ln_forward(const py::array& x_in, py::handle weight, py::handle bias, double eps) {
    const char* fn = "layer_norm_forward";
    CArray<T> x = CArray<T>::ensure(x_in);
    const index_t m = x.shape(0), d = x.shape(1);
    py::object kw, kb;
    const T* w = vector_arg<T>(fn, "weight", weight, x_in, d, &kw);
    const T* b = vector_arg<T>(fn, "bias", bias, x_in, d, &kb);
    if (b != nullptr && w == nullptr) throw py::value_error(std::string(fn) + ": a bias needs a weight");
    CArray<T> y = new_matrix<T>(m, d), mean = new_vector<T>(m), rstd = new_vector<T>(m);
    const T* xp = x.data();
    T *yp = y.mutable_data(), *mp = mean.mutable_data(), *rp = rstd.mutable_data();
    {
        py::gil_scoped_release release;
        layers::layer_norm_forward<T>(xp, m, d, eps, w, b, yp, mp, rp);
    }
    return py::make_tuple(y, mean, rstd);
}

py::tuple layer_norm_forward(py::handle x_obj, py::handle weight, py::handle bias, py::handle eps) {
    DType dt;
    py::array x = matrix_x("layer_norm_forward", x_obj, &dt);
    const double e = eps_arg("layer_norm_forward", eps);
    return dt == DType::f32 ? ln_forward<float>(x, weight, bias, e) : ln_forward<double>(x, weight, bias, e);
}

template <class T>
py::tuple ln_backward(const py::array& gy_in, const py::array& x_in, py::handle mean, py::handle rstd,
                      py::handle weight, bool has_bias, bool needs_input_grad) {
    const char* fn = "layer_norm_backward";
    CArray<T> gy = CArray<T>::ensure(gy_in), x = CArray<T>::ensure(x_in);
    const index_t m = x.shape(0), d = x.shape(1);
    py::object k1, k2, k3;
    CArray<T> mc = c_array<T>(fn, "mean", mean, x_in, "x", 1), rc = c_array<T>(fn, "rstd", rstd, x_in, "x", 1);
    if (mc.shape(0) != m || rc.shape(0) != m)
        throw py::value_error(std::string(fn) + ": mean and rstd must have one value per row (" + std::to_string(m) + ")");
    const T* w = vector_arg<T>(fn, "weight", weight, x_in, d, &k3);
    py::object gx = py::none(), gw = py::none(), gb = py::none();
    T *gxp = nullptr, *gwp = nullptr, *gbp = nullptr;
    if (needs_input_grad) {
        auto a = new_matrix<T>(m, d);
        gxp = a.mutable_data();
        gx = a;
    }
    if (w != nullptr) {
        auto a = new_vector<T>(d);
        gwp = a.mutable_data();
        gw = a;
        if (has_bias) {
            auto b = new_vector<T>(d);
            gbp = b.mutable_data();
            gb = b;
        }
    }
    const T *gyp = gy.data(), *xp = x.data(), *mp = mc.data(), *rp = rc.data();
    {
        py::gil_scoped_release release;
        layers::layer_norm_backward<T>(gyp, xp, m, d, mp, rp, w, gxp, gwp, gbp);
    }
    return py::make_tuple(gx, gw, gb);
}

py::tuple layer_norm_backward(py::handle gy_obj, py::handle x_obj, py::handle mean, py::handle rstd, py::handle weight,
                              bool has_bias, bool needs_input_grad) {
    const char* fn = "layer_norm_backward";
    DType dt;
    py::array x = matrix_x(fn, x_obj, &dt);
    py::array gy = check_array(fn, "grad_y", gy_obj);
    check_same_dtype(fn, "x", x, "grad_y", gy);
    same_shape(fn, "grad_y", gy, x);
    return dt == DType::f32 ? ln_backward<float>(gy, x, mean, rstd, weight, has_bias, needs_input_grad)
                            : ln_backward<double>(gy, x, mean, rstd, weight, has_bias, needs_input_grad);
}

}  // namespace

void register_norm(py::module_& m) {
    m.def("batch_norm_forward", &batch_norm_forward, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"),
          "Training forward of (rows, features): (y, mean, invstd, unbiased var)");
    m.def("batch_norm_eval", &batch_norm_eval, py::arg("x"), py::arg("running_mean"), py::arg("running_var"),
          py::arg("weight"), py::arg("bias"), py::arg("eps"));
    m.def("batch_norm_update", &batch_norm_update, py::arg("running_mean"), py::arg("running_var"), py::arg("mean"),
          py::arg("var"), py::arg("momentum"), "running = (1 - momentum) running + momentum batch, in place");
    m.def("batch_norm_backward", &batch_norm_backward, py::arg("grad_y"), py::arg("x"), py::arg("mean"),
          py::arg("invstd"), py::arg("weight"), py::arg("needs_input_grad") = true);
    m.def("layer_norm_forward", &layer_norm_forward, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"),
          "(y, mean, rstd) of (rows, d)");
    m.def("layer_norm_backward", &layer_norm_backward, py::arg("grad_y"), py::arg("x"), py::arg("mean"),
          py::arg("rstd"), py::arg("weight"), py::arg("has_bias"), py::arg("needs_input_grad") = true);
}

}  // namespace fusedprop::bindings
