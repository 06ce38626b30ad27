// _core.PackedWeight: W^T packed once for the GEMM kernels (gemm/packed_b.h),
// what a Predictor's snapshot keeps per Linear and hands to InferencePlan
// (bind_infer.cpp) or SequencePlan's eval forward (bind_sequence.cpp).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <variant>

#include "array_args.h"
#include "gemm/packed_b.h"

namespace fusedprop::bindings {

namespace py = pybind11;

class PackedWeight {
public:
    explicit PackedWeight(py::handle w_obj) {
        py::array w = check_array("PackedWeight", "weight", w_obj, &dtype_);
        if (w.ndim() != 2)
            throw py::value_error("PackedWeight: weight must be 2-D (out_features, in_features), got shape " +
                                  shape_str(w));
        out_ = w.shape(0);
        in_ = w.shape(1);
        if (dtype_ == DType::f32) packed_ = pack<float>(w);
        else packed_ = pack<double>(w);
    }

    DType dtype() const { return dtype_; }
    index_t out_features() const { return out_; }
    index_t in_features() const { return in_; }
    std::size_t nbytes() const {
        return std::visit([](const auto& p) { return p->bytes(); }, packed_);
    }
    template <class T>
    const gemm::PackedB<T>* get() const {
        return std::get<std::unique_ptr<gemm::PackedB<T>>>(packed_).get();
    }

private:
    template <class T>
    static std::unique_ptr<gemm::PackedB<T>> pack(const py::array& w) {
        MatrixRef<const T> view;
        py::object keep;
        as_matrix<const T>(w, &view, &keep);
        py::gil_scoped_release release;
        return std::make_unique<gemm::PackedB<T>>(view.transposed());  // B = W^T
    }

    DType dtype_ = DType::f32;
    index_t out_ = 0, in_ = 0;
    std::variant<std::unique_ptr<gemm::PackedB<float>>, std::unique_ptr<gemm::PackedB<double>>> packed_;
};

}  // namespace fusedprop::bindings
