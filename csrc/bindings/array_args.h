// Array-argument checks and conversions shared by every binding: NumPy array
// in, MatrixRef<T> (element strides) out, with the messages of the Python
// reference (python/fusedprop/backends/_validation.py), word for word:
// TypeError for a wrong type or dtype, ValueError for a wrong shape, ndim or
// value; each message starts with the function name and names the argument,
// what was expected and what came.
//
// Everything here runs with the GIL held. Note: a default-constructed
// py::array is an empty *array* (an allocation), not a null handle: hold
// optional arrays and keep-alive copies in py::object. The usual flow of a binding:
//   1. check_array / check_same_dtype / shape checks  (argument order as in Python)
//   2. check_activation, check_out
//   3. as_matrix / flatten_leading  -> MatrixRef<T>   (zero-copy where possible)
//   4. allocate outputs (new_array<T>), release the GIL, run the kernel.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "math/activation.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::bindings {

namespace py = pybind11;

enum class DType { f32, f64 };

// ----------------------------------------------------------------- messages

inline std::string type_name(py::handle obj) {
    return py::str(py::handle(reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr()))).attr("__name__")).cast<std::string>();
}

// Python's repr of a shape tuple: "()", "(3,)", "(3, 4)".
inline std::string shape_str(const py::ssize_t* shape, py::ssize_t ndim) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < ndim; ++i) {
        if (i > 0) s += ", ";
        s += std::to_string(shape[i]);
    }
    if (ndim == 1) s += ",";
    return s + ")";
}
inline std::string shape_str(const py::array& a) { return shape_str(a.shape(), a.ndim()); }

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }
inline const char* dtype_str(DType d) { return d == DType::f32 ? "float32" : "float64"; }

inline std::string repr_str(py::handle obj) { return py::repr(obj).cast<std::string>(); }
inline std::string str_str(py::handle obj) { return py::str(obj).cast<std::string>(); }

// ------------------------------------------------------------------- checks

inline bool native_byte_order(char bo) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return bo == '=' || bo == '|' || bo == '>';
#else
    return bo == '=' || bo == '|' || bo == '<';
#endif
}

// A float32 or float64 ndarray (subclasses included), else TypeError.
inline py::array check_array(const char* fn, const char* name, py::handle obj, DType* dtype = nullptr) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(std::string(fn) + ": " + name + " must be a numpy.ndarray, got " + type_name(obj));
    auto a = py::reinterpret_borrow<py::array>(obj);
    const py::dtype dt = a.dtype();
    const int num = dt.num();
    // NPY_FLOAT = 11, NPY_DOUBLE = 12
    if ((num != 11 && num != 12) || !native_byte_order(dt.byteorder()))
        throw py::type_error(std::string(fn) + ": " + name + " must have dtype float32 or float64, got " +
                             dtype_str(a));
    if (dtype) *dtype = num == 11 ? DType::f32 : DType::f64;
    return a;
}

// Is a's dtype T (float, double or a signed integer) in native byte order?
// Compared by value: an unpickled or memory-mapped array carries a dtype equal
// to NumPy's own but another object, which an identity test would refuse.
template <class T>
bool has_dtype(const py::array& a) {
    const py::dtype dt = a.dtype();
    const char kind = std::is_floating_point_v<T> ? 'f' : 'i';
    return dt.kind() == kind && dt.itemsize() == static_cast<py::ssize_t>(sizeof(T)) &&
           native_byte_order(dt.byteorder());
}

inline DType dtype_of(const py::array& a) { return a.dtype().num() == 11 ? DType::f32 : DType::f64; }

inline void check_same_dtype(const char* fn, const char* ref_name, const py::array& ref, const char* name,
                             const py::array& a) {
    if (dtype_of(a) != dtype_of(ref))
        throw py::type_error(std::string(fn) + ": " + name + " has dtype " + dtype_str(a) + " but " + ref_name +
                             " has dtype " + dtype_str(ref) + "; convert one with .astype()");
}

inline bool shape_equals(const py::array& a, const py::ssize_t* shape, py::ssize_t ndim) {
    if (a.ndim() != ndim) return false;
    for (py::ssize_t i = 0; i < ndim; ++i)
        if (a.shape(i) != shape[i]) return false;
    return true;
}

