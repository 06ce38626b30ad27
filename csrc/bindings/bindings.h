// One register_<area>(m) per bindings file; module.cpp calls them all.
#pragma once

#include <pybind11/pybind11.h>

namespace fusedprop::bindings {

void register_runtime(pybind11::module_& m);
void register_optim(pybind11::module_& m);
void register_gemm(pybind11::module_& m);
void register_layers(pybind11::module_& m);
void register_train(pybind11::module_& m);
void register_infer(pybind11::module_& m);
void register_bench(pybind11::module_& m);
void register_activation(pybind11::module_& m);
void register_dropout(pybind11::module_& m);
void register_norm(pybind11::module_& m);
void register_sequence(pybind11::module_& m);

}  // namespace fusedprop::bindings
