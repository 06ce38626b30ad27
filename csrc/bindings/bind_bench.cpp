// Benchmark support: the measured FMA peak behind "% of peak", and the read
// bandwidth a small-batch layer's weight stream is compared with.
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "bindings.h"
#include "gemm/dispatch.h"
#include "runtime/fma_peak.h"
#include "runtime/read_bandwidth.h"

namespace py = pybind11;

namespace fusedprop::bindings {

void register_bench(py::module_& m) {
    m.def(
        "measure_peak_gflops",
        [](const std::string& dtype, int threads, double seconds) {
            bool f64;
            if (dtype == "float32" || dtype == "f32") {
                f64 = false;
            } else if (dtype == "float64" || dtype == "f64") {
                f64 = true;
            } else {
                throw py::value_error("measure_peak_gflops: dtype must be 'float32' or 'float64', got '" + dtype + "'");
            }
            if (threads < 1)
                throw py::value_error("measure_peak_gflops: threads must be a positive integer, got " +
                                      std::to_string(threads));
            if (!(std::isfinite(seconds) && seconds > 0 && seconds <= 60))
                throw py::value_error("measure_peak_gflops: seconds must be in (0, 60], got " + std::to_string(seconds));
            py::gil_scoped_release release;
            // the peak of the ISA the GEMM kernels use now
            return runtime::measure_peak_gflops(f64, threads, seconds, gemm::active_isa());
        },
        py::arg("dtype"), py::arg("threads"), py::arg("seconds"),
        "Peak GFLOP/s of a register-only FMA loop on `threads` threads (sum of per-thread rates), "
        "each running about `seconds`.");
    m.def(
        "measure_read_bandwidth",
        [](double bytes, double seconds) {
            if (!(std::isfinite(bytes) && bytes >= 64 && bytes <= 1e10))
                throw py::value_error("measure_read_bandwidth: bytes must be in [64, 1e10], got " +
                                      std::to_string(bytes));
            if (!(std::isfinite(seconds) && seconds > 0 && seconds <= 60))
                throw py::value_error("measure_read_bandwidth: seconds must be in (0, 60], got " +
                                      std::to_string(seconds));
            py::gil_scoped_release release;
            return runtime::measure_read_bandwidth(static_cast<std::size_t>(bytes), seconds);
        },
        py::arg("bytes"), py::arg("seconds"),
        "GB/s at which one thread reads a buffer of `bytes` over and over for about `seconds`.");
    m.def(
        "fma_peak_isa", [] { return runtime::fma_peak_isa(gemm::active_isa()); },
        "Which peak loop runs here, that of the GEMM kernels in use: 'avx512f+fma', 'avx2+fma' or 'portable'.");
}

}  // namespace fusedprop::bindings
