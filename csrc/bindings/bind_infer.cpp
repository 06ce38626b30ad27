// Inference: _core.PackedWeight (W^T packed once, gemm/packed_b.h) and
// _core.InferencePlan (a chain of fused layers in one call,
// train/inference_plan.h), driven by fusedprop.Predictor and fp.predict.
//
// The weights are checked on every call (cheap next to any layer), or once
// when bound to the plan (a Predictor's snapshot); then the whole chain runs
// with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "array_args.h"
#include "bindings.h"
#include "layer_shapes.h"
#include "packed_weight.h"
#include "gemm/packed_b.h"
#include "train/inference_plan.h"

namespace py = pybind11;

namespace fusedprop::bindings {
namespace {

// A C-contiguous T array of exactly `shape`, else a clear error.
template <class T>
const T* weight_array(const std::string& fn, py::handle obj, const std::string& what,
                      const std::vector<py::ssize_t>& shape) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(fn + ": " + what + " must be a numpy.ndarray, got " + type_name(obj));
    auto a = py::reinterpret_borrow<py::array>(obj);
    if (!has_dtype<T>(a))
        throw py::type_error(fn + ": " + what + " must have dtype " + str_str(py::dtype::of<T>()) + ", got " +
                             dtype_str(a));
    if (!shape_equals(a, shape.data(), static_cast<py::ssize_t>(shape.size())))
        throw py::value_error(fn + ": " + what + " has shape " + shape_str(a) + ", expected " +
                              shape_str(shape.data(), static_cast<py::ssize_t>(shape.size())));
    if (!(a.flags() & py::array::c_style)) throw py::value_error(fn + ": " + what + " must be C-contiguous");
    return static_cast<const T*>(a.data());
}

class InferencePlan {
public:
    InferencePlan(const std::string& fn, const std::string& dtype, const std::vector<py::tuple>& layers) : fn_(fn) {
        const std::vector<train::LayerShape> shapes = layer_shapes(fn_, layers);
        if (dtype == "float32") plan_ = std::make_unique<train::InferencePlan<float>>(shapes);
        else if (dtype == "float64") plan_ = std::make_unique<train::InferencePlan<double>>(shapes);
        else throw py::value_error(fn_ + ": dtype must be float32 or float64, got " + dtype);
    }

    // x: (..., in_features) of the plan's dtype, any strides; params: [W0, b0
    // or None, W1, ...], or None for the weights bound with bind(); packed:
    // None or one PackedWeight (or None) per layer. Returns a new
    // (..., out_features) array.
    py::array forward(py::handle x_obj, py::handle params, py::handle packed) const {
        return std::visit(
            [&](const auto& plan) {
                using T = typename std::decay_t<decltype(*plan)>::value_type;
                if (!params.is_none()) {
                    if (!py::isinstance<py::list>(params))
                        throw py::type_error(fn_ + ": params must be a list, got " + type_name(params));
                    return run(*plan, x_obj, weights<T>(*plan, py::reinterpret_borrow<py::list>(params), packed));
                }
                if (!bound_refs_) throw py::value_error(fn_ + ": no weights given and none bound");
                return run(*plan, x_obj, std::get<std::vector<train::InferenceWeights<T>>>(bound_));
            },
            plan_);
    }