// May a and b share an element? Exact when the address ranges are disjoint
// (the common case, no Python call); else asks numpy.shares_memory with the
// reference's work bound, and says yes when that is too costly to decide.
inline bool overlaps(const py::array& a, const py::array& b) {
    if (a.size() == 0 || b.size() == 0) return false;
    auto bounds = [](const py::array& x, std::intptr_t* lo, std::intptr_t* hi) {
        std::intptr_t l = reinterpret_cast<std::intptr_t>(x.data()), h = l;
        for (py::ssize_t i = 0; i < x.ndim(); ++i) {
            const std::intptr_t extent = static_cast<std::intptr_t>(x.shape(i) - 1) * x.strides(i);
            (extent < 0 ? l : h) += extent;
        }
        *lo = l;
        *hi = h + x.itemsize();
    };
    std::intptr_t alo, ahi, blo, bhi;
    bounds(a, &alo, &ahi);
    bounds(b, &blo, &bhi);
    if (ahi <= blo || bhi <= alo) return false;
    try {
        py::object np = py::module_::import("numpy");
        return np.attr("shares_memory")(a, b, py::arg("max_work") = 10000).cast<bool>();
    } catch (py::error_already_set&) {
        return true;  // numpy's TooHardError
    }
}

// `out=`: an ndarray of this dtype and shape, writeable, not overlapping any
// of the inputs (None entries skipped).
inline py::array check_out(const char* fn, py::handle obj, const py::ssize_t* shape, py::ssize_t ndim,
                           const py::array& like, std::initializer_list<std::pair<const char*, py::handle>> inputs) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(std::string(fn) + ": out must be a numpy.ndarray, got " + type_name(obj));
    auto out = py::reinterpret_borrow<py::array>(obj);
    const py::dtype dt = out.dtype();
    if (!dt.equal(like.dtype()))
        throw py::type_error(std::string(fn) + ": out must have dtype " + dtype_str(like) + ", got " + dtype_str(out));
    if (!shape_equals(out, shape, ndim))
        throw py::value_error(std::string(fn) + ": out must have shape " + shape_str(shape, ndim) + ", got " +
                              shape_str(out));
    if (!out.writeable()) throw py::value_error(std::string(fn) + ": out is read-only");
    for (const auto& [name, input] : inputs) {
        if (input.is_none() || !py::isinstance<py::array>(input)) continue;
        if (overlaps(out, py::reinterpret_borrow<py::array>(input)))
            throw py::value_error(std::string(fn) + ": out overlaps input " + name + "; pass a separate array");
    }
    return out;
}

// activation: a str naming a known activation; negative_slope: a real number
// (not bool), finite and >= 0 for leaky_relu.
struct ActivationArg {
    math::Activation activation;
    double negative_slope;
};

