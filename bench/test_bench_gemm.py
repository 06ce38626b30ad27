"""gemm: F.matmul on every backend vs NumPy's ``@`` and ``torch.mm``."""

import pytest

from .bench_helpers import run_contender
from fusedprop._bench.kernels import gemm_case

CONTENDERS = ["fusedprop[cpp]", "fusedprop[numba]", "fusedprop[numpy]", "numpy", "torch"]


@pytest.mark.benchmark(group="gemm")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("contender", CONTENDERS)
def test_gemm_square(benchmark, square_n, dtype, contender):
    run_contender(benchmark, gemm_case(square_n, square_n, square_n, dtype), contender)


@pytest.mark.benchmark(group="gemm")
@pytest.mark.parametrize("contender", CONTENDERS)
def test_gemm_layer_shape(benchmark, layer_shape, contender):
    run_contender(benchmark, gemm_case(*layer_shape, "float32", layer=True), contender)
