// Argument checks of the normalisation and dropout bindings: float arrays of
// one dtype, turned C-contiguous (copied only when they are not), with the
// error policy's messages (TypeError: type or dtype; ValueError: shape).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "array_args.h"

namespace fusedprop::bindings {

template <class T>
using CArray = py::array_t<T, py::array::c_style>;

// obj as a C-contiguous array of x's dtype with `ndim` dimensions.
template <class T>
CArray<T> c_array(const char* fn, const char* name, py::handle obj, const py::array& like, const char* like_name,
                  py::ssize_t ndim) {
    py::array a = check_array(fn, name, obj);
    check_same_dtype(fn, like_name, like, name, a);
    if (a.ndim() != ndim)
        throw py::value_error(std::string(fn) + ": " + name + " must be " + std::to_string(ndim) + "-D, got shape " +
                              shape_str(a));
    return CArray<T>::ensure(a);
}

// A 1-D parameter of n elements (None allowed when `optional`: nullptr).
template <class T>
const T* vector_arg(const char* fn, const char* name, py::handle obj, const py::array& like, py::ssize_t n,
                    py::object* keep) {
    if (obj.is_none()) return nullptr;
    CArray<T> a = c_array<T>(fn, name, obj, like, "x", 1);
    if (a.shape(0) != n)
        throw py::value_error(std::string(fn) + ": " + name + " must have shape (" + std::to_string(n) + ",), got " +
                              shape_str(a));
    *keep = a;
    return a.data();
}

// A finite, non-negative float (eps).
inline double eps_arg(const char* fn, py::handle obj) {
    bool number = !PyBool_Check(obj.ptr()) && (PyFloat_Check(obj.ptr()) || PyLong_Check(obj.ptr()));
    if (!number && !PyBool_Check(obj.ptr())) {  // NumPy scalars (np.float32 is no Python float)
        py::object np = py::module_::import("numpy");
        number = py::isinstance(obj, np.attr("floating")) || py::isinstance(obj, np.attr("integer"));
    }
    if (!number) throw py::type_error(std::string(fn) + ": eps must be a float, got " + type_name(obj));
    const double eps = obj.cast<double>();
    if (!(eps >= 0) || !std::isfinite(eps))
        throw py::value_error(std::string(fn) + ": eps must be a finite number >= 0, got " + repr_str(obj));
    return eps;
}

}  // namespace fusedprop::bindings
