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

#include <stdexcept>
#include <string>
#include <vector>

#include "array_args.h"
#include "bindings.h"
#include "math/activation.h"
#include "layers/activation_kernels.h"
#include "runtime/matrix_ref.h"

namespace py = pybind11;

namespace fusedprop::bindings {
namespace {

template <class T>
void run_forward(math::Activation act, double slope, const py::array& x, py::array& y) {
    auto f = fold({&x, &y});
    if (!f) {
        // Strides that do not fold: compute on contiguous copies.
        py::array xc = contiguous_copy(x);
        py::array yc = new_array(std::is_same_v<T, float> ? DType::f32 : DType::f64, x);
        run_forward<T>(act, slope, xc, yc);
        y[py::ellipsis()] = yc;
        return;
    }
    const auto xv = folded_view<T>(x, *f, 0);
    const auto yv = folded_mutable_view<T>(y, *f, 1);
    py::gil_scoped_release nogil;
    layers::activation_forward<T>(act, static_cast<T>(slope), xv, yv);
}

template <class T>
void run_backward(math::Activation act, double slope, const py::array& gy, const py::array* saved, py::array& gz) {
    std::vector<const py::array*> ops{&gy, &gz};
    if (saved) ops.push_back(saved);
    auto f = fold(ops);
    if (!f) {
        py::array gyc = contiguous_copy(gy);
        py::array sc = saved ? contiguous_copy(*saved) : py::array();
        py::array gzc = new_array(std::is_same_v<T, float> ? DType::f32 : DType::f64, gy);
        run_backward<T>(act, slope, gyc, saved ? &sc : nullptr, gzc);
        gz[py::ellipsis()] = gzc;
        return;
    }
    const auto gyv = folded_view<T>(gy, *f, 0);
    const auto gzv = folded_mutable_view<T>(gz, *f, 1);
    const auto sv = saved ? folded_view<T>(*saved, *f, 2) : MatrixRef<const T>{};
    py::gil_scoped_release nogil;
    layers::activation_backward<T>(act, static_cast<T>(slope), gyv, sv, gzv, nullptr);
}

py::object activation(py::handle x_obj, py::handle name, py::handle negative_slope, py::handle out_obj) {
    constexpr const char* fn = "activation";
    DType dt;
    py::array x = check_array(fn, "x", x_obj, &dt);
    const ActivationArg arg = check_activation(fn, name, negative_slope);
    const auto act = arg.activation;
    const double slope = arg.negative_slope;
    py::array y = out_obj.is_none() ? new_array(dt, x)
                                     : check_out(fn, out_obj, x.shape(), x.ndim(), x, {{"x", x}});
    if (x.size() > 0) {
        if (dt == DType::f32) run_forward<float>(act, slope, x, y);
        else run_forward<double>(act, slope, x, y);
    }
    return std::move(y);
}

// The saved tensor an activation's gradient reads (_validation.check_saved):
// required unless identity, same dtype and shape as grad_y. An empty array
// for identity.
py::array checked_saved(const char* fn, py::handle name, math::Activation act, py::handle saved_obj, DType dt,
                        const py::array& gy) {
    if (act == math::Activation::identity) return py::array();
    if (saved_obj.is_none()) {
        const char* what = math::saved_for(act) == math::Saved::output ? "output Y" : "pre-activation Z";
        throw py::value_error(std::string(fn) + ": activation " + std::string(py::repr(name)) +
                              " needs saved (the " + what + " from the forward), got None");
    }
    DType sdt;
    py::array saved = check_array(fn, "saved", saved_obj, &sdt);
    if (sdt != dt)
        throw py::type_error(std::string(fn) + ": saved must have dtype " + dtype_str(dt) + ", got " +
                             dtype_str(sdt));
    if (!shape_equals(saved, gy.shape(), gy.ndim()))
        throw py::value_error(std::string(fn) + ": saved must have shape " + shape_str(gy) + ", got " +
                              shape_str(saved));
    return saved;
}

py::object activation_grad(py::handle gy_obj, py::handle saved_obj, py::handle name, py::handle negative_slope) {
    constexpr const char* fn = "activation_grad";
    DType dt;
    py::array gy = check_array(fn, "grad_y", gy_obj, &dt);
    const ActivationArg arg = check_activation(fn, name, negative_slope);
    const auto act = arg.activation;
    const double slope = arg.negative_slope;
    const bool needs_saved = act != math::Activation::identity;
    py::array saved = checked_saved(fn, name, act, saved_obj, dt, gy);
    py::array gz = new_array(dt, gy);
    if (gy.size() > 0) {
        const py::array* sp = needs_saved ? &saved : nullptr;
        if (dt == DType::f32) run_backward<float>(act, slope, gy, sp, gz);
        else run_backward<double>(act, slope, gy, sp, gz);
    }
    return std::move(gz);
}

// Private (tests of the column-sum determinism): grad_y and saved 2-D
// (rows, cols); returns (grad_z, column sums of grad_z over rows).
py::tuple activation_grad_sums(py::handle gy_obj, py::handle saved_obj, py::handle name, py::handle negative_slope) {
    constexpr const char* fn = "_activation_grad_sums";
    DType dt;
    py::array gy = check_array(fn, "grad_y", gy_obj, &dt);
    const ActivationArg arg = check_activation(fn, name, negative_slope);
    const auto act = arg.activation;
    const double slope = arg.negative_slope;
    const bool needs_saved = act != math::Activation::identity;
    if (gy.ndim() != 2) throw py::value_error(std::string(fn) + ": grad_y must be 2-D, got shape " + shape_str(gy));
    gy = contiguous_copy(gy);
    py::array saved = checked_saved(fn, name, act, saved_obj, dt, gy);
    if (needs_saved) saved = contiguous_copy(saved);
    py::array gz = new_array(dt, gy);
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
    return dt == DType::f32 ? run(float{}) : run(double{});
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
