"""One `backend` fixture runs every test that asks for it once per backend.

Backends that cannot run here (no compiled core, no Numba) are skipped with a
reason; CI installs everything, so nothing is skipped there.
"""

from __future__ import annotations

import numpy as np
import pytest

import fusedprop as fp
from fusedprop.backends import BACKENDS

ALL_ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The name of the active backend for this test; restored afterwards."""
    name = request.param
    if name not in fp.available_backends():
        pytest.skip(f"backend {name!r} is not available here")
    with fp.use_backend(name):
        yield name


@pytest.fixture
def threads():
    """``threads(n)`` sets fusedprop's thread count for this test; restored afterwards."""
    previous = fp.get_num_threads()
    yield fp.set_num_threads
    fp.set_num_threads(previous)


def _gemm_isas() -> tuple:
    core = fp.backends.core_module()
    return tuple(core._available_isas()) if core is not None else ()


@pytest.fixture(params=_gemm_isas())
def isa(request):
    """Runs the test once per GEMM kernel this CPU can run (avx512, avx2, reference)."""
    core = fp.backends.core_module()
    previous = core.gemm_kernel_info()["isa"]
    core._set_isa(request.param)
    try:
        yield request.param
    finally:
        core._set_isa(previous)


@pytest.fixture
def cpp_only():
    """For tests of the compiled core itself: the cpp backend, active."""
    with fp.use_backend("cpp"):
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(20261128)


def reference():
    """The NumPy reference backend module: the oracle (call it with float64 inputs)."""
    from fusedprop.backends import numpy_backend

    return numpy_backend


def tolerance(dtype) -> dict:
    """assert_allclose tolerances for results compared with a float64 oracle."""
    if np.dtype(dtype) == np.float64:
        return {"rtol": 1e-12, "atol": 1e-12}
    return {"rtol": 1e-5, "atol": 1e-5}
