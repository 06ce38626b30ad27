// The compiled training step: _core.TrainPlan, driven by fusedprop.train.
//
// Python passes the parameters, their gradient buffers and the optimizer
// state on every step (they are the NumPy arrays users see); everything is
// checked here, then the whole step — forward, loss, backward and the
// optimizer update of every parameter — runs with the GIL released.
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
#include "layer_shapes.h"
#include "param_updates.h"
#include "step_args.h"
#include "optim/sum_of_squares.h"
#include "train/train_step.h"

namespace py = pybind11;

namespace fusedprop::bindings {
namespace {

using train::LayerShape;
using train::LossKind;
using train::LossShape;
using train::Reduction;

class TrainPlan {
public:
    TrainPlan(const std::string& dtype, const std::vector<py::tuple>& layers, const std::string& loss,
              const std::string& reduction, double label_smoothing) {
        const std::vector<LayerShape> shapes = layer_shapes("TrainPlan", layers);
        const LossShape l = loss_shape("TrainPlan", loss, reduction, label_smoothing);
        loss_kind_ = l.kind;
        if (dtype == "float32") plan_ = std::make_unique<train::TrainStepPlan<float>>(shapes, l);
        else if (dtype == "float64") plan_ = std::make_unique<train::TrainStepPlan<double>>(shapes, l);
        else throw py::value_error("TrainPlan: dtype must be float32 or float64, got " + dtype);
    }

    // params/grads: [W0, b0 or None, W1, ...]; updates: one entry per
    // parameter (None: not updated), see fusedprop/train.py. weight_sq, if
    // not None, a float64 array of one element: the step writes into it the
    // sum of the squares of every weight matrix (not the biases) as they were
    // before the update, the L2 term of scikit-learn's loss
    // (fusedprop.sklearn), without another pass from Python.
    double step(const py::array& x, const py::handle& y, const py::list& params, const py::list& grads,
                const py::list& updates, const py::object& weight_sq) {
        double* sq = nullptr;
        if (!weight_sq.is_none()) sq = contiguous<double>(weight_sq, "weight_sq", {1}, true);
        return std::visit([&](auto& plan) { return run(*plan, x, y, params, grads, updates, sq); }, plan_);
    }

    void forward(const py::array& x, const py::list& params, const py::array& out) {
        std::visit([&](auto& plan) { infer(*plan, x, params, out); }, plan_);
    }

private:
    template <class T>
    std::vector<train::LayerTensors<T>> layer_tensors(const train::TrainStepPlan<T>& plan, const py::list& params,
                                                      const py::list* grads) const {
        const auto& shapes = plan.layers();
        if (py::len(params) != 2 * shapes.size() || (grads && py::len(*grads) != 2 * shapes.size()))
            throw py::value_error("TrainStep: expected a weight and a bias slot per layer");
        std::vector<train::LayerTensors<T>> out(shapes.size());
        for (std::size_t l = 0; l < shapes.size(); ++l) {
            const long n = static_cast<long>(l);
            const index_t o = shapes[l].out_features, i = shapes[l].in_features;
            out[l].weight = contiguous<T>(params[2 * l], What("layer ", n, " weight"), {o, i}, false);
            if (shapes[l].has_bias)
                out[l].bias = contiguous<T>(params[2 * l + 1], What("layer ", n, " bias"), {o}, false);
            if (grads) {
                out[l].weight_grad = contiguous<T>((*grads)[2 * l], What("layer ", n, " weight grad"), {o, i}, true);
                if (shapes[l].has_bias)
                    out[l].bias_grad = contiguous<T>((*grads)[2 * l + 1], What("layer ", n, " bias grad"), {o}, true);
            }
        }
        return out;
    }

    template <class T>
    std::vector<ParamUpdate<T>> parse_updates(const std::vector<train::LayerTensors<T>>& tensors,
                                              const train::TrainStepPlan<T>& plan, const py::list& params,
                                              const py::list& updates) const {
        std::vector<std::vector<index_t>> dims;
        std::vector<const T*> grads;
        for (std::size_t l = 0; l < plan.layers().size(); ++l) {
            const auto& shape = plan.layers()[l];
            dims.push_back({shape.out_features, shape.in_features});
            grads.push_back(tensors[l].weight_grad);
            dims.push_back(shape.has_bias ? std::vector<index_t>{shape.out_features} : std::vector<index_t>{});
            grads.push_back(tensors[l].bias_grad);
        }
        return bindings::parse_updates<T>(params, updates, dims, grads);
    }

    template <class T>
    double run(train::TrainStepPlan<T>& plan, const py::array& x, const py::handle& y, const py::list& params,
               const py::list& grads, const py::list& updates, double* weight_sq) {
        const MatrixRef<const T> xm = input_matrix<T>(x, plan.layers().front().in_features);
        const auto tensors = layer_tensors<T>(plan, params, &grads);
        const auto rules = parse_updates<T>(tensors, plan, params, updates);
        const train::Target<T> target = target_of<T>(y, loss_kind_, xm.rows, plan.layers().back().out_features);

        py::gil_scoped_release release;
        std::lock_guard<std::mutex> lock(busy_);  // one step at a time per plan: it owns the workspaces
        const double loss = plan.forward_backward(xm, target, tensors);
        if (weight_sq != nullptr) {
            double total = 0.0;
            for (std::size_t l = 0; l < tensors.size(); ++l) {
                const auto& shape = plan.layers()[l];
                total += optim::sum_of_squares(tensors[l].weight,
                                               static_cast<std::size_t>(shape.out_features * shape.in_features));
            }
            *weight_sq = total;
        }
        apply_updates<T>(rules);
        return loss;
    }

    template <class T>
    void infer(train::TrainStepPlan<T>& plan, const py::array& x, const py::list& params, const py::array& out) {
        const MatrixRef<const T> xm = input_matrix<T>(x, plan.layers().front().in_features);
        const auto tensors = layer_tensors<T>(plan, params, nullptr);
        T* o = contiguous<T>(out, "out", {xm.rows, plan.layers().back().out_features}, true);
        py::gil_scoped_release release;
        std::lock_guard<std::mutex> lock(busy_);
        plan.forward(xm, tensors, {o, xm.rows, plan.layers().back().out_features, plan.layers().back().out_features, 1});
    }

    std::variant<std::unique_ptr<train::TrainStepPlan<float>>, std::unique_ptr<train::TrainStepPlan<double>>> plan_;
    LossKind loss_kind_ = LossKind::mse;
    std::mutex busy_;
};

}  // namespace

void register_train(py::module_& m) {
    py::class_<TrainPlan>(m, "TrainPlan", "A compiled training step (private: use fusedprop.TrainStep)")
        .def(py::init<const std::string&, const std::vector<py::tuple>&, const std::string&, const std::string&,
                      double>(),
             py::arg("dtype"), py::arg("layers"), py::arg("loss"), py::arg("reduction"), py::arg("label_smoothing"))
        .def("step", &TrainPlan::step, py::arg("x"), py::arg("y"), py::arg("params"), py::arg("grads"),
             py::arg("updates"), py::arg("weight_sq") = py::none())
        .def("forward", &TrainPlan::forward, py::arg("x"), py::arg("params"), py::arg("out"));
}

}  // namespace fusedprop::bindings
