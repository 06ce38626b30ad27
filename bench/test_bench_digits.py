"""End to end: train 64-256-256-10 on scikit-learn's bundled digits, check test accuracy."""

import pytest

from .bench_helpers import run_contender

pytest.importorskip("sklearn", reason="scikit-learn holds the digits data set")

from fusedprop._bench.training import digits_case  # noqa: E402

CONTENDERS = ["fusedprop fit", "fusedprop eager", "numpy (hand-written)", "torch", "sklearn MLPClassifier"]


@pytest.mark.benchmark(group="digits")
@pytest.mark.parametrize("contender", CONTENDERS)
def test_digits_end_to_end(benchmark, digits_epochs, contender):
    run_contender(benchmark, digits_case(digits_epochs), contender, rounds=3)
