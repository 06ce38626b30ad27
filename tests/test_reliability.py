"""Determinism, thread safety and memory: the guarantees of README's
Reliability section, on every backend."""

from __future__ import annotations

import gc
import sys

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import functional as F
from helpers import make, run_in_threads

SHAPE_BIG = (97, 301, 67)  # big enough to use several threads in the compiled core


def _forward_backward(x, w, b, activation):
    y, saved = F.linear_forward(x, w, b, activation)
    gy = np.cos(y)  # any fixed function of y
    return (y,) + F.linear_backward(gy, x, w, saved, activation)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_bitwise_identical_across_runs_and_thread_counts(backend, threads, rng, dtype, activation):
    m, k, n = SHAPE_BIG
    x, w, b = make(rng, (m, k), dtype), make(rng, (n, k), dtype), make(rng, (n,), dtype)
    results = []
    for n_threads in (1, 2, 3, 1):
        threads(n_threads)
        results.append(_forward_backward(x, w, b, activation) + (F.matmul(x, w.T),))
    for other in results[1:]:
        for a, b_ in zip(results[0], other):
            np.testing.assert_array_equal(a, b_)


def test_many_python_threads_get_the_single_threaded_results(backend, rng):
    """8 Python threads on separate data at once (the GIL is released in the core)."""
    inputs = [(make(rng, (64, 96), np.float32), make(rng, (80, 96), np.float32), make(rng, (80,), np.float32))
              for _ in range(8)]
    expected = [_forward_backward(*args, "tanh") for args in inputs]
    got: list = [None] * 8

    def work(i):
        for _ in range(20):
            got[i] = _forward_backward(*inputs[i], "tanh")

    run_in_threads(8, work)
    for e, g in zip(expected, got):
        for a, b in zip(e, g):
            np.testing.assert_array_equal(a, b)


def test_no_reference_leak_on_inputs(backend, rng):
    x, w, b = make(rng, (8, 16), np.float32), make(rng, (12, 16), np.float32), make(rng, (12,), np.float32)
    out = np.empty((8, 12), np.float32)
    for _ in range(10):  # warm up caches, lazy compilation
        F.linear(x, w, b, "relu", out=out)
        _forward_backward(x, w, b, "silu")
    gc.collect()
    before = [sys.getrefcount(a) for a in (x, w, b, out)]
    for _ in range(500):
        F.linear(x, w, b, "relu", out=out)
        _forward_backward(x, w, b, "silu")
        F.matmul(x, w.T)
    gc.collect()
    assert [sys.getrefcount(a) for a in (x, w, b, out)] == before


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_memory_is_stable_over_thousands_of_calls(backend, rng):
    x, w, b = make(rng, (32, 64), np.float32), make(rng, (48, 64), np.float32), make(rng, (48,), np.float32)
    for _ in range(200):
        _forward_backward(x, w, b, "gelu")
    gc.collect()
    start = _rss_bytes()
    for _ in range(3000):
        _forward_backward(x, w, b, "gelu")
    gc.collect()
    grown = _rss_bytes() - start
    # 3000 calls each allocate ~40 KB of results: a leak of even one would show as > 100 MB.
    assert grown < 8 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 3000 calls"


def _train(seed: int, x, y, steps: int = 3):
    fp.manual_seed(seed)
    model = fp.nn.Sequential(fp.nn.Linear(x.shape[1], 64), fp.nn.ReLU(), fp.nn.Linear(64, 10))
    step = fp.TrainStep(model, fp.nn.CrossEntropyLoss(), fp.optim.Adam(model.parameters(), lr=1e-2))
    losses = [step(x, y) for _ in range(steps)]
    return losses, [p.data.copy() for p in model.parameters()] + [p.grad.copy() for p in model.parameters()]


def test_training_steps_are_bitwise_identical_across_thread_counts(backend, threads, rng):
    x = rng.standard_normal((130, 70)).astype(np.float32)
    y = rng.integers(0, 10, 130)
    runs = []
    for n_threads in (1, 2, 3):
        threads(n_threads)
        runs.append(_train(5, x, y))
    for losses, arrays in runs[1:]:
        assert losses == runs[0][0]
        for a, b in zip(arrays, runs[0][1]):
            np.testing.assert_array_equal(a, b)


def test_train_steps_in_many_python_threads_match_one_thread(backend, rng):
    data = [(rng.standard_normal((40, 30)).astype(np.float32), rng.integers(0, 10, 40)) for _ in range(8)]
    expected = [_train(i, *d) for i, d in enumerate(data)]
    # Build the models first (manual_seed is process-wide), then step them at once.
    results: list = [None] * 8
    models = []
    for i, (x, y) in enumerate(data):
        fp.manual_seed(i)
        m = fp.nn.Sequential(fp.nn.Linear(30, 64), fp.nn.ReLU(), fp.nn.Linear(64, 10))
        models.append((m, fp.TrainStep(m, fp.nn.CrossEntropyLoss(), fp.optim.Adam(m.parameters(), lr=1e-2))))

    def work(i):
        m, step = models[i]
        losses = [step(*data[i]) for _ in range(3)]
        results[i] = (losses, [p.data.copy() for p in m.parameters()] + [p.grad.copy() for p in m.parameters()])

    run_in_threads(8, work)
    for (el, ea), (gl, ga) in zip(expected, results):
        assert gl == el
        for a, b in zip(ga, ea):
            np.testing.assert_array_equal(a, b)


def test_thread_pool_runs_thousands_of_back_to_back_jobs(cpp_only, threads, rng):
    """Many short parallel jobs in a row, more threads than cores: the pool's
    hand-over from one job to the next must neither hang nor run a task twice
    (a helper that woke late once claimed a task of the next job)."""
    import threading

    x, w = make(rng, (128, 200), np.float32), make(rng, (160, 200), np.float32)  # just above the parallel threshold
    z = make(rng, (300, 1000), np.float32)
    threads(1)
    expected_mm, expected_act = F.matmul(x, w.T), F.activation(z, "tanh")
    threads(3)
    failures: list = []

    def hammer():
        try:
            for i in range(1500):
                got_mm, got_act = F.matmul(x, w.T), F.activation(z, "tanh")
                if i % 100 == 0 and not (np.array_equal(got_mm, expected_mm) and np.array_equal(got_act, expected_act)):
                    failures.append(f"call {i}: result differs from the one-thread result")
        except Exception as exc:  # reported below
            failures.append(repr(exc))

    worker = threading.Thread(target=hammer, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the thread pool hung"
    assert not failures, failures
