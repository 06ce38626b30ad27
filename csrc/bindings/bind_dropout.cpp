// dropout(x, p, seed, stream, step): x times the Philox mask of (seed,
// stream, step) scaled by 1 / (1 - p). The backward is the same call on dY.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bindings.h"
#include "layers/dropout.h"
#include "norm_args.h"

namespace py = pybind11;

namespace fusedprop::bindings {
namespace {

template <class T>
py::array dropout_impl(const py::array& x, double p, layers::DropoutKey key) {
    CArray<T> xc = CArray<T>::ensure(x);
    CArray<T> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const index_t n = static_cast<index_t>(xc.size());
    const T* in = xc.data();
    T* out = y.mutable_data();
    {
        py::gil_scoped_release release;
        layers::dropout_apply<T>(in, out, n, p, key);
    }
    return y;
}

py::array dropout(py::handle x_obj, double p, std::uint64_t seed, std::uint32_t stream, std::uint32_t step) {
    const char* fn = "dropout";
    DType dtype;
    py::array x = check_array(fn, "x", x_obj, &dtype);
    if (!(p >= 0.0 && p < 1.0))
        throw py::value_error(std::string(fn) + ": p must be in [0, 1), got " + std::to_string(p));
    const layers::DropoutKey key{seed, stream, step};
    return dtype == DType::f32 ? dropout_impl<float>(x, p, key) : dropout_impl<double>(x, p, key);
}

}  // namespace

void register_dropout(py::module_& m) {
    m.def("dropout", &dropout, py::arg("x"), py::arg("p"), py::arg("seed"), py::arg("stream"), py::arg("step"),
          "x * mask / (1 - p), the mask from Philox4x32-10 keyed on (seed, stream, step) and each element's index");
}

}  // namespace fusedprop::bindings
