// Threads and CPU detection.
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "bindings.h"
#include "runtime/cpu_features.h"
#include "runtime/thread_pool.h"

namespace py = pybind11;

namespace fusedprop::bindings {

void register_runtime(py::module_& m) {
    m.def("get_num_threads", &runtime::get_num_threads,
          "Threads the kernels use (FUSEDPROP_NUM_THREADS, else OMP_NUM_THREADS, else usable CPUs).");
    m.def(
        "set_num_threads",
        [](int n) {
            if (n < 1) throw py::value_error("set_num_threads: n must be a positive integer, got " + std::to_string(n));
            runtime::set_num_threads(n);
        },
        py::arg("n"));
    m.def("default_num_threads", &runtime::default_num_threads);
    m.def("cpu_features", [] {
        const auto& f = runtime::cpu_features();
        py::dict d;
        d["sse2"] = f.sse2;
        d["avx"] = f.avx;
        d["avx2"] = f.avx2;
        d["fma"] = f.fma;
        d["avx512f"] = f.avx512f;
        d["avx512dq"] = f.avx512dq;
        d["avx512bw"] = f.avx512bw;
        d["avx512vl"] = f.avx512vl;
        return d;
    });
    m.def("cpu_model_name", &runtime::cpu_model_name);
}

}  // namespace fusedprop::bindings
