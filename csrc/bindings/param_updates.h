// The optimizer updates a compiled step applies after its backward, parsed
// from the per-parameter specs fusedprop/train.py builds (_update_rules):
// ("sgd", lr, momentum, dampening, weight_decay, nesterov, first_step, buffer)
// or ("adam", step, lr, beta1, beta2, eps, weight_decay, decoupled, exp_avg,
// exp_avg_sq, max_exp_avg_sq or None), None for a parameter not updated.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

#include "array_args.h"
#include "optim/adam.h"
#include "optim/sgd.h"

namespace fusedprop::bindings {

// What an array is, for error messages: "layer 2 weight grad" is
// {"layer ", 2, " weight grad"}. Formatted only when a check fails: a step
// checks some twenty arrays, and building their names cost more than the
// checks themselves. (From a std::string: it must outlive the call.)
struct What {
    const char* prefix;
    long index = -1;
    const char* suffix = "";
    What(const char* p, long i = -1, const char* s = "") : prefix(p), index(i), suffix(s) {}
    What(const std::string& p) : prefix(p.c_str()) {}  // NOLINT: implicit, as a name
    std::string str() const {
        return std::string(prefix) + (index >= 0 ? std::to_string(index) : std::string()) + suffix;
    }
};

// The array obj as a T pointer, checked: dtype T, shape dims[0..ndim),
// C-contiguous (and writeable); else a clear error.
template <class T>
T* contiguous(const py::handle& obj, const What& what, const index_t* dims, int ndim, bool writable) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error("TrainStep: " + what.str() + " must be a numpy.ndarray, got " + type_name(obj));
    auto a = py::reinterpret_borrow<py::array>(obj);
    if (!has_dtype<T>(a))
        throw py::type_error("TrainStep: " + what.str() + " must have dtype " +
                             std::string(py::str(py::dtype::of<T>())) + ", got " + dtype_str(a));
    bool same = a.ndim() == ndim;
    for (int i = 0; same && i < ndim; ++i) same = a.shape(i) == dims[i];
    if (!same)
        throw py::value_error("TrainStep: " + what.str() + " has shape " + shape_str(a) + ", the plan expects another");
    if (!(a.flags() & py::array::c_style))
        throw py::value_error("TrainStep: " + what.str() + " must be C-contiguous");
    if (writable && !a.writeable()) throw py::value_error("TrainStep: " + what.str() + " is read-only");
    return static_cast<T*>(const_cast<void*>(a.data()));
}
template <class T>
T* contiguous(const py::handle& obj, const What& what, std::initializer_list<index_t> dims, bool writable) {
    return contiguous<T>(obj, what, dims.begin(), static_cast<int>(dims.size()), writable);
}
template <class T>
T* contiguous(const py::handle& obj, const What& what, const std::vector<index_t>& dims, bool writable) {
    return contiguous<T>(obj, what, dims.data(), static_cast<int>(dims.size()), writable);
}

struct SgdUpdate {
    optim::SgdOptions options;
};
struct AdamUpdate {
    optim::AdamOptions options;
    bool amsgrad = false;
};

template <class T>
struct ParamUpdate {
    T* param = nullptr;
    const T* grad = nullptr;
    std::size_t size = 0;
    std::variant<std::monostate, SgdUpdate, AdamUpdate> rule;
    T* state[3] = {nullptr, nullptr, nullptr};
};

// One update per parameter slot k with a spec: params[k] must have dims[k]
// (an empty dims: the slot is absent and skipped); its gradient is grads[k].
template <class T>
std::vector<ParamUpdate<T>> parse_updates(const py::list& params, const py::list& updates,
                                          const std::vector<std::vector<index_t>>& dims,
                                          const std::vector<const T*>& grads) {
    if (py::len(updates) != py::len(params) || dims.size() != py::len(params))
        throw py::value_error("TrainStep: one update slot per parameter");
    std::vector<ParamUpdate<T>> out;
    const std::size_t n_params = py::len(params);
    for (std::size_t k = 0; k < n_params; ++k) {
        if (dims[k].empty()) continue;
        const py::handle spec = updates[k];
        if (spec.is_none()) continue;
        ParamUpdate<T> u;
        u.size = 1;
        for (index_t d : dims[k]) u.size *= static_cast<std::size_t>(d);
        u.param = contiguous<T>(params[k], What("parameter ", static_cast<long>(k)), dims[k], true);
        u.grad = grads[k];
        const auto t = py::reinterpret_borrow<py::tuple>(spec);
        const std::string kind = t[0].cast<std::string>();
        const What what("optimizer state of parameter ", static_cast<long>(k));
        if (kind == "sgd") {
            SgdUpdate s;
            s.options.lr = t[1].cast<double>();
            s.options.momentum = t[2].cast<double>();
            s.options.dampening = t[3].cast<double>();
            s.options.weight_decay = t[4].cast<double>();
            s.options.nesterov = t[5].cast<bool>();
            s.options.first_step = t[6].cast<bool>();
            if (s.options.momentum != 0) u.state[0] = contiguous<T>(t[7], what, dims[k], true);
            u.rule = s;
        } else if (kind == "adam") {
            AdamUpdate a;
            a.options.step = t[1].cast<double>();
            a.options.lr = t[2].cast<double>();
            a.options.beta1 = t[3].cast<double>();
            a.options.beta2 = t[4].cast<double>();
            a.options.eps = t[5].cast<double>();
            a.options.weight_decay = t[6].cast<double>();
            a.options.decoupled = t[7].cast<bool>();
            u.state[0] = contiguous<T>(t[8], what, dims[k], true);
            u.state[1] = contiguous<T>(t[9], what, dims[k], true);
            a.amsgrad = !t[10].is_none();
            if (a.amsgrad) u.state[2] = contiguous<T>(t[10], what, dims[k], true);
            u.rule = a;
        } else {
            throw py::value_error("TrainStep: unknown update rule " + kind);
        }
        out.push_back(u);
    }
    return out;
}

// Runs without the GIL, after the backward.
template <class T>
void apply_updates(const std::vector<ParamUpdate<T>>& rules) {
    for (const auto& u : rules) {
        if (auto* s = std::get_if<SgdUpdate>(&u.rule)) {
            optim::sgd_step<T>(u.param, u.grad, u.state[0], u.size, s->options);
        } else if (auto* a = std::get_if<AdamUpdate>(&u.rule)) {
            optim::adam_step<T>(u.param, u.grad, u.state[0], u.state[1], a->amsgrad ? u.state[2] : nullptr, u.size,
                                a->options);
        }
    }
}

}  // namespace fusedprop::bindings