    // Checks the weights once and keeps them (and references to them) for
    // forward(x) without params: a plan whose weights never change (a
    // Predictor's snapshot) then pays for the checks once, not per call.
    // Call before the plan is shared: not while forward() runs.
    void bind(const py::list& params, py::handle packed) {
        std::visit(
            [&](const auto& plan) {
                using T = typename std::decay_t<decltype(*plan)>::value_type;
                bound_ = weights<T>(*plan, params, packed);
            },
            plan_);
        bound_refs_ = py::make_tuple(params, packed);
    }

private:
    template <class T>
    std::vector<train::InferenceWeights<T>> weights(const train::InferencePlan<T>& plan, const py::list& params,
                                                    py::handle packed_obj) const {
        const auto& shapes = plan.layers();
        const DType dt = sizeof(T) == 4 ? DType::f32 : DType::f64;
        if (py::len(params) != 2 * shapes.size())
            throw py::value_error(fn_ + ": expected a weight and a bias slot per layer");
        const bool have_packed = !packed_obj.is_none();
        py::list packed;
        if (have_packed) {
            if (!py::isinstance<py::list>(packed_obj))
                throw py::type_error(fn_ + ": packed must be a list, got " + type_name(packed_obj));
            packed = py::reinterpret_borrow<py::list>(packed_obj);
            if (py::len(packed) != shapes.size()) throw py::value_error(fn_ + ": expected one packed slot per layer");
        }
        std::vector<train::InferenceWeights<T>> weights(shapes.size());
        for (std::size_t l = 0; l < shapes.size(); ++l) {
            const std::string name = "layer " + std::to_string(l);
            const py::ssize_t o = shapes[l].out_features, i = shapes[l].in_features;
            weights[l].weight = weight_array<T>(fn_, params[2 * l], name + " weight", {o, i});
            if (shapes[l].has_bias) weights[l].bias = weight_array<T>(fn_, params[2 * l + 1], name + " bias", {o});
            if (have_packed && !packed[l].is_none()) {
                const auto& pw = packed[l].cast<const PackedWeight&>();
                if (pw.dtype() != dt || pw.out_features() != o || pw.in_features() != i)
                    throw py::value_error(fn_ + ": the packed weight of " + name + " does not match its weight");
                weights[l].packed_wt = pw.get<T>();
            }
        }
        return weights;
    }

    template <class T>
    py::array run(const train::InferencePlan<T>& plan, py::handle x_obj,
                  const std::vector<train::InferenceWeights<T>>& weights) const {
        const auto& shapes = plan.layers();
        const char* fn = fn_.c_str();
        DType dt;
        py::array x = check_array(fn, "x", x_obj, &dt);
        if (dt != (sizeof(T) == 4 ? DType::f32 : DType::f64))
            throw py::type_error(fn_ + ": x has dtype " + dtype_str(x) + " but the model is " +
                                 (sizeof(T) == 4 ? "float32" : "float64") + "; convert it with .astype()");
        const index_t n_in = shapes.front().in_features, n_out = shapes.back().out_features;
        if (x.ndim() < 1 || x.shape(x.ndim() - 1) != n_in)
            throw py::value_error(fn_ + ": x must have shape (..., " + std::to_string(n_in) + "), got " +
                                  shape_str(x));
        MatrixRef<const T> xm;
        py::object keep;
        flatten_leading<const T>(fn, x, &xm, &keep);

        std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
        shape.back() = n_out;
        py::array_t<T> out(shape);
        MatrixRef<T> om{out.mutable_data(), xm.rows, n_out, n_out, 1};
        {
            py::gil_scoped_release release;
            plan.forward(xm, weights, om);
        }
        return std::move(out);
    }

    std::string fn_;
    std::variant<std::unique_ptr<train::InferencePlan<float>>, std::unique_ptr<train::InferencePlan<double>>> plan_;
    std::variant<std::vector<train::InferenceWeights<float>>, std::vector<train::InferenceWeights<double>>> bound_;
    py::object bound_refs_;  // the bound arrays, kept alive while the plan is
};

}  // namespace

void register_infer(py::module_& m) {
    py::class_<PackedWeight>(m, "PackedWeight",
                             "W^T packed once for the active GEMM kernels (private: use fusedprop.Predictor)")
        .def(py::init<py::handle>(), py::arg("weight"))
        .def_property_readonly("nbytes", &PackedWeight::nbytes)
        .def_property_readonly("shape", [](const PackedWeight& p) {
            return py::make_tuple(p.out_features(), p.in_features());
        });
    py::class_<InferencePlan>(m, "InferencePlan",
                              "A chain of fused layers run in one call (private: use fusedprop.Predictor)")
        .def(py::init<const std::string&, const std::string&, const std::vector<py::tuple>&>(), py::arg("fn"),
             py::arg("dtype"), py::arg("layers"))
        .def("forward", &InferencePlan::forward, py::arg("x"), py::arg("params") = py::none(),
             py::arg("packed") = py::none())
        .def("bind", &InferencePlan::bind, py::arg("params"), py::arg("packed") = py::none());
}

}  // namespace fusedprop::bindings
