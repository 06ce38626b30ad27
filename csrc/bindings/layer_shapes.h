// The layer chain Python hands the compiled plans (TrainPlan, InferencePlan):
// one (activation, negative_slope, has_bias, in_features, out_features)
// tuple per fused layer, as fusedprop/_train_plan.py builds them.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "math/activation.h"
#include "train/train_step.h"

namespace fusedprop::bindings {

inline std::vector<train::LayerShape> layer_shapes(const std::string& fn, const std::vector<pybind11::tuple>& layers) {
    std::vector<train::LayerShape> shapes;
    for (const auto& t : layers) {
        train::LayerShape s;
        const auto name = t[0].cast<std::string>();
        const auto act = math::parse_activation(name);
        if (!act) throw pybind11::value_error(fn + ": unknown activation " + name);
        s.activation = *act;
        s.negative_slope = t[1].cast<double>();
        s.has_bias = t[2].cast<bool>();
        s.in_features = t[3].cast<index_t>();
        s.out_features = t[4].cast<index_t>();
        shapes.push_back(s);
    }
    return shapes;
}

}  // namespace fusedprop::bindings
