"""Elementwise activations on 1e6 float32 elements: fusedprop (AVX2 and the
portable reference) vs NumPy vs PyTorch, interleaved in one process (best of
N, several rounds), then the Python call overhead on 8 elements.

    python tools/bench_activation.py [threads ...]     (default: 1 and all)
"""
from __future__ import annotations

import sys
import time

import numpy as np

from fusedprop import _core
from fusedprop.backends import numpy_backend as nb

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the PyTorch columns say so
    torch = None


def best(f, reps):
    t_best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f()
        t_best = min(t_best, time.perf_counter() - t)
    return t_best


def main(thread_counts):
    x = (np.random.default_rng(0).standard_normal(1_000_000) * 3).astype(np.float32)
    out = np.empty_like(x)
    xt = torch.from_numpy(x) if torch else None
    torch_fns = {"gelu": lambda: F.gelu(xt), "sigmoid": lambda: torch.sigmoid(xt), "tanh": lambda: torch.tanh(xt),
                 "gelu_tanh": lambda: F.gelu(xt, approximate="tanh"), "silu": lambda: F.silu(xt),
                 "relu": lambda: torch.relu(xt)} if torch else {}
    for nt in thread_counts:
        _core.set_num_threads(nt)
        if torch:
            torch.set_num_threads(nt)
        for name in ("gelu", "sigmoid", "tanh", "gelu_tanh", "silu", "relu"):
            res = {}

            def ref_isa(n=name):
                _core._set_activation_isa("reference")
                try:
                    _core.activation(x, n, 0.01, out)
                finally:
                    _core._set_activation_isa("auto")

            cands = [("fusedprop", lambda n=name: _core.activation(x, n, 0.01, out), 10),
                     ("fusedprop-ref", ref_isa, 3),
                     ("numpy", lambda n=name: nb.activation(x, n, 0.01, None), 3)]
            if torch:
                cands.append(("torch", torch_fns[name], 10))
            for _ in range(3):
                for label, f, reps in cands:
                    res[label] = min(res.get(label, float("inf")), best(f, reps))
            line = "  ".join(f"{k}={v * 1e3:.3f}ms" for k, v in res.items())
            print(f"threads={nt} {name:9s} {line}")
    s = np.ones(8, np.float32)
    o = np.empty_like(s)
    for label, f in [("activation(8 elems, out=)", lambda: _core.activation(s, "relu", 0.01, o)),
                     ("activation(8 elems)", lambda: _core.activation(s, "relu", 0.01, None)),
                     ("activation_grad(8 elems)", lambda: _core.activation_grad(s, s, "relu", 0.01))]:
        n = 20000
        t = time.perf_counter()
        for _ in range(n):
            f()
        print(f"{label}: {(time.perf_counter() - t) / n * 1e6:.2f} us per call")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, _core.default_num_threads()])
