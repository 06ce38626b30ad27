"""Scratch benchmark for the packed GEMM and the fused linear layer.

    python bench/scratch_gemm.py [--quick] [--threads 1,2]

Every contender runs interleaved with its NumPy counterpart in one process
(alternating calls, median and best of the repeats), with OpenBLAS limited to
the same thread count through threadpoolctl. For a fair NumPy number unset
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the shell that runs this.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from threadpoolctl import threadpool_limits

import fusedprop as fp
from fusedprop import functional as F

try:
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover
    _erf = np.vectorize(math.erf, otypes=[np.float32])

SQRT_HALF = np.float32(math.sqrt(0.5))
INV_SQRT_2PI = np.float32(1 / math.sqrt(2 * math.pi))


def interleaved(fns, repeats, min_time=0.0):
    """Runs each fn in turn `repeats` times; returns [(median, best)] per fn."""
    times = [[] for _ in fns]
    for f in fns:  # warm up
        f()
    start = time.perf_counter()
    r = 0
    while r < repeats or time.perf_counter() - start < min_time:
        for i, f in enumerate(fns):
            t = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t)
        r += 1
    return [(float(np.median(t)), float(min(t))) for t in times]


# ---------------------------------------------------------------- NumPy side

def np_forward(x, w, b, act):
    z = x @ w.T
    z += b
    if act == "relu":
        return np.maximum(z, 0), z
    y = np.float32(0.5) * z * (1 + _erf(z * SQRT_HALF)).astype(z.dtype)
    return y, z


def np_backward(gy, x, w, y, z, act):
    if act == "relu":
        dz = np.where(y > 0, gy, np.float32(0))
    else:
        cdf = np.float32(0.5) * (1 + _erf(z * SQRT_HALF)).astype(z.dtype)
        pdf = INV_SQRT_2PI * np.exp(np.float32(-0.5) * z * z)
        dz = gy * (cdf + z * pdf)
    return dz @ w, dz.T @ x, dz.sum(axis=0)


def np_train_step(x, w, b, gy, act):
    y, z = np_forward(x, w, b, act)
    return np_backward(gy, x, w, y, z, act)


def fp_train_step(x, w, b, gy, act):
    y, saved = F.linear_forward(x, w, b, act)
    return F.linear_backward(gy, x, w, saved, act)


# --------------------------------------------------------------------- runs

def bench_matmul(threads, sizes, quick):
    rows = []
    for nt in threads:
        fp.set_num_threads(nt)
        with threadpool_limits(nt):
            for dtype in (np.float32, np.float64):
                for n in sizes:
                    rng = np.random.default_rng(0)
                    a = rng.random((n, n), dtype=dtype)
                    b = rng.random((n, n), dtype=dtype)
                    c1 = np.empty((n, n), dtype)
                    c2 = np.empty((n, n), dtype)
                    reps = {512: 30, 1024: 8, 2048: 3}.get(n, 5) // (3 if quick else 1) or 1
                    (fm, fb), (nm, nb) = interleaved(
                        [lambda: F.matmul(a, b, out=c1), lambda: np.matmul(a, b, out=c2)], reps)
                    assert np.allclose(c1, c2, rtol=1e-3 if dtype == np.float32 else 1e-10)
                    flops = 2.0 * n ** 3
                    rows.append((np.dtype(dtype).name, n, nt, flops / fm / 1e9, flops / nm / 1e9, nm / fm,
                                 flops / fb / 1e9, flops / nb / 1e9))
    print("\n### F.matmul vs np.matmul (GFLOP/s; median of interleaved repeats, best in brackets)\n")
    print("| dtype | n | threads | F.matmul | np.matmul | speed-up (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for d, n, nt, f, npf, ratio, fb, nb in rows:
        print(f"| {d} | {n} | {nt} | {f:.1f} [{fb:.1f}] | {npf:.1f} [{nb:.1f}] | {ratio:.2f}x |")


SHAPES = [(8, 64, 64), (32, 128, 128), (64, 784, 256), (256, 1024, 1024), (1024, 1024, 1024), (4096, 512, 512)]


def bench_linear(quick):
    fp.set_num_threads(1)
    rows = []
    with threadpool_limits(1):
        for batch, n_in, n_out in SHAPES:
            rng = np.random.default_rng(1)
            x = rng.standard_normal((batch, n_in), dtype=np.float32)
            w = rng.standard_normal((n_out, n_in), dtype=np.float32) / np.float32(math.sqrt(n_in))
            b = rng.standard_normal(n_out, dtype=np.float32)
            gy = rng.standard_normal((batch, n_out), dtype=np.float32)
            flops = 2.0 * batch * n_in * n_out
            budget = 0.3 if quick else 1.0
            for act in ("relu", "gelu"):
                y_fp = F.linear(x, w, b, act)
                y_np = np_forward(x, w, b, act)[0]
                assert np.allclose(y_fp, y_np, rtol=1e-4, atol=1e-4)
                (fm, _), (nm, _) = interleaved([lambda: F.linear(x, w, b, act), lambda: np_forward(x, w, b, act)],
                                               5, budget)
                (ftm, _), (ntm, _) = interleaved(
                    [lambda: fp_train_step(x, w, b, gy, act), lambda: np_train_step(x, w, b, gy, act)], 3, budget)
                rows.append(((batch, n_in, n_out), act, fm, nm, ftm, ntm, flops))
    print("\n### F.linear (f32, 1 thread): forward and forward+backward vs NumPy (median time)\n")
    print("| (batch, in, out) | act | fwd fp | fwd NumPy | fwd speed-up | fwd fp GFLOP/s | fwd+bwd fp | fwd+bwd NumPy "
          "| fwd+bwd speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for shape, act, fm, nm, ftm, ntm, flops in rows:
        print(f"| {shape} | {act} | {fmt(fm)} | {fmt(nm)} | {nm / fm:.2f}x | {flops / fm / 1e9:.1f} | {fmt(ftm)} | "
              f"{fmt(ntm)} | {ntm / ftm:.2f}x |")


def fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


def bench_call_overhead():
    fp.set_num_threads(1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 64), dtype=np.float32)
    w = rng.standard_normal((64, 64), dtype=np.float32)
    b = rng.standard_normal(64, dtype=np.float32)
    tiny = np.ones((1, 1), np.float32)
    import timeit

    def per_call(f, number=2000):
        return min(timeit.repeat(f, number=number, repeat=9)) / number

    with threadpool_limits(1):
        t_lin = per_call(lambda: F.linear(x, w, b, "relu"))
        t_np = per_call(lambda: np.maximum(x @ w.T + b, 0))
        t_tiny = per_call(lambda: F.matmul(tiny, tiny))
    print("\n### Per-call time (best of 9 x 2000 calls)\n")
    print(f"- F.linear relu (8,64,64) f32: {t_lin * 1e6:.2f} us  (NumPy np.maximum(x @ W.T + b, 0): "
          f"{t_np * 1e6:.2f} us)")
    print(f"- F.matmul 1x1x1 (fixed cost of a call through the bindings): {t_tiny * 1e6:.2f} us")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--sizes", default="512,1024,2048")
    p.add_argument("--only", choices=["matmul", "linear", "call"], default=None)
    args = p.parse_args()
    print(f"fusedprop {fp.__version__}: {fp.cpu_info()}")
    if args.only in (None, "call"):
        bench_call_overhead()
    if args.only in (None, "matmul"):
        bench_matmul([int(t) for t in args.threads.split(",")], [int(s) for s in args.sizes.split(",")], args.quick)
    if args.only in (None, "linear"):
        bench_linear(args.quick)


if __name__ == "__main__":
    main()
