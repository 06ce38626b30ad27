// The compiled step of a chain with norms and dropout: _core.SequencePlan,
// driven by fusedprop.train (TrainStep) and fusedprop.predictor.
//
// ops: one (kind, activation, negative_slope, has_weight, has_bias,
// in_features, out_features, eps, p, batch_stats_in_eval) tuple per op, kind
// one of "linear", "batch_norm", "layer_norm", "activation", "dropout".
// Per call: params / grads [weight, bias] per op (None where absent; norm
// parameters flattened to 1-D), updates as for TrainPlan, and extras per op:
// ("batch_norm", running_mean or None, running_var or None, momentum),
// ("dropout", seed, stream, step) or None. The eval forward may also take a
// PackedWeight per Linear (a Predictor's snapshot). Checked here, then the
// whole step runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "array_args.h"
#include "bindings.h"
#include "packed_weight.h"
#include "param_updates.h"
#include "step_args.h"
#include "train/sequence_plan.h"

namespace py = pybind11;

namespace fusedprop::bindings {
namespace {

using train::OpKind;
using train::OpShape;

std::vector<OpShape> op_shapes(const std::vector<py::tuple>& ops) {
    std::vector<OpShape> shapes;
    for (const auto& t : ops) {
        if (py::len(t) != 10) throw py::value_error("SequencePlan: each op is a 10-tuple");
        OpShape s;
        const auto kind = t[0].cast<std::string>();
        if (kind == "linear") s.kind = OpKind::linear;
        else if (kind == "batch_norm") s.kind = OpKind::batch_norm;
        else if (kind == "layer_norm") s.kind = OpKind::layer_norm;
        else if (kind == "activation") s.kind = OpKind::activation;
        else if (kind == "dropout") s.kind = OpKind::dropout;
        else throw py::value_error("SequencePlan: unknown op " + kind);
        const auto name = t[1].cast<std::string>();
        const auto act = math::parse_activation(name);
        if (!act) throw py::value_error("SequencePlan: unknown activation " + name);
        s.activation = *act;
        s.negative_slope = t[2].cast<double>();
        s.has_weight = t[3].cast<bool>();
        s.has_bias = t[4].cast<bool>();
        s.in_features = t[5].cast<index_t>();
        s.out_features = t[6].cast<index_t>();
        s.eps = t[7].cast<double>();
        s.p = t[8].cast<double>();
        s.batch_stats_in_eval = t[9].cast<bool>();
        if (s.kind == OpKind::linear && !s.has_weight) throw py::value_error("SequencePlan: a linear op has a weight");
        if (s.in_features < 0 || s.out_features < 0) throw py::value_error("SequencePlan: negative width");
        shapes.push_back(s);
    }
    return shapes;
}

// The parameter shapes of op l: weight, bias ({} where absent).
std::vector<index_t> weight_dims(const OpShape& s) {
    if (!s.has_weight) return {};
    if (s.kind == OpKind::linear) return {s.out_features, s.in_features};
    return {s.out_features};
}
std::vector<index_t> bias_dims(const OpShape& s) {
    return s.has_bias ? std::vector<index_t>{s.out_features} : std::vector<index_t>{};
}

class SequencePlanBinding {
public:
    SequencePlanBinding(const std::string& dtype, const std::vector<py::tuple>& ops, const std::string& loss,
                        const std::string& reduction, double label_smoothing, bool fuse) {
        const std::vector<OpShape> shapes = op_shapes(ops);
        const train::LossShape l = loss_shape("SequencePlan", loss, reduction, label_smoothing);
        loss_kind_ = l.kind;
        try {
            if (dtype == "float32") plan_ = std::make_unique<train::SequencePlan<float>>(shapes, l, fuse);
            else if (dtype == "float64") plan_ = std::make_unique<train::SequencePlan<double>>(shapes, l, fuse);
            else throw py::value_error("SequencePlan: dtype must be float32 or float64, got " + dtype);
        } catch (const std::invalid_argument& e) {
            throw py::value_error(e.what());
        }
    }

    double step(const py::array& x, const py::handle& y, const py::list& params, const py::list& grads,
                const py::list& updates, const py::list& extras) {
        return std::visit([&](auto& plan) { return run(*plan, x, y, params, grads, updates, extras); }, plan_);
    }

    // packed: None, or per op a PackedWeight of its weight (a Linear) or None.
    void forward(const py::array& x, const py::list& params, const py::list& extras, const py::array& out,
                 const py::object& packed) {
        std::visit([&](auto& plan) { infer(*plan, x, params, extras, out, packed); }, plan_);
    }

private:
    template <class T>
    static MatrixRef<const T> input_matrix(const py::array& x, const OpShape& first) {
        const MatrixRef<const T> m = bindings::input_matrix<T>(x, first.in_features);
        // Only the GEMM reads through strides; the other kernels take rows.
        if (first.kind != OpKind::linear && !(x.flags() & py::array::c_style))
            throw py::value_error("TrainStep: x must be C-contiguous when the first module is not a Linear");
        return m;
    }

