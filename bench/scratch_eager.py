"""Eager PyTorch-style training step, fusedprop vs PyTorch, interleaved in one process on one thread.

    python bench/scratch_eager.py [--repeats 7] [--steps 200] [--profile]

The loop: zero_grad, forward, CrossEntropyLoss, backward, SGD(momentum=0.9).step().
Cases: batch 32 on 64-128-128-10 and batch 128 on 784-256-256-10, float32, ReLU.
Reports the median time per step of each and the ratio (PyTorch / fusedprop: > 1 means fusedprop is faster).
``--profile`` runs cProfile on the small fusedprop case and prints the top entries.
``--overhead`` also times the small fusedprop case with every layer kernel replaced by its
cached result: what is left is fusedprop's own per-step cost (Python, loss, optimizer kernels).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np

import fusedprop as fp
import fusedprop.nn as fnn
from fusedprop import optim as foptim

CASES = [(32, (64, 128, 128, 10)), (128, (784, 256, 256, 10))]


def build_fp(widths):
    mods = []
    for i in range(len(widths) - 1):
        mods.append(fnn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            mods.append(fnn.ReLU())
    return fnn.Sequential(*mods)


def build_torch(torch, model):
    mods = []
    for m in model:
        if isinstance(m, fnn.Linear):
            t = torch.nn.Linear(m.in_features, m.out_features)
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(m.weight.data))
                t.bias.copy_(torch.from_numpy(m.bias.data))
            mods.append(t)
        else:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def fp_loop(model, x, y, steps):
    crit = fnn.CrossEntropyLoss()
    opt = foptim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def run():
        for _ in range(steps):
            opt.zero_grad()
            loss = crit(model(x), y)
            loss.backward()
            opt.step()
        return loss.item()
    return run


def torch_loop(torch, model, x, y, steps):
    crit = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def run():
        for _ in range(steps):
            opt.zero_grad()
            loss = crit(model(x), y)
            loss.backward()
            opt.step()
        return loss.item()
    return run


def timed(fn, steps):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / steps


@contextlib.contextmanager
def _cached_layer_kernels():
    """Replace the backend's layer kernels by lookups of their first result (same shapes every step)."""
    backend = fp.backends.current
    real = {name: getattr(backend, name) for name in ("linear_forward", "linear_backward")}
    cache = {}

    def cached(name):
        weight_at = 1 if name == "linear_forward" else 2  # the weight identifies the layer

        def call(*args):
            key = (name, id(args[weight_at]))
            if key not in cache:
                cache[key] = real[name](*args)
            return cache[key]
        return call

    for name in real:
        setattr(backend, name, cached(name))
    try:
        yield
    finally:
        for name, fn in real.items():
            setattr(backend, name, fn)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--overhead", action="store_true")
    args = ap.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    fp.set_num_threads(1)
    print(f"fusedprop backend: {fp.get_backend()}, threads: fusedprop 1, torch {torch.get_num_threads()}, "
          f"BLAS 1 (threadpoolctl)")
    with threadpool_limits(1):
        for batch, widths in CASES:
            fp.manual_seed(0)
            rng = np.random.default_rng(0)
            x = rng.standard_normal((batch, widths[0])).astype(np.float32)
            y = rng.integers(0, widths[-1], batch)
            model = build_fp(widths)
            tmodel = build_torch(torch, model)
            steps = args.steps if batch <= 32 else max(args.steps // 4, 10)
            runs = {"fusedprop": fp_loop(model, fp.tensor(x), y, steps),
                    "torch": torch_loop(torch, tmodel, torch.from_numpy(x), torch.from_numpy(y), steps)}
            for r in runs.values():  # warm up
                r()
            times = {k: [] for k in runs}
            for _ in range(args.repeats):  # interleaved
                for k, r in runs.items():
                    times[k].append(timed(r, steps))
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"batch {batch:4d} {'-'.join(map(str, widths)):>16}: fusedprop {med['fusedprop'] * 1e6:8.1f} us/step, "
                  f"torch {med['torch'] * 1e6:8.1f} us/step, torch/fusedprop = {med['torch'] / med['fusedprop']:.2f}x")
            if args.overhead and batch == CASES[0][0]:
                with _cached_layer_kernels():
                    runs["fusedprop"]()
                    overhead = statistics.median(timed(runs["fusedprop"], steps) for _ in range(args.repeats))
                print(f"{'':>28}  fusedprop overhead with cached layer kernels: {overhead * 1e6:8.1f} us/step")
            if args.profile and batch == CASES[0][0]:
                import cProfile
                import pstats
                prof = cProfile.Profile()
                prof.runcall(runs["fusedprop"])
                pstats.Stats(prof).sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main()
