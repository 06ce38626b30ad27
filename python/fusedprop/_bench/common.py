"""What every benchmark case is made of, the suite sizes, and shared helpers."""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

import fusedprop as fp

# (batch, in_features, out_features): DESIGN.md "Benchmarks".
STANDARD_SHAPES = [(8, 64, 64), (32, 128, 128), (64, 784, 256), (256, 1024, 1024), (1024, 1024, 1024),
                   (4096, 512, 512)]
ACTIVATIONS = ("relu", "gelu")
# One row through a large layer: bound by reading W once (the GEMV regime).
ONE_ROW_SHAPES = [(1, 784, 1024), (1, 1024, 1024)]
TRAIN_CONFIGS = [(32, (64, 128, 128, 10)), (128, (784, 256, 256, 10)), (1024, (784, 1024, 1024, 10))]
OPTIMIZERS = ("sgd", "adam")
GROUPS = ("gemm", "linear_fwd", "linear_fwd_bwd", "inference", "optim_update", "train_step", "digits")


@dataclass(frozen=True)
class Sizes:
    """Which shapes a run covers: "full" (the standard suite), "quick" or "smoke" (tests)."""

    mode: str
    layer_shapes: tuple
    square: tuple
    train_configs: tuple
    optim_shape: tuple
    digits_epochs: int
    digits_subset: Optional[int] = None  # rows of the digits data to use (smoke only)
    inference: tuple = ()  # (batch, net sizes)
    one_row: tuple = ()  # linear_fwd's one-row layers (relu): the weight stream's GB/s
    tabular: tuple = ()  # (batch, sizes, dropout p): train_step's BatchNorm + Dropout recipe (issue #23)


TABULAR_CONFIGS = ((256, (64, 512, 512, 1), 0.1),)
INFERENCE_NETS = ((64, 128, 128, 10), (784, 256, 256, 10), (784, 1024, 1024, 10))
INFERENCE_CONFIGS = tuple((b, net) for net in INFERENCE_NETS for b in (1, 64, 1024))
FULL = Sizes("full", tuple(STANDARD_SHAPES), (512, 1024, 2048), tuple(TRAIN_CONFIGS), (1024, 1024), 30,
             inference=INFERENCE_CONFIGS, one_row=tuple(ONE_ROW_SHAPES), tabular=TABULAR_CONFIGS)
QUICK = Sizes("quick", ((8, 64, 64), (64, 784, 256), (256, 1024, 1024)), (512,), tuple(TRAIN_CONFIGS[:2]),
              (1024, 1024), 2, inference=tuple((b, net) for net in INFERENCE_NETS[:2] for b in (1, 64)),
              one_row=tuple(ONE_ROW_SHAPES[1:]), tabular=TABULAR_CONFIGS)
SMOKE = Sizes("smoke", ((4, 8, 8), (5, 7, 3)), (16,), ((8, (8, 16, 16, 4)),), (16, 16), 1, 400,
              inference=((1, (8, 16, 16, 4)), (5, (8, 16, 16, 4))), one_row=((1, 64, 32),),
              tabular=((8, (8, 16, 16, 1), 0.1),))
SIZES = {"full": FULL, "quick": QUICK, "smoke": SMOKE}


@dataclass
class Contender:
    """One way to compute a case. ``make()`` does the setup (outside the timing)
    and returns ``(run, observe)``: ``run()`` is what is timed, ``observe(r)``
    turns the first call's result into what the case's check compares."""

    name: str
    family: str  # "fusedprop", "numpy", "torch" or "sklearn": the speed-up columns use this
    make: Optional[Callable[[], tuple]] = None
    unavailable: Optional[str] = None
    backend: Optional[str] = None  # fusedprop functional backend to activate around the calls
    only_threads: Optional[int] = None  # timed at this thread count only (else unavailable, with the note)
    only_threads_note: str = ""


@dataclass
class Case:
    group: str
    label: str
    dtype: str
    flops: Optional[float]
    contenders: list
    check: Callable[[Any], tuple]  # observed -> (error, note); error <= tol is a pass
    tol: float
    stateful: bool = False  # run() changes state: check a fresh instance's first call
    params: dict = field(default_factory=dict)


