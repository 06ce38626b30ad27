// Elementwise activations: _core.activation and _core.activation_grad, the
// cpp backend's F.activation / F.activation_grad.
//
//   activation(x, name, negative_slope=0.01, out=None) -> y
//   activation_grad(grad_y, saved, name, negative_slope=0.01) -> grad_z
//
// Checks and messages follow python/fusedprop/backends/_validation.py (the
// other backends'): TypeError for a type or dtype, ValueError for a shape, an
// unknown activation, a bad negative_slope, or an out= that is read-only or
// overlaps the input. Any ndim >= 0 and any strides: the operands are folded
// jointly to a 2-D strided view where their strides allow it, else copied.
// The GIL is released around the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "bindings.h"
#include "layers/activation.h"
#include "layers/activation_kernels.h"
#include "runtime/matrix_ref.h"

namespace py = pybind11;

namespace fusedprop::bindings {
namespace {

// =====================================================================
// Array-argument helpers (activation's own; to be merged with the shared
// csrc/bindings/array_args.h from the gemm branch).
// =====================================================================
namespace array_args {

enum class Dtype { f32, f64 };

std::string type_name(py::handle obj) { return py::str(py::type::handle_of(obj).attr("__name__")); }

// The object as an ndarray of float32 or float64, or TypeError in the
// _validation.check_array wording.
py::array as_float_array(const char* fn, const char* name, py::handle obj, Dtype* dtype) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(std::string(fn) + ": " + name + " must be a numpy.ndarray, got " + type_name(obj));
    auto arr = py::reinterpret_borrow<py::array>(obj);
    const py::dtype dt = arr.dtype();
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    const bool native = dt.byteorder() != '<';
#else
    const bool native = dt.byteorder() != '>';
#endif
    const int num = dt.num();
    if (native && num == py::detail::npy_api::NPY_FLOAT_) {
        *dtype = Dtype::f32;
    } else if (native && num == py::detail::npy_api::NPY_DOUBLE_) {
        *dtype = Dtype::f64;
    } else {
        throw py::type_error(std::string(fn) + ": " + name + " must have dtype float32 or float64, got " +
                             std::string(py::str(arr.attr("dtype"))));
    }
    return arr;
}

const char* dtype_str(Dtype d) { return d == Dtype::f32 ? "float32" : "float64"; }

std::string shape_str(const py::array& a) { return py::str(a.attr("shape")); }

// Byte range [lo, hi) an array's elements can touch.
std::pair<std::intptr_t, std::intptr_t> extent(const py::array& a) {
    auto lo = reinterpret_cast<std::intptr_t>(a.data());
    auto hi = lo;
    for (py::ssize_t d = 0; d < a.ndim(); ++d) {
        const auto span = (a.shape(d) - 1) * a.strides(d);
        if (span > 0) hi += span; else lo += span;
    }
    return {lo, hi + a.itemsize()};
}

// _validation.overlaps: exact up to numpy's work bound, refusing when unsure.
bool overlaps(const py::array& a, const py::array& b) {
    if (a.size() == 0 || b.size() == 0) return false;
    const auto ea = extent(a), eb = extent(b);
    if (ea.second <= eb.first || eb.second <= ea.first) return false;
    try {
        return py::module_::import("numpy").attr("shares_memory")(a, b, py::arg("max_work") = 10000).cast<bool>();
    } catch (py::error_already_set&) {
        return true;  // TooHardError: too costly to decide, so refuse
    }
}

// A jointly folded 2-D view of operands of one shape: rows x cols, and for
// each operand its row and column stride in elements.
struct Folded {
    index_t rows = 1, cols = 1;
    std::vector<index_t> row_stride, col_stride;
};

// Folds the common shape of `arrays` to at most 2 dimensions: drops size-1
// dimensions and merges neighbours whose strides nest, for every operand at
// once. nullopt when more than two groups remain or a stride is not a
// multiple of the item size (the caller copies then).
std::optional<Folded> fold(const std::vector<const py::array*>& arrays) {
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

template <class T>
MatrixRef<const T> view(const py::array& a, const Folded& f, std::size_t k) {
    return {static_cast<const T*>(a.data()), f.rows, f.cols, f.row_stride[k], f.col_stride[k]};
}
template <class T>
MatrixRef<T> mutable_view(py::array& a, const Folded& f, std::size_t k) {
    return {static_cast<T*>(a.mutable_data()), f.rows, f.cols, f.row_stride[k], f.col_stride[k]};
}

py::array new_array(Dtype d, const py::array& like) {
    std::vector<py::ssize_t> shape(like.shape(), like.shape() + like.ndim());
    if (d == Dtype::f32) return py::array_t<float>(shape);
    return py::array_t<double>(shape);
}

py::array contiguous_copy(const py::array& a) {
    return py::module_::import("numpy").attr("ascontiguousarray")(a).cast<py::array>();
}

}  // namespace array_args
// =====================================================================

using array_args::Dtype;

constexpr const char* kActivationList = "identity, relu, leaky_relu, sigmoid, tanh, gelu, gelu_tanh, silu";

// _validation.check_activation: the activation and its negative_slope.
layers::Activation check_activation(const char* fn, py::handle name, py::handle negative_slope, double* slope) {
    if (!PyUnicode_Check(name.ptr()))
        throw py::type_error(std::string(fn) + ": activation must be a str, got " + array_args::type_name(name));
    Py_ssize_t len = 0;
    const char* text = PyUnicode_AsUTF8AndSize(name.ptr(), &len);
    if (text == nullptr) throw py::error_already_set();
    const auto act = layers::parse_activation(std::string_view(text, static_cast<std::size_t>(len)));
    if (!act)
        throw py::value_error(std::string(fn) + ": unknown activation " + std::string(py::repr(name)) +
                              "; expected one of " + kActivationList);
    PyObject* s = negative_slope.ptr();
    bool numeric = PyFloat_Check(s) || (PyLong_Check(s) && !PyBool_Check(s));
    if (!numeric && !PyBool_Check(s)) {
        auto np = py::module_::import("numpy");
        numeric = py::isinstance(negative_slope, np.attr("floating")) || py::isinstance(negative_slope, np.attr("integer"));
    }
    if (!numeric)
        throw py::type_error(std::string(fn) + ": negative_slope must be a float, got " +
                             array_args::type_name(negative_slope));
    *slope = PyFloat_AsDouble(s);
    if (*slope == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    if (*act == layers::Activation::leaky_relu && !(std::isfinite(*slope) && *slope >= 0))
        throw py::value_error(std::string(fn) +
                              ": negative_slope must be a finite number >= 0 (the backward tells the sign of the "
                              "pre-activation from the output), got " +
                              std::string(py::str(negative_slope)));
    return *act;
}

template <class T>
void run_forward(layers::Activation act, double slope, const py::array& x, py::array& y) {
    auto f = array_args::fold({&x, &y});
    if (!f) {
        // Strides that do not fold: compute on contiguous copies.
        py::array xc = array_args::contiguous_copy(x);
        py::array yc = array_args::new_array(std::is_same_v<T, float> ? Dtype::f32 : Dtype::f64, x);
        run_forward<T>(act, slope, xc, yc);
        y[py::ellipsis()] = yc;
        return;
    }
    const auto xv = array_args::view<T>(x, *f, 0);
    const auto yv = array_args::mutable_view<T>(y, *f, 1);
    py::gil_scoped_release nogil;
    layers::activation_forward<T>(act, static_cast<T>(slope), xv, yv);
}

template <class T>
void run_backward(layers::Activation act, double slope, const py::array& gy, const py::array* saved, py::array& gz) {
    std::vector<const py::array*> ops{&gy, &gz};
    if (saved) ops.push_back(saved);
    auto f = array_args::fold(ops);
    if (!f) {
        py::array gyc = array_args::contiguous_copy(gy);
        py::array sc = saved ? array_args::contiguous_copy(*saved) : py::array();
        py::array gzc = array_args::new_array(std::is_same_v<T, float> ? Dtype::f32 : Dtype::f64, gy);
        run_backward<T>(act, slope, gyc, saved ? &sc : nullptr, gzc);
        gz[py::ellipsis()] = gzc;
        return;
    }
    const auto gyv = array_args::view<T>(gy, *f, 0);
    const auto gzv = array_args::mutable_view<T>(gz, *f, 1);
    const auto sv = saved ? array_args::view<T>(*saved, *f, 2) : MatrixRef<const T>{};
    py::gil_scoped_release nogil;
    layers::activation_backward<T>(act, static_cast<T>(slope), gyv, sv, gzv, nullptr);
}

py::object activation(py::handle x_obj, py::handle name, py::handle negative_slope, py::handle out_obj) {
    constexpr const char* fn = "activation";
    Dtype dt;
    py::array x = array_args::as_float_array(fn, "x", x_obj, &dt);
    double slope = 0;
    const auto act = check_activation(fn, name, negative_slope, &slope);
    py::array y;
    if (!out_obj.is_none()) {
        if (!py::isinstance<py::array>(out_obj))
            throw py::type_error(std::string(fn) + ": out must be a numpy.ndarray, got " + array_args::type_name(out_obj));
        y = py::reinterpret_borrow<py::array>(out_obj);
        Dtype odt;
        bool ok_dtype = true;
        try {
            array_args::as_float_array(fn, "out", out_obj, &odt);
        } catch (py::type_error&) {
            ok_dtype = false;
        }
        if (!ok_dtype || odt != dt)
            throw py::type_error(std::string(fn) + ": out must have dtype " + array_args::dtype_str(dt) + ", got " +
                                 std::string(py::str(y.attr("dtype"))));
        bool same_shape = y.ndim() == x.ndim();
        for (py::ssize_t d = 0; same_shape && d < x.ndim(); ++d) same_shape = y.shape(d) == x.shape(d);
        if (!same_shape)
            throw py::value_error(std::string(fn) + ": out must have shape " + array_args::shape_str(x) + ", got " +
                                  array_args::shape_str(y));
        if (!y.writeable()) throw py::value_error(std::string(fn) + ": out is read-only");
        if (array_args::overlaps(y, x))
            throw py::value_error(std::string(fn) + ": out overlaps input x; pass a separate array");
    } else {
        y = array_args::new_array(dt, x);
    }
    if (x.size() > 0) {
        if (dt == Dtype::f32) run_forward<float>(act, slope, x, y);
        else run_forward<double>(act, slope, x, y);
    }
    return std::move(y);
}

py::object activation_grad(py::handle gy_obj, py::handle saved_obj, py::handle name, py::handle negative_slope) {
    constexpr const char* fn = "activation_grad";
    Dtype dt;
    py::array gy = array_args::as_float_array(fn, "grad_y", gy_obj, &dt);
    double slope = 0;
    const auto act = check_activation(fn, name, negative_slope, &slope);
    py::array saved;
    const bool needs_saved = act != layers::Activation::identity;
    if (needs_saved) {  // _validation.check_saved
        if (saved_obj.is_none()) {
            const char* what = layers::saved_for(act) == layers::Saved::output ? "output Y" : "pre-activation Z";
            throw py::value_error(std::string(fn) + ": activation " + std::string(py::repr(name)) +
                                  " needs saved (the " + what + " from the forward), got None");
        }
        Dtype sdt;
        saved = array_args::as_float_array(fn, "saved", saved_obj, &sdt);
        if (sdt != dt)
            throw py::type_error(std::string(fn) + ": saved must have dtype " + array_args::dtype_str(dt) + ", got " +
                                 array_args::dtype_str(sdt));
        bool same_shape = saved.ndim() == gy.ndim();
        for (py::ssize_t d = 0; same_shape && d < gy.ndim(); ++d) same_shape = saved.shape(d) == gy.shape(d);
        if (!same_shape)
            throw py::value_error(std::string(fn) + ": saved must have shape " + array_args::shape_str(gy) +
                                  ", got " + array_args::shape_str(saved));
    }
    py::array gz = array_args::new_array(dt, gy);
    if (gy.size() > 0) {
        const py::array* sp = needs_saved ? &saved : nullptr;
        if (dt == Dtype::f32) run_backward<float>(act, slope, gy, sp, gz);
        else run_backward<double>(act, slope, gy, sp, gz);
    }
    return std::move(gz);
}

// Private (tests of the column-sum determinism): grad_y and saved 2-D
// (rows, cols); returns (grad_z, column sums of grad_z over rows).
py::tuple activation_grad_sums(py::handle gy_obj, py::handle saved_obj, py::handle name, py::handle negative_slope) {
    constexpr const char* fn = "_activation_grad_sums";
    Dtype dt;
    py::array gy = array_args::as_float_array(fn, "grad_y", gy_obj, &dt);
    double slope = 0;
    const auto act = check_activation(fn, name, negative_slope, &slope);
    const bool needs_saved = act != layers::Activation::identity;
    if (gy.ndim() != 2) throw py::value_error(std::string(fn) + ": grad_y must be 2-D, got shape " + array_args::shape_str(gy));
    gy = array_args::contiguous_copy(gy);
    py::array saved;
    if (needs_saved) {
        Dtype sdt;
        saved = array_args::contiguous_copy(array_args::as_float_array(fn, "saved", saved_obj, &sdt));
        if (sdt != dt || saved.ndim() != 2 || saved.shape(0) != gy.shape(0) || saved.shape(1) != gy.shape(1))
            throw py::value_error(std::string(fn) + ": saved must match grad_y in dtype and shape");
    }
    py::array gz = array_args::new_array(dt, gy);
    const index_t rows = gy.shape(0), cols = gy.shape(1);
    const auto run = [&](auto tag) {
        using T = decltype(tag);
        py::array_t<T> sums(std::vector<py::ssize_t>{static_cast<py::ssize_t>(cols)});
        MatrixRef<const T> g{static_cast<const T*>(gy.data()), rows, cols, cols, 1};
        MatrixRef<const T> sv{};
        if (needs_saved) sv = {static_cast<const T*>(saved.data()), rows, cols, cols, 1};
        MatrixRef<T> z{static_cast<T*>(gz.mutable_data()), rows, cols, cols, 1};
        T* out = sums.mutable_data();
        {
            py::gil_scoped_release nogil;
            layers::activation_backward<T>(act, static_cast<T>(slope), g, sv, z, out);
        }
        return py::tuple(py::make_tuple(gz, sums));
    };
    return dt == Dtype::f32 ? run(float{}) : run(double{});
}

}  // namespace

void register_activation(py::module_& m) {
    m.def("_activation_grad_sums", &activation_grad_sums, py::arg("grad_y"), py::arg("saved"), py::arg("name"),
          py::arg("negative_slope") = 0.01, "Private (tests): (grad_z, column sums of grad_z) for 2-D grad_y.");
    m.def("activation", &activation, py::arg("x"), py::arg("name"), py::arg("negative_slope") = 0.01,
          py::arg("out") = py::none(),
          "act(x) elementwise (float32/float64, any shape and strides); writes into out when given.");
    m.def("activation_grad", &activation_grad, py::arg("grad_y"), py::arg("saved"), py::arg("name"),
          py::arg("negative_slope") = 0.01,
          "grad_y * act'(.) from what the forward saved (Y for relu/leaky_relu/sigmoid/tanh, Z for "
          "gelu/gelu_tanh/silu, nothing for identity).");
    m.def(
        "_set_activation_isa",
        [](const std::string& name) {
            try {
                layers::set_activation_isa(name);
            } catch (const std::invalid_argument& e) {
                throw py::value_error(e.what());
            }
        },
        py::arg("name"), "Private (tests): 'auto', 'avx2' or 'reference' for the activation kernels.");
    m.def("_activation_isa", &layers::activation_isa, "Private: the ISA the activation kernels use now.");
}

}  // namespace fusedprop::bindings