inline ActivationArg check_activation(const char* fn, py::handle activation, py::handle negative_slope) {
    if (!PyUnicode_Check(activation.ptr()))
        throw py::type_error(std::string(fn) + ": activation must be a str, got " + type_name(activation));
    Py_ssize_t len = 0;
    const char* text = PyUnicode_AsUTF8AndSize(activation.ptr(), &len);
    if (text == nullptr) throw py::error_already_set();
    const auto parsed = math::parse_activation(std::string_view(text, static_cast<std::size_t>(len)));
    if (!parsed) {
        std::string expected;
        for (int i = 0; i < math::kNumActivations; ++i) {
            if (i > 0) expected += ", ";
            expected += math::activation_name(static_cast<math::Activation>(i));
        }
        throw py::value_error(std::string(fn) + ": unknown activation " + repr_str(activation) + "; expected one of " +
                              expected);
    }
    double slope;
    PyObject* s = negative_slope.ptr();
    if (PyFloat_Check(s)) {
        slope = PyFloat_AS_DOUBLE(s);
    } else if (PyLong_Check(s) && !PyBool_Check(s)) {
        slope = PyLong_AsDouble(s);
        if (slope == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    } else {
        static PyObject* np_floating = nullptr;
        static PyObject* np_integer = nullptr;
        if (np_floating == nullptr) {  // leaked on purpose: lives as long as the module
            py::object np = py::module_::import("numpy");
            np_floating = py::object(np.attr("floating")).release().ptr();
            np_integer = py::object(np.attr("integer")).release().ptr();
        }
        if (PyBool_Check(s) || (PyObject_IsInstance(s, np_floating) != 1 && PyObject_IsInstance(s, np_integer) != 1))
            throw py::type_error(std::string(fn) + ": negative_slope must be a float, got " + type_name(negative_slope));
        slope = PyFloat_AsDouble(s);
        if (slope == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    }
    if (*parsed == math::Activation::leaky_relu && !(std::isfinite(slope) && slope >= 0))
        throw py::value_error(std::string(fn) +
                              ": negative_slope must be a finite number >= 0 (the backward tells the sign "
                              "of the pre-activation from the output), got " +
                              str_str(negative_slope));
    return {*parsed, slope};
}

// --------------------------------------------------------------- conversion

// Element strides of `a` when its byte strides are whole elements and its
// data is aligned for T; false otherwise (the caller copies).
template <class T>
bool element_strides(const py::array& a, index_t* strides) {
    if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0) return false;
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        if (a.strides(i) % static_cast<py::ssize_t>(sizeof(T)) != 0) return false;
        strides[i] = a.strides(i) / static_cast<py::ssize_t>(sizeof(T));
    }
    return true;
}

// A C-contiguous, aligned copy (for layouts a MatrixRef cannot describe).
inline py::array contiguous_copy(const py::array& a) {
    return py::reinterpret_borrow<py::array>(a).attr("copy")().cast<py::array>();
}

// Product of dims [first, last) with an overflow check.
inline index_t checked_product(const char* fn, const py::ssize_t* shape, py::ssize_t first, py::ssize_t last) {
    index_t m = 1;
    for (py::ssize_t i = first; i < last; ++i)
        if (__builtin_mul_overflow(m, static_cast<index_t>(shape[i]), &m))
            throw py::value_error(std::string(fn) + ": array size overflows");
    return m;
}

// An (..., n) array seen as an (M, n) matrix, M the product of the leading
// dims (1 for a 1-D array). Zero-copy when the leading dims collapse into one
// stride; otherwise `keep` receives a contiguous copy the view points into.
// For outputs, pass allow_copy = false and check the return value.
template <class T>
bool flatten_leading(const char* fn, const py::array& a, MatrixRef<T>* view, py::object* keep, bool allow_copy = true) {
    const py::ssize_t nd = a.ndim();
    index_t strides[32] = {};
    if (nd > 32) throw py::value_error(std::string(fn) + ": too many dimensions");
    const index_t n = nd >= 1 ? a.shape(nd - 1) : 1;
    const index_t m = checked_product(fn, a.shape(), 0, nd - 1);
    bool ok = element_strides<T>(a, strides);
    index_t rs = 0;
    if (ok && m > 1) {
        // Innermost leading dim of size > 1 gives the row stride; each outer
        // one must continue it.
        index_t expect = 0;
        bool have = false;
        for (py::ssize_t d = nd - 2; d >= 0 && ok; --d) {
            if (a.shape(d) == 1) continue;
            if (!have) {
                rs = strides[d];
                expect = rs * a.shape(d);
                have = true;
            } else if (strides[d] != expect) {
                ok = false;
            } else {
                expect = strides[d] * a.shape(d);
            }
        }
    }
    if (ok) {
        const index_t cs = nd >= 1 ? strides[nd - 1] : 1;
        if (m <= 1) rs = n * (cs == 0 ? 1 : cs);
        *view = {static_cast<T*>(const_cast<void*>(a.data())), m, n, rs, cs};
        return true;
    }
    if (!allow_copy) return false;
    py::array copy = contiguous_copy(a);
    *keep = copy;
    *view = {static_cast<T*>(copy.mutable_data()), m, n, n, 1};
    return true;
}