    template <class T>
    std::vector<train::OpTensors<T>> op_tensors(const train::SequencePlan<T>& plan, const py::list& params,
                                                const py::list* grads, const py::list& extras) const {
        const auto& ops = plan.ops();
        if (py::len(params) != 2 * ops.size() || (grads && py::len(*grads) != 2 * ops.size()) ||
            py::len(extras) != ops.size())
            throw py::value_error("TrainStep: expected a weight and a bias slot and one extra per op");
        std::vector<train::OpTensors<T>> out(ops.size());
        for (std::size_t l = 0; l < ops.size(); ++l) {
            const std::string name = "op " + std::to_string(l);
            const auto wd = weight_dims(ops[l]), bd = bias_dims(ops[l]);
            if (!wd.empty()) out[l].weight = contiguous<T>(params[2 * l], name + " weight", wd, false);
            if (!bd.empty()) out[l].bias = contiguous<T>(params[2 * l + 1], name + " bias", bd, false);
            if (grads) {
                if (!wd.empty()) out[l].weight_grad = contiguous<T>((*grads)[2 * l], name + " weight grad", wd, true);
                if (!bd.empty()) out[l].bias_grad = contiguous<T>((*grads)[2 * l + 1], name + " bias grad", bd, true);
            }
            const py::handle extra = extras[l];
            if (ops[l].kind == OpKind::batch_norm) {
                const auto t = py::reinterpret_borrow<py::tuple>(extra);
                const std::vector<index_t> n{ops[l].out_features};
                if (!t[1].is_none()) {
                    out[l].running_mean = contiguous<T>(t[1], name + " running_mean", n, true);
                    out[l].running_var = contiguous<T>(t[2], name + " running_var", n, true);
                } else if (!ops[l].batch_stats_in_eval) {
                    throw py::value_error("TrainStep: " + name + " needs running statistics");
                }
                out[l].momentum = t[3].cast<double>();
            } else if (ops[l].kind == OpKind::dropout) {
                const auto t = py::reinterpret_borrow<py::tuple>(extra);
                out[l].key = {t[1].cast<std::uint64_t>(), t[2].cast<std::uint32_t>(), t[3].cast<std::uint32_t>()};
            }
        }
        return out;
    }

    template <class T>
    double run(train::SequencePlan<T>& plan, const py::array& x, const py::handle& y, const py::list& params,
               const py::list& grads, const py::list& updates, const py::list& extras) {
        const auto& ops = plan.ops();
        const MatrixRef<const T> xm = input_matrix<T>(x, ops.front());
        const auto tensors = op_tensors<T>(plan, params, &grads, extras);
        std::vector<std::vector<index_t>> dims;
        std::vector<const T*> grad_ptrs;
        for (std::size_t l = 0; l < ops.size(); ++l) {
            dims.push_back(weight_dims(ops[l]));
            grad_ptrs.push_back(tensors[l].weight_grad);
            dims.push_back(bias_dims(ops[l]));
            grad_ptrs.push_back(tensors[l].bias_grad);
        }
        const auto rules = parse_updates<T>(params, updates, dims, grad_ptrs);
        const train::Target<T> target = target_of<T>(y, loss_kind_, xm.rows, ops.back().out_features);
        py::gil_scoped_release release;
        std::lock_guard<std::mutex> lock(busy_);  // the plan owns the workspaces: one step at a time
        const double loss = plan.forward_backward(xm, target, tensors);
        apply_updates<T>(rules);
        return loss;
    }

    template <class T>
    void infer(train::SequencePlan<T>& plan, const py::array& x, const py::list& params, const py::list& extras,
               const py::array& out, const py::object& packed_obj) {
        const auto& ops = plan.ops();
        const MatrixRef<const T> xm = input_matrix<T>(x, ops.front());
        auto tensors = op_tensors<T>(plan, params, nullptr, extras);
        if (!packed_obj.is_none()) {
            const auto packed = packed_obj.cast<py::list>();
            if (py::len(packed) != ops.size()) throw py::value_error("SequencePlan: expected one packed slot per op");
            for (std::size_t l = 0; l < ops.size(); ++l) {
                if (packed[l].is_none()) continue;
                const auto& pw = packed[l].cast<const PackedWeight&>();
                if (ops[l].kind != OpKind::linear || pw.dtype() != (sizeof(T) == 4 ? DType::f32 : DType::f64) ||
                    pw.out_features() != ops[l].out_features || pw.in_features() != ops[l].in_features)
                    throw py::value_error("SequencePlan: the packed weight of op " + std::to_string(l) +
                                          " does not match its weight");
                tensors[l].packed_wt = pw.get<T>();
            }
        }
        const index_t n_out = ops.back().out_features;
        T* o = contiguous<T>(out, "out", {xm.rows, n_out}, true);
        py::gil_scoped_release release;
        std::lock_guard<std::mutex> lock(busy_);
        plan.forward(xm, tensors, {o, xm.rows, n_out, n_out, 1});
    }

    std::variant<std::unique_ptr<train::SequencePlan<float>>, std::unique_ptr<train::SequencePlan<double>>> plan_;
    train::LossKind loss_kind_ = train::LossKind::mse;
    std::mutex busy_;
};

}  // namespace

void register_sequence(py::module_& m) {
    py::class_<SequencePlanBinding>(m, "SequencePlan",
                                    "A compiled training step with norms and dropout (private: use fusedprop.TrainStep)")
        .def(py::init<const std::string&, const std::vector<py::tuple>&, const std::string&, const std::string&,
                      double, bool>(),
             py::arg("dtype"), py::arg("ops"), py::arg("loss"), py::arg("reduction"), py::arg("label_smoothing"),
             py::arg("fuse") = true)
        .def("step", &SequencePlanBinding::step, py::arg("x"), py::arg("y"), py::arg("params"), py::arg("grads"),
             py::arg("updates"), py::arg("extras"))
        .def("forward", &SequencePlanBinding::forward, py::arg("x"), py::arg("params"), py::arg("extras"),
             py::arg("out"), py::arg("packed") = py::none());
}

}  // namespace fusedprop::bindings
