"""Smoke test of an INSTALLED fusedprop (a wheel), against NumPy float64 oracles.

Run by tools/build_wheels.sh in a fresh venv with no compiler reachable, and
by cibuildwheel's test-command. It must not import fusedprop from a source
tree: it fails if the package found is not under site-packages, or if the
compiled core did not load (a silent fall-back to NumPy would pass every
numeric check and prove nothing about the wheel).

Prints one line: the import time, NumPy's version, the ISA in use, "ok";
exits non-zero on any failure. Needs only NumPy.
"""

from __future__ import annotations

import sys
import time

t0 = time.perf_counter()
import fusedprop as fp  # noqa: E402  (the import is what is timed)

import_ms = (time.perf_counter() - t0) * 1e3

import numpy as np  # noqa: E402

from fusedprop import functional as F  # noqa: E402
from fusedprop import nn, optim  # noqa: E402


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"wheel smoke FAILED: {what}")


def close(got, want, what: str, tol: float = 1e-5) -> None:
    got = np.asarray(got, dtype=np.float64)
    check(got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}")
    err = float(np.max(np.abs(got - want) / (1.0 + np.abs(want)))) if want.size else 0.0
    check(err <= tol, f"{what}: relative error {err:.3g} > {tol:g}")


def main() -> None:
    check("site-packages" in fp.__file__, f"fusedprop imported from {fp.__file__}, not an installed wheel")
    check(fp.get_backend() == "cpp", f"backend is {fp.get_backend()!r}: the compiled core did not load")
    rng = np.random.default_rng(20)

    # 1. One fused layer: relu(x @ w.T + b), float32, against float64.
    x = rng.standard_normal((37, 50)).astype(np.float32)
    w = rng.standard_normal((23, 50)).astype(np.float32)
    b = rng.standard_normal(23).astype(np.float32)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    close(F.linear(x, w, b, "relu"), np.maximum(x64 @ w64.T + b64, 0.0), "F.linear relu")

    # 2. One TrainStep (Linear-Tanh-Linear, MSE, SGD) against the hand-derived
    #    float64 step: the loss before the update and the updated parameters.
    model = nn.Sequential(nn.Linear(50, 16), nn.Tanh(), nn.Linear(16, 3))
    w1, b1, w2, b2 = (p.data.astype(np.float64) for p in model.parameters())
    target = rng.standard_normal((37, 3)).astype(np.float32)
    lr = 0.1
    step = fp.TrainStep(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=lr))
    loss = step(x, target)
    h = np.tanh(x64 @ w1.T + b1)
    out = h @ w2.T + b2
    diff = out - target.astype(np.float64)
    close(np.float64(loss), np.float64(np.mean(diff**2)), "TrainStep loss")
    d_out = 2.0 * diff / diff.size
    d_z1 = (d_out @ w2) * (1.0 - h**2)
    want = (w1 - lr * d_z1.T @ x64, b1 - lr * d_z1.sum(0), w2 - lr * d_out.T @ h, b2 - lr * d_out.sum(0))
    for p, ref, name in zip(model.parameters(), want, ("w1", "b1", "w2", "b2")):
        close(p.data, ref, f"TrainStep updated {name}")

    # 3. A Predictor of the trained model against its float64 forward pass.
    w1, b1, w2, b2 = (p.data.astype(np.float64) for p in model.parameters())
    model.eval()
    close(fp.Predictor(model)(x), np.tanh(x64 @ w1.T + b1) @ w2.T + b2, "Predictor")

    isa = fp.cpu_info()["isa"]
    print(f"import {import_ms:.0f} ms, numpy {np.__version__}, isa {isa}: ok")


if __name__ == "__main__":
    main()
    sys.exit(0)
