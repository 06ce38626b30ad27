"""Threads, CPU information and the seeded generator.

Thread settings belong to the compiled core; without it they only record the
number (the Numba backend reads it, NumPy's BLAS is outside our control).
"""

from __future__ import annotations

import os
import platform

import numpy as np

from . import backends

_fallback_threads: int | None = None


def _core():
    return backends.core_module()


def get_num_threads() -> int:
    """Threads fusedprop's kernels use."""
    core = _core()
    if core is not None:
        return core.get_num_threads()
    if _fallback_threads is None:
        return _default_num_threads()
    return _fallback_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (``n >= 1``) in fusedprop's kernels."""
    global _fallback_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n}")
    core = _core()
    if core is not None:
        core.set_num_threads(int(n))
    _fallback_threads = int(n)
    backends.notify_num_threads(int(n))


def _default_num_threads() -> int:
    for var in ("FUSEDPROP_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_info() -> dict:
    """The CPU, the features it offers, the kernel in use and the threads."""
    core = _core()
    info: dict = {"backend": backends.get_backend(), "num_threads": get_num_threads()}
    if core is None:
        info.update(cpu=platform.processor() or "unknown", isa="none (compiled core not loaded)", features={})
        return info
    info["cpu"] = core.cpu_model_name()
    info["features"] = core.cpu_features()
    if hasattr(core, "gemm_kernel_info"):
        info.update(core.gemm_kernel_info())
    else:
        info["isa"] = "none (no GEMM kernels in this build)"
    return info


_generator = np.random.default_rng()

# Dropout's key (see nn.Dropout): the seed, and a generation that tells each
# Dropout module that manual_seed ran since its last forward (its step count
# then starts again at 0). Unseeded runs get a fresh random seed.
_dropout_seed = int.from_bytes(os.urandom(8), "little")
_seed_generation = 0
_next_stream = 0


def manual_seed(seed: int) -> np.random.Generator:
    """Seed fusedprop's generator (initialisation, ``randn``, shuffling in ``fit``)
    and Dropout's masks (their key is the seed, each module's number and its step count)."""
    global _generator, _dropout_seed, _seed_generation, _next_stream
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    _generator = np.random.default_rng(int(seed))
    _dropout_seed = int(seed) & 0xFFFF_FFFF_FFFF_FFFF
    _seed_generation += 1
    _next_stream = 0
    return _generator


def dropout_seed() -> int:
    """The 64-bit seed of every Dropout mask (``manual_seed``'s, else random per process)."""
    return _dropout_seed


def restore_dropout_seed(seed: int) -> None:
    """Dropout's seed as a checkpoint saved it (fit's resume; no other state changes)."""
    global _dropout_seed
    _dropout_seed = int(seed) & 0xFFFF_FFFF_FFFF_FFFF


def seed_generation() -> int:
    """How many times manual_seed has run."""
    return _seed_generation


def next_dropout_stream() -> int:
    """A number for a new Dropout module: its masks' Philox stream (counted from 0 after each manual_seed)."""
    global _next_stream
    stream = _next_stream
    _next_stream = (_next_stream + 1) & 0xFFFF_FFFF
    return stream


def generator() -> np.random.Generator:
    """The generator ``manual_seed`` last seeded."""
    return _generator
