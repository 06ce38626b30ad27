"""Run by tests/test_distributed.py under ``mpiexec -n P``: data-parallel
training against the one-process run of the same global batches, which
every rank also computes itself (comm=None) as the reference.

    python distributed_worker.py parity [DTYPE]   # errors, TrainStep and fit over the cases
    python distributed_worker.py resume DIR       # fit with checkpoints in DIR, resumed
    python distributed_worker.py single           # without mpiexec: one rank against comm=None
    python distributed_worker.py raise R   # rank R raises in fit's 2nd epoch
    python distributed_worker.py kill R    # ... is killed (SIGKILL) there
    python distributed_worker.py raise-step R   # ... in a custom TrainStep loop

Rank 0 prints one JSON line per case: the largest error relative to the
reference's magnitude, and whether every rank held the same bits.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np
from mpi4py import MPI

import fusedprop as fp
from fusedprop import nn, optim

COMM = MPI.COMM_WORLD
LOSSES = {
    "mse": lambda: nn.MSELoss(),
    "bce_with_logits": lambda: nn.BCEWithLogitsLoss(),
    "cross_entropy": lambda: nn.CrossEntropyLoss(),
    "cross_entropy_smoothed_sum": lambda: nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum"),
}
OPTIMIZERS = {
    "sgd_momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "adam": lambda p: optim.Adam(p, lr=1e-2),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2),
}


def model(dtype):
    fp.manual_seed(0)
    return nn.Sequential(nn.Linear(7, 16, dtype=dtype), nn.ReLU(), nn.Linear(16, 12, dtype=dtype), nn.Tanh(),
                         nn.Linear(12, 5, bias=False, dtype=dtype), nn.Linear(5, 3, dtype=dtype))


def data(n, loss, dtype, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 7)).astype(dtype)
    if loss.startswith("cross_entropy"):
        return x, rng.integers(0, 3, n)
    if loss == "bce_with_logits":
        return x, (rng.random((n, 3)) > 0.5).astype(dtype)
    return x, rng.standard_normal((n, 3)).astype(dtype)


def rel_err(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30)) if want.size else 0.0


def digest(m) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in m.parameters():
        h.update(np.ascontiguousarray(p.data).view(np.uint8))
    return h.hexdigest()


def same_on_every_rank(value) -> bool:
    return len(set(COMM.allgather(value))) == 1


def report(case: str, **values) -> None:
    if COMM.rank == 0:
        print(json.dumps({"case": case, **values}), flush=True)


def train_step_case(dtype, loss, opt):
    """Custom loop: batch sizes that leave ranks empty (1, 2) or uneven (7, 10)."""
    x, y = data(40, loss, dtype)
    dist, ref = model(dtype), model(dtype)
    step = fp.TrainStep(dist, LOSSES[loss](), OPTIMIZERS[opt](dist.parameters()), comm=COMM)
    step_ref = fp.TrainStep(ref, LOSSES[loss](), OPTIMIZERS[opt](ref.parameters()))
    loss_err, same, start = 0.0, True, 0
    for b in (10, 7, 1, 2, 10, 10):
        got, want = step(x[start:start + b], y[start:start + b]), step_ref(x[start:start + b], y[start:start + b])
        loss_err = max(loss_err, rel_err(got, want))
        same &= same_on_every_rank((digest(dist), got))
        start += b
    err = max(rel_err(p.data, q.data) for p, q in zip(dist.parameters(), ref.parameters()))
    grad_err = max(rel_err(p.grad, q.grad) for p, q in zip(dist.parameters(), ref.parameters()))
    report(f"step/{np.dtype(dtype).name}/{loss}/{opt}", dtype=np.dtype(dtype).name, err=err, grad_err=grad_err,
           loss_err=loss_err, same=bool(same))


def fit_case(dtype, loss, opt, shuffle):
    """fit: 45 rows in batches of 16 (the last one 13), validation on 11 rows."""
    x, y = data(45, loss, dtype)
    xv, yv = data(11, loss, dtype, seed=2)
    dist, ref = model(dtype), model(dtype)
    opt_d, opt_r = OPTIMIZERS[opt](dist.parameters()), OPTIMIZERS[opt](ref.parameters())
    fp.manual_seed(5)
    h_dist = fp.fit(dist, x, y, LOSSES[loss](), opt_d, epochs=2, batch_size=16, shuffle=shuffle,
                    validation_data=(xv, yv), progress=False, comm=COMM)
    fp.manual_seed(5)
    h_ref = fp.fit(ref, x, y, LOSSES[loss](), opt_r, epochs=2, batch_size=16, shuffle=shuffle,
                   validation_data=(xv, yv), progress=False)
    err = max(rel_err(p.data, q.data) for p, q in zip(dist.parameters(), ref.parameters()))
    hist_err = max(rel_err(h_dist[k], h_ref[k]) for k in h_ref)
    same = same_on_every_rank((digest(dist), json.dumps(h_dist)))
    report(f"fit/{np.dtype(dtype).name}/{loss}/{opt}/shuffle={shuffle}", dtype=np.dtype(dtype).name, err=err,
           loss_err=hist_err, same=bool(same), keys=sorted(h_dist) == sorted(h_ref))


def errors() -> None:
    """Errors raised on every rank, with no rank updated and none left waiting."""
    x, y = data(20, "cross_entropy", np.float64)
    m = model(np.float64)
    step = fp.TrainStep(m, nn.CrossEntropyLoss(), optim.SGD(m.parameters(), lr=0.1), comm=COMM)
    before = digest(m)
    seen = {}
    try:
        fp.TrainStep(m, nn.CrossEntropyLoss(), optim.SGD(m.parameters(), lr=0.1), comm="COMM_WORLD")
    except TypeError as e:
        seen["not_a_comm"] = "comm must be an mpi4py intracommunicator" in str(e)
    try:  # a different global batch on each rank
        step(x[:10 + COMM.rank], y[:10 + COMM.rank])
    except ValueError as e:
        seen["batch_mismatch"] = "same global batch" in str(e)
    bad = y.copy()
    bad[-1] = 3  # only the last rank's slice holds it
    try:
        step(x, bad)
    except ValueError as e:
        seen["class_range"] = "out of range" in str(e)
    if COMM.rank == COMM.size - 1:
        def failing(xs, ts):
            raise FloatingPointError("this rank's gradients fail")
        step._local_grads = failing
    try:
        step(x, y)
    except (FloatingPointError, RuntimeError) as e:
        seen["rank_failed"] = ("fail" in str(e)) and (COMM.rank == COMM.size - 1) == isinstance(e, FloatingPointError)
    step.__dict__.pop("_local_grads", None)
    seen["unchanged"] = digest(m) == before
    step(x, y)  # and the step still works after all that
    seen["trains_after"] = digest(m) != before and same_on_every_rank(digest(m))
    report("errors", **{k: bool(all(COMM.allgather(v))) for k, v in seen.items()})


def resume(folder: str) -> None:
    """fit with checkpoints for 2 epochs, then resumed to 3 on every rank,
    against 3 uninterrupted one-process epochs."""
    x, y = data(45, "cross_entropy", np.float32)
    histories = []
    for epochs, kw in ((2, {}), (3, {"resume": True})):
        m = model(np.float32)
        opt = optim.Adam(m.parameters(), lr=1e-2)
        fp.manual_seed(7)
        histories.append(fp.fit(m, x, y, nn.CrossEntropyLoss(), opt, epochs=epochs, batch_size=16,
                                progress=False, checkpoint=folder, checkpoint_every=2, comm=COMM, **kw))
    ref = model(np.float32)
    fp.manual_seed(7)
    h_ref = fp.fit(ref, x, y, nn.CrossEntropyLoss(), optim.Adam(ref.parameters(), lr=1e-2), epochs=3, batch_size=16,
                   progress=False)
    err = max(rel_err(p.data, q.data) for p, q in zip(m.parameters(), ref.parameters()))
    report("resume", dtype="float32", err=err, loss_err=rel_err(histories[1]["loss"], h_ref["loss"]),
           same=bool(same_on_every_rank((digest(m), json.dumps(histories[1])))),
           resumed=histories[1]["loss"][:2] == histories[0]["loss"])


def single() -> None:
    """Without mpiexec: a one-rank COMM_WORLD gives the bits of comm=None
    (the eager update runs the compiled update's kernels), and fit's errors
    are raised as without comm (nobody is left waiting)."""
    for dtype in (np.float64, np.float32):
        for loss in LOSSES:
            for opt in OPTIMIZERS:
                x, y = data(40, loss, dtype)
                runs = []
                for comm in (COMM, None):
                    m = model(dtype)
                    step = fp.TrainStep(m, LOSSES[loss](), OPTIMIZERS[opt](m.parameters()), comm=comm)
                    losses = [step(x[i:i + 10], y[i:i + 10]) for i in range(0, 40, 10)]
                    runs.append((digest(m), losses))
                print(json.dumps({"case": f"{np.dtype(dtype).name}/{loss}/{opt}", "same": runs[0] == runs[1]}))
    m = model(np.float64)
    try:
        fp.fit(m, *data(8, "mse", np.float64), nn.MSELoss(), optim.SGD(m.parameters()), epochs=0, comm=COMM)
    except ValueError as e:
        print("ValueError:", e)


def parity(dtypes=("float64", "float32")) -> None:
    for dtype in map(np.dtype, dtypes):
        for loss in LOSSES:
            for opt in OPTIMIZERS:
                train_step_case(dtype, loss, opt)
                fit_case(dtype, loss, opt, shuffle=(opt != "adam"))


def raise_in_fit(bad_rank: int, kill: bool = False) -> None:
    x, y = data(64, "mse", np.float64)
    m = model(np.float64)
    opt = optim.SGD(m.parameters(), lr=0.01)
    steps = [0]
    original = opt.step

    def failing_step(closure=None):
        steps[0] += 1
        if COMM.rank == bad_rank and steps[0] == 5:  # the 2nd epoch's first step
            if kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("this rank fails on purpose")
        return original(closure)

    opt.step = failing_step
    fp.fit(m, x, y, nn.MSELoss(), opt, epochs=3, batch_size=16, progress=False, comm=COMM)


def raise_in_step_loop(bad_rank: int) -> None:
    x, y = data(64, "mse", np.float64)
    m = model(np.float64)
    step = fp.TrainStep(m, nn.MSELoss(), optim.SGD(m.parameters(), lr=0.01), comm=COMM)
    for i in range(10):
        if COMM.rank == bad_rank and i == 3:
            raise RuntimeError("this rank fails on purpose, outside TrainStep")
        step(x[8 * i:8 * i + 8], y[8 * i:8 * i + 8])


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "parity":
        errors()
        parity(*[sys.argv[2:3]] if sys.argv[2:3] else [])
    elif mode == "single":
        single()
    elif mode == "resume":
        resume(sys.argv[2])
    elif mode in ("raise", "kill"):
        raise_in_fit(int(sys.argv[2]), kill=mode == "kill")
    elif mode == "raise-step":
        raise_in_step_loop(int(sys.argv[2]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
