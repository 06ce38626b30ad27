"""One MLP training step (forward, cross-entropy, backward, update)."""

import pytest

from .bench_helpers import run_contender
from fusedprop._bench.tabular import tabular_case
from fusedprop._bench.training import train_step_case

CONTENDERS = ["fusedprop eager", "fusedprop TrainStep", "numpy (hand-written)", "torch eager"]


@pytest.mark.benchmark(group="train_step")
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("contender", CONTENDERS)
def test_train_step(benchmark, train_config, optimizer, contender):
    batch, sizes = train_config
    run_contender(benchmark, train_step_case(batch, sizes, optimizer), contender)


@pytest.mark.benchmark(group="train_step")
@pytest.mark.parametrize("contender", ["fusedprop eager", "fusedprop TrainStep", "torch eager", "jax jit"])
def test_tabular_step(benchmark, contender):
    """Issue #23's recipe: Linear -> BatchNorm1d -> ReLU -> Dropout(0.1) per hidden layer, AdamW, cosine."""
    run_contender(benchmark, tabular_case(256, (64, 512, 512, 1), 0.1), contender)