def rel_err(actual, expected) -> float:
    """Normwise relative error ||a - e|| / ||e|| (inf for a wrong shape or a NaN)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return math.inf
    d = float(np.linalg.norm((a - e).ravel()))
    n = float(np.linalg.norm(e.ravel()))
    err = d / n if n > 0 else d
    return err if math.isfinite(err) else math.inf


def rel_err_all(actual_seq, expected_seq) -> float:
    if actual_seq is None or len(actual_seq) != len(expected_seq):
        return math.inf
    return max((rel_err(a, e) for a, e in zip(actual_seq, expected_seq)), default=0.0)


def tol_for(dtype) -> float:
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-10


def optional(module: str):
    """(module, None) or (None, "not installed")."""
    try:
        return importlib.import_module(module), None
    except ImportError as exc:
        return None, f"not installed ({exc})"


_backend_status: dict = {}


def backend_unavailable(name: str) -> Optional[str]:
    """None when fusedprop's backend ``name`` runs here, else why not."""
    if name not in _backend_status:
        reason = None
        if name not in fp.available_backends():
            reason = "backend not available here" + (
                " (no compiled core)" if name == "cpp" else " (Numba is not installed)" if name == "numba" else "")
        else:
            try:
                with fp.use_backend(name):
                    pass
            except Exception as exc:  # e.g. the backend module is not in this build
                reason = f"not available in this build: {type(exc).__name__}: {exc}"
        _backend_status[name] = reason
    return _backend_status[name]


def fusedprop_backend_contenders(factory: Callable[[], tuple]) -> list:
    """One contender per fusedprop backend, each running ``factory``'s closure."""
    out = []
    for name in fp.backends.BACKENDS:
        reason = backend_unavailable(name)
        out.append(Contender(f"fusedprop[{name}]", "fusedprop", None if reason else factory, reason, backend=name))
    return out


def missing_api(*names: str) -> Optional[str]:
    """None when fusedprop has every public name (dotted: "nn.Sequential"), else the reason."""
    for dotted in names:
        obj = fp
        for part in dotted.split("."):
            if not hasattr(obj, part):
                try:
                    obj = importlib.import_module(f"{obj.__name__}.{part}")
                    continue
                except ImportError:
                    return f"not available in this build: fusedprop.{dotted} is missing"
            obj = getattr(obj, part)
    return None


def torch_contender(name: str, factory: Callable[[], tuple]) -> Contender:
    torch, reason = optional("torch")
    return Contender(name, "torch", None if reason else factory, reason)


# The report runs JAX single-threaded, so JAX rows exist at 1 thread only.
# The XLA_FLAGS the issue tracker's comparisons use are not enough: JAX 0.10's
# CPU client still runs a step on every CPU (measured: two threads sharing a
# 784-1024-1024-10 step's CPU time, half the wall time). It sizes its thread
# pool from the process's CPU affinity when the client is made (jax-ml/jax
# #1539), so the client is made while the process may use one CPU only.
JAX_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
JAX_NOTE = "JAX runs single-threaded in this report (its CPU client is made on one CPU)"
_jax_started = False


def _start_jax_single_threaded() -> None:
    """Makes JAX's CPU client (and its thread pool) while this process is
    pinned to one CPU, then restores the affinity: JAX's pool threads stay on
    that CPU; every other thread gets its CPUs back."""
    global _jax_started
    if _jax_started:
        return
    _jax_started = True
    import os

    import jax
    import jax.numpy as jnp
    if not hasattr(os, "sched_setaffinity"):  # not Linux: the flags alone
        return
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        jax.jit(lambda a: a @ a)(jnp.ones((8, 8))).block_until_ready()
    finally:
        os.sched_setaffinity(0, cpus)


def jax_contender(name: str, factory: Callable[[], tuple], extra: tuple = ()) -> Contender:
    import os
    import sys
    if "jax" not in sys.modules and JAX_FLAGS not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + JAX_FLAGS).strip()
    reason = None
    for module in ("jax",) + tuple(extra):
        _, reason = optional(module)
        if reason:
            break
    if reason is None:
        _start_jax_single_threaded()
    return Contender(name, "jax", None if reason else factory, reason, only_threads=1, only_threads_note=JAX_NOTE)
