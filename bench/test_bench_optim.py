"""One optimizer update of a parameter: fusedprop.optim vs a NumPy expression and torch (foreach=False)."""

import pytest

from .bench_helpers import run_contender
from fusedprop._bench.kernels import optim_case


@pytest.mark.benchmark(group="optim_update")
@pytest.mark.parametrize("kind,contender", [
    ("sgd", "fusedprop optim.SGD"), ("sgd", "numpy"), ("sgd", "torch (foreach=False)"),
    ("adam", "fusedprop optim.Adam"), ("adam", "numpy"), ("adam", "torch (foreach=False)"),
])
def test_optimizer_update(benchmark, optim_shape, kind, contender):
    run_contender(benchmark, optim_case(kind, optim_shape), contender)
