"""The GIL is released inside the kernels: two Python threads, each running a
large fused layer with fusedprop's own threads set to 1, overlap.

Compare the two rows of group "gil_release": "2 Python threads" does the
same work as "one after another"; on two free cores it takes about half the
time. (A timed assertion would be flaky on a shared machine, so the suite
only checks the results; the timings are the evidence.)
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import functional as F

from .conftest import benchmarks_disabled


@pytest.fixture
def layers(request):
    n = 64 if benchmarks_disabled(request.config) else 1024
    rng = np.random.default_rng(0)
    x = [rng.standard_normal((n, n)).astype(np.float32) for _ in range(2)]
    w = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    expected = [np.maximum(xi.astype(np.float64) @ w.T.astype(np.float64) + b, 0) for xi in x]
    return x, w, b, expected


@pytest.fixture
def one_kernel_thread():
    """The compiled backend with one kernel thread: any overlap comes from Python threads."""
    if "cpp" not in fp.available_backends():
        pytest.skip("no compiled core")
    before = fp.get_num_threads()
    fp.set_num_threads(1)
    with fp.use_backend("cpp"):
        yield
    fp.set_num_threads(before)


def _check(results, expected):
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-2 * np.sqrt(want.shape[1]))


@pytest.mark.benchmark(group="gil_release")
def test_two_python_threads(benchmark, layers, one_kernel_thread):
    x, w, b, expected = layers
    results = [None, None]

    def run():
        def work(i):
            results[i] = F.linear(x[i], w, b, "relu")

        pool = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()

    run()
    _check(results, expected)
    benchmark(run)


@pytest.mark.benchmark(group="gil_release")
def test_one_after_another(benchmark, layers, one_kernel_thread):
    x, w, b, expected = layers
    run = lambda: [F.linear(xi, w, b, "relu") for xi in x]  # noqa: E731
    _check(run(), expected)
    benchmark(run)
