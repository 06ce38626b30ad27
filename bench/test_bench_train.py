"""One MLP training step (forward, cross-entropy, backward, update)."""

import pytest

from .bench_helpers import run_contender
from fusedprop._bench.training import train_step_case

CONTENDERS = ["fusedprop eager", "fusedprop TrainStep", "numpy (hand-written)", "torch eager"]


@pytest.mark.benchmark(group="train_step")
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("contender", CONTENDERS)
def test_train_step(benchmark, train_config, optimizer, contender):
    batch, sizes = train_config
    run_contender(benchmark, train_step_case(batch, sizes, optimizer), contender)
