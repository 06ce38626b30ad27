"""linear forward, and forward+backward: every backend vs NumPy expressions and PyTorch."""

import pytest

from .bench_helpers import run_contender
from fusedprop._bench.common import ACTIVATIONS
from fusedprop._bench.kernels import linear_fwd_bwd_case, linear_fwd_case

BACKENDS = ["fusedprop[cpp]", "fusedprop[numba]", "fusedprop[numpy]", "numpy"]


@pytest.mark.benchmark(group="linear_fwd")
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("contender", BACKENDS + ["torch"])
def test_linear_forward(benchmark, layer_shape, activation, contender):
    run_contender(benchmark, linear_fwd_case(*layer_shape, activation), contender)


@pytest.mark.benchmark(group="linear_fwd_bwd")
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("contender", BACKENDS + ["torch autograd"])
def test_linear_forward_backward(benchmark, layer_shape, activation, contender):
    run_contender(benchmark, linear_fwd_bwd_case(*layer_shape, activation), contender)
