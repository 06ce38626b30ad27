// matmul (the packed GEMM itself), the kernel info, and the private ISA switch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "array_args.h"
#include "bindings.h"
#include "gemm/dispatch.h"
#include "gemm/gemm.h"
#include "gemm/driver.h"
#include "gemm/skinny.h"

namespace py = pybind11;

namespace fusedprop::bindings {
namespace {

template <class T>
py::object matmul_impl(const py::array& a, const py::array& b, py::handle out_obj) {
    MatrixRef<const T> av, bv;
    py::object keep_a, keep_b;
    as_matrix<const T>(a, &av, &keep_a);
    as_matrix<const T>(b, &bv, &keep_b);
    const py::ssize_t shape[2] = {a.shape(0), b.shape(1)};
    MatrixRef<T> cv;
    py::object result, target;
    if (!out_obj.is_none()) {
        auto out = py::reinterpret_borrow<py::array>(out_obj);
        result = out;
        if (!has_zero_stride(out) && as_matrix<T>(out, &cv, nullptr, false)) target = out;
    }
    if (!target) {
        py::array fresh = new_array<T>(shape, 2);
        as_matrix<T>(fresh, &cv, nullptr, false);
        target = fresh;
        if (!result) result = fresh;
    }
    {
        py::gil_scoped_release release;
        gemm::gemm<T>(av, bv, cv);
    }
    if (target.ptr() != result.ptr()) py::module_::import("numpy").attr("copyto")(result, target);
    return result;
}

py::object matmul(py::handle a_obj, py::handle b_obj, py::handle out_obj) {
    const char* fn = "matmul";
    DType dt;
    py::array a = check_array(fn, "a", a_obj, &dt);
    py::array b = check_array(fn, "b", b_obj);
    check_same_dtype(fn, "a", a, "b", b);
    if (a.ndim() != 2)
        throw py::value_error(std::string(fn) + ": a must be 2-D, got " + std::to_string(a.ndim()) + "-D with shape " +
                              shape_str(a));
    if (b.ndim() != 2)
        throw py::value_error(std::string(fn) + ": b must be 2-D, got " + std::to_string(b.ndim()) + "-D with shape " +
                              shape_str(b));
    if (a.shape(1) != b.shape(0))
        throw py::value_error(std::string(fn) + ": a.shape[1] (" + std::to_string(a.shape(1)) +
                              ") must equal b.shape[0] (" + std::to_string(b.shape(0)) + "); got a " + shape_str(a) +
                              " and b " + shape_str(b));
    if (!out_obj.is_none()) {
        const py::ssize_t shape[2] = {a.shape(0), b.shape(1)};
        check_out(fn, out_obj, shape, 2, a, {{"a", a_obj}, {"b", b_obj}});
    }
    return dt == DType::f32 ? matmul_impl<float>(a, b, out_obj) : matmul_impl<double>(a, b, out_obj);
}

py::dict blocks_dict(const gemm::BlockSizes& bs) {
    py::dict d;
    d["mr"] = bs.mr;
    d["nr"] = bs.nr;
    d["mc"] = bs.mc;
    d["kc"] = bs.kc;
    d["nc"] = bs.nc;
    d["nb"] = bs.nb;
    return d;
}

}  // namespace

void register_gemm(py::module_& m) {
    m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("out") = py::none(),
          "a @ b for 2-D float32/float64 arrays of any strides (the packed GEMM).");
    m.def("gemm_kernel_info", [] {
        const gemm::KernelSet& k = gemm::active_kernels();
        py::dict d;
        d["isa"] = gemm::active_isa();
        d["gemm_f32_tile"] = std::to_string(k.f32->mr) + "x" + std::to_string(k.f32->nr);
        d["gemm_f64_tile"] = std::to_string(k.f64->mr) + "x" + std::to_string(k.f64->nr);
        d["gemm_f32_kernel"] = k.f32->name;
        d["gemm_f64_kernel"] = k.f64->name;
        d["gemm_f32_blocks"] = blocks_dict(k.config->f32);
        d["gemm_f64_blocks"] = blocks_dict(k.config->f64);
        d["gemm_parallel_flop_threshold"] = gemm::kParallelFlopThreshold;
        // The f32 rows cut-over of a layer of 64 outputs (a small and a large
        // B), of a narrow one (10 outputs, k = 512) and of one of 4 outputs.
        d["skinny_max_rows"] = gemm::skinny_rows_cutover(1, 64, 4, true);
        d["skinny_max_rows_large_b"] = gemm::skinny_rows_cutover(1 << 20, 64, 4, true);
        d["skinny_max_rows_narrow"] = gemm::skinny_rows_cutover(512, gemm::kSkinnyNarrowCols, 4, true);
        d["skinny_max_rows_few_outputs"] = gemm::skinny_rows_cutover(64, gemm::kSkinnyFewCols, 4, true);
        // Direct (unpacked) operands: whether the active kernels have them,
        // and the longest K block each operand is read unpacked at.
        const bool direct = k.f32->direct[k.f32->mr] != nullptr && gemm::direct_operands_mode() != 0;
        d["direct_operands"] = direct;
        d["direct_max_k_a"] = direct ? gemm::kDirectMaxKA : 0;
        d["direct_max_k_b"] = direct ? gemm::kDirectMaxKB : 0;
        return d;
    });
    // Private: tests switch the kernels at run time to cover both paths.
    m.def(
        "_set_isa",
        [](const std::string& name) {
            if (!gemm::set_isa(name.c_str()))
                throw py::value_error("_set_isa: ISA " + name + " is unknown or not available on this CPU/build");
        },
        py::arg("name"));
    // Private, for tuning and tests: override MC/KC/NC/NB of one ISA and dtype.
    m.def(
        "_set_gemm_blocks",
        [](const std::string& isa, const std::string& dtype, int mc, int kc, int nc, int nb) {
            if (!gemm::set_block_sizes(isa.c_str(), dtype == "float64", mc, kc, nc, nb))
                throw py::value_error("_set_gemm_blocks: invalid ISA or block sizes");
        },
        py::arg("isa"), py::arg("dtype"), py::arg("mc"), py::arg("kc"), py::arg("nc"), py::arg("nb"));
    // Private, for tuning and tests: the small-batch cut-over (skinny.h);
    // -1 restores config.h's, 0 sends every product through the packed path.
    m.def("_set_skinny_max_rows", &gemm::set_skinny_max_rows, py::arg("rows"));
    // Private, for tuning and tests: direct operands (gemm/driver.h); -1 the
    // measured rule, 0 never, 1 wherever the layouts allow.
    m.def("_set_direct_operands", &gemm::set_direct_operands, py::arg("mode"));
    m.def("_available_isas", [] {
        py::list l;
        for (const gemm::Config& c : gemm::kConfigs)
            if (gemm::isa_available(c.isa)) l.append(c.name);
        return l;
    });
}

}  // namespace fusedprop::bindings
