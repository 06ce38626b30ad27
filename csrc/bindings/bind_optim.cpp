// Fused optimizer updates: sgd_step, adam_step (same signatures as the NumPy
// reference, python/fusedprop/backends/optim_numpy.py).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bindings.h"
#include "optim/adam.h"
#include "optim/sgd.h"
#include "optim/sum_of_squares.h"
#include "optim/update_kernels.h"

namespace py = pybind11;

namespace fusedprop::bindings {

namespace {

enum class DType { f32, f64 };

std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        s += std::to_string(a.shape(i));
        if (a.ndim() == 1 || i + 1 < a.ndim()) s += a.ndim() == 1 ? "," : ", ";
    }
    return s + ")";
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

py::array as_array(const char* fn, const char* name, const py::object& obj) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(std::string(fn) + ": " + name + " must be a numpy.ndarray, got " +
                             py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    return py::reinterpret_borrow<py::array>(obj);
}

// Checks param; returns its dtype.
DType check_param(const char* fn, const py::array& p) {
    DType dt;
    if (p.dtype().is(py::dtype::of<float>())) dt = DType::f32;
    else if (p.dtype().is(py::dtype::of<double>())) dt = DType::f64;
    else if (py::dtype::of<float>().equal(p.dtype())) dt = DType::f32;
    else if (py::dtype::of<double>().equal(p.dtype())) dt = DType::f64;
    else throw py::type_error(std::string(fn) + ": param must have dtype float32 or float64, got " + dtype_str(p));
    if (!(p.flags() & py::array::c_style) || !p.writeable())
        throw py::value_error(std::string(fn) + ": param must be a writeable C-contiguous array");
    return dt;
}

void check_like(const char* fn, const char* name, const py::array& a, const py::array& p, bool writeable) {
    if (!a.dtype().equal(p.dtype()))
        throw py::type_error(std::string(fn) + ": " + name + " has dtype " + dtype_str(a) + " but param has dtype " +
                             dtype_str(p));
    bool same = a.ndim() == p.ndim();
    for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == p.shape(i);
    if (!same)
        throw py::value_error(std::string(fn) + ": " + name + " has shape " + shape_str(a) +
                              " but param has shape " + shape_str(p));
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(std::string(fn) + ": " + name + " must be C-contiguous");
    if (writeable && !a.writeable()) throw py::value_error(std::string(fn) + ": " + name + " is read-only");
}

template <class T>
T* ptr(const py::array& a) { return static_cast<T*>(const_cast<void*>(a.data())); }

template <class T>
T* opt_ptr(const py::array* a) { return a ? ptr<T>(*a) : nullptr; }

}  // namespace

void register_optim(py::module_& m) {
    m.def(
        "sgd_step",
        [](const py::object& param_obj, const py::object& grad_obj, const py::object& buf_obj, double lr,
           double momentum, double dampening, double weight_decay, bool nesterov, bool first_step) {
            const char* fn = "sgd_step";
            py::array param = as_array(fn, "param", param_obj);
            const DType dt = check_param(fn, param);
            py::array grad = as_array(fn, "grad", grad_obj);
            check_like(fn, "grad", grad, param, false);
            py::array buf;
            const bool has_buf = !buf_obj.is_none();
            if (has_buf) {
                buf = as_array(fn, "momentum_buffer", buf_obj);
                check_like(fn, "momentum_buffer", buf, param, true);
            } else if (momentum != 0.0) {
                throw py::value_error("sgd_step: momentum_buffer is required when momentum != 0");
            }
            optim::SgdOptions o{lr, momentum, dampening, weight_decay, nesterov, first_step};
            const auto n = static_cast<std::size_t>(param.size());
            const py::array* b = has_buf ? &buf : nullptr;
            py::gil_scoped_release release;
            if (dt == DType::f32) optim::sgd_step<float>(ptr<float>(param), ptr<float>(grad), opt_ptr<float>(b), n, o);
            else optim::sgd_step<double>(ptr<double>(param), ptr<double>(grad), opt_ptr<double>(b), n, o);
        },
        py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"), py::arg("lr"), py::arg("momentum"),
        py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("first_step"),
        "Fused in-place SGD update of one parameter (PyTorch's rule; see csrc/optim/sgd.h).");

    m.def(
        "adam_step",
        [](const py::object& param_obj, const py::object& grad_obj, const py::object& m_obj, const py::object& v_obj,
           const py::object& vmax_obj, double step, double lr, double beta1, double beta2, double eps,
           double weight_decay, bool decoupled) {
            const char* fn = "adam_step";
            py::array param = as_array(fn, "param", param_obj);
            const DType dt = check_param(fn, param);
            py::array grad = as_array(fn, "grad", grad_obj);
            check_like(fn, "grad", grad, param, false);
            py::array ea = as_array(fn, "exp_avg", m_obj);
            check_like(fn, "exp_avg", ea, param, true);
            py::array eas = as_array(fn, "exp_avg_sq", v_obj);
            check_like(fn, "exp_avg_sq", eas, param, true);
            py::array vmax;
            const bool ams = !vmax_obj.is_none();
            if (ams) {
                vmax = as_array(fn, "max_exp_avg_sq", vmax_obj);
                check_like(fn, "max_exp_avg_sq", vmax, param, true);
            }
            optim::AdamOptions o{step, lr, beta1, beta2, eps, weight_decay, decoupled};
            const auto n = static_cast<std::size_t>(param.size());
            const py::array* vm = ams ? &vmax : nullptr;
            py::gil_scoped_release release;
            if (dt == DType::f32)
                optim::adam_step<float>(ptr<float>(param), ptr<float>(grad), ptr<float>(ea), ptr<float>(eas),
                                        opt_ptr<float>(vm), n, o);
            else
                optim::adam_step<double>(ptr<double>(param), ptr<double>(grad), ptr<double>(ea), ptr<double>(eas),
                                         opt_ptr<double>(vm), n, o);
        },
        py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"),
        py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("decoupled"),
        "Fused in-place Adam/AdamW (AMSGrad when max_exp_avg_sq is given) update of one parameter "
        "(PyTorch's rule; see csrc/optim/adam.h).");
    m.def(
        "_set_optim_isa",
        [](const std::string& name) {
            try {
                optim::set_optim_isa(name);
            } catch (const std::invalid_argument& e) {
                throw py::value_error(e.what());
            }
        },
        py::arg("name"), "Private (tests): 'auto', 'avx512', 'avx2' or 'reference' for the optimizer updates.");
    m.def("_optim_isa", &optim::optim_isa, "Private: the ISA the optimizer updates use now.");
    m.def(
        "_sum_of_squares",
        [](const py::object& a_obj) {
            py::array a = as_array("_sum_of_squares", "a", a_obj);
            const DType dt = check_param("_sum_of_squares", a);
            const auto n = static_cast<std::size_t>(a.size());
            py::gil_scoped_release release;
            return dt == DType::f32 ? optim::sum_of_squares<float>(ptr<float>(a), n)
                                    : optim::sum_of_squares<double>(ptr<double>(a), n);
        },
        py::arg("a"), "Private (tests): the sum of squares of a contiguous float array, in double.");
}

}  // namespace fusedprop::bindings
