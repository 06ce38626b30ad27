// fusedprop._core: wires each area's bindings; each lives in its own file.
#include <pybind11/pybind11.h>

#include "bindings.h"

PYBIND11_MODULE(_core, m) {
    m.doc() = "fusedprop's compiled kernels (private: use fusedprop.functional)";
    m.attr("__version__") = FUSEDPROP_VERSION;
    fusedprop::bindings::register_runtime(m);
    fusedprop::bindings::register_optim(m);
    fusedprop::bindings::register_gemm(m);
    fusedprop::bindings::register_layers(m);
    fusedprop::bindings::register_train(m);
    fusedprop::bindings::register_infer(m);
    fusedprop::bindings::register_bench(m);
    fusedprop::bindings::register_activation(m);
    fusedprop::bindings::register_dropout(m);
    fusedprop::bindings::register_norm(m);
    fusedprop::bindings::register_sequence(m);
}