// A 2-D array as a MatrixRef (copying only if its strides are not whole
// elements or it is misaligned; `keep` then owns the copy).
template <class T>
bool as_matrix(const py::array& a, MatrixRef<T>* view, py::object* keep, bool allow_copy = true) {
    index_t s[2];
    if (element_strides<T>(a, s)) {
        *view = {static_cast<T*>(const_cast<void*>(a.data())), a.shape(0), a.shape(1), s[0], s[1]};
        return true;
    }
    if (!allow_copy) return false;
    py::array copy = contiguous_copy(a);
    *keep = copy;
    *view = {static_cast<T*>(copy.mutable_data()), a.shape(0), a.shape(1), a.shape(1), 1};
    return true;
}

// A writeable view must not have two elements at one address (zero strides).
inline bool has_zero_stride(const py::array& a) {
    for (py::ssize_t i = 0; i < a.ndim(); ++i)
        if (a.shape(i) > 1 && a.strides(i) == 0) return true;
    return false;
}

// A new C-contiguous array of this shape.
template <class T>
py::array_t<T> new_array(const py::ssize_t* shape, py::ssize_t ndim) {
    return py::array_t<T>(std::vector<py::ssize_t>(shape, shape + ndim));
}
// A new C-contiguous array of dtype d with the shape of `like`.
inline py::array new_array(DType d, const py::array& like) {
    if (d == DType::f32) return new_array<float>(like.shape(), like.ndim());
    return new_array<double>(like.shape(), like.ndim());
}

// ------------------------------------------------------- N-D elementwise views

// Operands of one shape (any ndim, any strides) folded jointly to a 2-D view:
// rows x cols, and for each operand its row and column stride in elements.
struct Folded {
    index_t rows = 1, cols = 1;
    std::vector<index_t> row_stride, col_stride;
};

// Folds the common shape of `arrays` to at most 2 dimensions: drops size-1
// dimensions and merges neighbours whose strides nest, for every operand at
// once. nullopt when more than two groups remain, a stride is not a multiple
// of the item size, or an operand is misaligned (the caller copies then).
inline std::optional<Folded> fold(const std::vector<const py::array*>& arrays) {
    const py::array& first = *arrays[0];
    const auto n_ops = arrays.size();
    struct Group {
        index_t size;
        std::vector<index_t> stride;
    };
    std::vector<Group> groups;  // innermost first
    for (py::ssize_t d = first.ndim() - 1; d >= 0; --d) {
        const index_t size = first.shape(d);
        if (size == 1) continue;
        std::vector<index_t> st(n_ops);
        for (std::size_t k = 0; k < n_ops; ++k) {
            const auto s = arrays[k]->strides(d), item = arrays[k]->itemsize();
            if (s % item != 0) return std::nullopt;
            st[k] = s / item;
        }
        if (!groups.empty()) {
            Group& g = groups.back();
            bool nests = true;
            for (std::size_t k = 0; k < n_ops; ++k) nests = nests && st[k] == g.stride[k] * g.size;
            if (nests) {
                g.size *= size;
                continue;
            }
        }
        groups.push_back({size, std::move(st)});
    }
    if (groups.size() > 2) return std::nullopt;
    Folded f;
    f.row_stride.assign(n_ops, 0);
    f.col_stride.assign(n_ops, 1);
    if (!groups.empty()) {
        f.cols = groups[0].size;
        f.col_stride = groups[0].stride;
        for (std::size_t k = 0; k < n_ops; ++k) f.row_stride[k] = f.cols * f.col_stride[k];
    }
    if (groups.size() == 2) {
        f.rows = groups[1].size;
        f.row_stride = groups[1].stride;
    }
    for (std::size_t k = 0; k < n_ops; ++k)
        if (reinterpret_cast<std::uintptr_t>(arrays[k]->data()) % arrays[k]->itemsize() != 0) return std::nullopt;
    return f;
}

// Operand k of a fold as a MatrixRef.
template <class T>
MatrixRef<const T> folded_view(const py::array& a, const Folded& f, std::size_t k) {
    return {static_cast<const T*>(a.data()), f.rows, f.cols, f.row_stride[k], f.col_stride[k]};
}
template <class T>
MatrixRef<T> folded_mutable_view(py::array& a, const Folded& f, std::size_t k) {
    return {static_cast<T*>(a.mutable_data()), f.rows, f.cols, f.row_stride[k], f.col_stride[k]};
}

}  // namespace fusedprop::bindings
