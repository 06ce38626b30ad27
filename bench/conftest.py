"""pytest-benchmark suites over the same cases as ``python -m fusedprop.bench``.

Every benchmark also checks its result against the float64 reference, so

    pytest bench/ --benchmark-disable

is a fast correctness run of every contender path (small shapes only), and

    pytest bench/ --benchmark-only

times the standard shapes. Contenders that cannot run here (no PyTorch, no
Numba backend, a fusedprop API not in this build) are skipped with the reason.
"""

from __future__ import annotations

import pytest

from fusedprop._bench import common

# With benchmarks disabled every path still runs, on shapes that take milliseconds.
SMALL = {
    "layer_shape": [(8, 64, 64), (32, 128, 128)],
    "square_n": [64],
    "train_config": [(32, (64, 128, 128, 10))],
    "optim_shape": [(64, 64)],
    "digits_epochs": [1],
}
FULL = {
    "layer_shape": common.STANDARD_SHAPES,
    "square_n": [512, 1024, 2048],
    "train_config": common.TRAIN_CONFIGS,
    "optim_shape": [(1024, 1024)],
    "digits_epochs": [30],
}


def benchmarks_disabled(config) -> bool:
    try:
        return bool(config.getoption("benchmark_disable"))
    except ValueError:  # pytest-benchmark is not installed
        return True


def _id(value):
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], tuple):
        return f"b{value[0]}-" + "-".join(map(str, value[1]))
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)


def pytest_generate_tests(metafunc):
    sizes = SMALL if benchmarks_disabled(metafunc.config) else FULL
    for name, values in sizes.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, values, ids=[_id(v) for v in values])
