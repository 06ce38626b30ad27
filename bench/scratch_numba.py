"""Scratch benchmark: the Numba backend's fused relu layer against plain NumPy.

    python bench/scratch_numba.py [--rounds 30] [--threads 1]

One process, one thread everywhere by default (threadpoolctl limits NumPy's
and SciPy's BLAS, fp.set_num_threads limits Numba's prange), f32. Each round
times every candidate once, in turn, so a busy machine slows all of them
alike; the table shows medians. Results are checked against NumPy first.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import fusedprop as fp
from fusedprop import functional as F

SHAPES = [(64, 784, 256), (256, 1024, 1024), (1024, 1024, 1024)]


def numpy_forward(x, w, b):
    return np.maximum(x @ w.T + b, 0)


def numpy_forward_backward(x, w, b, gy):
    y = np.maximum(x @ w.T + b, 0)
    dz = np.where(y > 0, gy, 0)
    return y, dz @ w, dz.T @ x, dz.sum(axis=0)


def numba_forward(x, w, b):
    return F.linear(x, w, b, "relu")


def numba_forward_backward(x, w, b, gy):
    y, saved = F.linear_forward(x, w, b, "relu")
    gx, gw, gb = F.linear_backward(gy, x, w, saved, "relu")
    return y, gx, gw, gb


def check(x, w, b, gy):
    np.testing.assert_allclose(numba_forward(x, w, b), numpy_forward(x, w, b), rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(numba_forward_backward(x, w, b, gy), numpy_forward_backward(x, w, b, gy)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)


def median_times(candidates: dict, args: tuple, rounds: int) -> dict:
    for f in candidates.values():  # warm up: compile, page in, BLAS buffers
        f(*args)
        f(*args)
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, f in candidates.items():
            t = time.perf_counter()
            f(*args)
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    fp.set_backend("numba")
    fp.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    # threadpoolctl limits only the BLAS libraries loaded when it is entered:
    # run every kernel once first, so that any BLAS Numba loads is loaded.
    x, w, b = np.ones((4, 3), np.float32), np.ones((2, 3), np.float32), np.ones(2, np.float32)
    numba_forward_backward(x, w, b, np.ones((4, 2), np.float32))
    print(f"backend {fp.get_backend()}, {args.threads} thread(s), float32, median of {args.rounds} interleaved rounds")
    print(f"{'(batch, in, out)':>18} | {'fwd numpy':>10} {'fwd numba':>10} {'speed-up':>8} | "
          f"{'f+b numpy':>10} {'f+b numba':>10} {'speed-up':>8}")
    with threadpool_limits(limits=args.threads):
        print("BLAS:", ", ".join(f"{lib['filepath'].rsplit('/', 1)[-1]} {lib['version']} ({lib['num_threads']} thr)"
                                 for lib in threadpool_info() if lib["user_api"] == "blas"))
        for m, k, n in SHAPES:
            x = rng.standard_normal((m, k), dtype=np.float32)
            w = (rng.standard_normal((n, k), dtype=np.float32) / np.sqrt(k)).astype(np.float32)
            b = rng.standard_normal(n, dtype=np.float32)
            gy = rng.standard_normal((m, n), dtype=np.float32)
            check(x, w, b, gy)
            fwd = median_times({"numpy": numpy_forward, "numba": numba_forward}, (x, w, b), args.rounds)
            both = median_times({"numpy": numpy_forward_backward, "numba": numba_forward_backward},
                                (x, w, b, gy), args.rounds)
            print(f"{str((m, k, n)):>18} | {1e3 * fwd['numpy']:8.3f}ms {1e3 * fwd['numba']:8.3f}ms "
                  f"{fwd['numpy'] / fwd['numba']:7.2f}x | {1e3 * both['numpy']:8.3f}ms {1e3 * both['numba']:8.3f}ms "
                  f"{both['numpy'] / both['numba']:7.2f}x")


if __name__ == "__main__":
    main()
