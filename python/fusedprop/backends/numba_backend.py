"""The Numba backend: the fused algorithms under ``@njit`` (no compiler needed).

Imported only when this backend is selected, so ``import fusedprop`` with
the compiled core never imports Numba. The kernels (``_numba_kernels``)
compile on their first call for each dtype and are cached on disk
(``cache=True``), so later processes load them instead of compiling.

Same contract, validation and saved tensors as ``numpy_backend``. The
elementwise passes (bias + activation; dZ + bias gradient; activations) are
Numba kernels over C-contiguous buffers: inputs they read that are not
C-contiguous are copied once, so each kernel has one compiled variant per
dtype. ``fp.set_num_threads`` sets their threads.

The products run in NumPy's BLAS (``np.matmul`` with ``out=``), not in
Numba's ``np.dot``: Numba's goes through SciPy's BLAS, a second OpenBLAS
with its own thread pool, and when a program alternates it with NumPy's
(any NumPy matmul between layers) the two pools spin against each other:
on a shared 2-core machine, a (64, 784, 256) layer followed by a NumPy
matmul took a median of 116 ms that way, against 0.5 ms with one BLAS.
One BLAS also means one setting (``OPENBLAS_NUM_THREADS``, threadpoolctl)
governs all products, and SciPy is not needed. Operands BLAS cannot take (neither C- nor F-contiguous) are
copied first.
"""

from __future__ import annotations

import math
import os
import threading

import numba
import numpy as np

from . import _numba_kernels as k
from . import _validation as v
from ._matmul import matmul as _matmul

NAME = "numba"

_CODES = {name: code for code, name in enumerate(v.ACTIVATIONS)}
assert _CODES["silu"] == k.SILU and _CODES["relu"] == k.RELU

# Elementwise passes smaller than this (in elements) stay on one thread.
# Cheap activations are memory-bound: threads gain little (a few percent of
# the layer, next to its GEMM), while a parallel region whose thread is
# descheduled waits at the barrier -- on a busy 2-core machine a (256, 1024)
# relu pass took 15 ms in parallel against 0.2 ms serially. Activations that
# call exp/erf/tanh (10-50 ns an element, scalar libm) profit much sooner.
_PARALLEL_MIN_CHEAP = 1 << 20
_PARALLEL_MIN = 1 << 15
_CHEAP = frozenset({"identity", "relu", "leaky_relu"})

_threads = 1
_EMPTY = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}
_EMPTY2 = {np.dtype(np.float32): np.empty((0, 0), np.float32), np.dtype(np.float64): np.empty((0, 0), np.float64)}


_tls = threading.local()  # the count last given to numba.set_num_threads on this thread


def set_num_threads(n: int) -> None:
    """Threads for the ``prange`` passes (capped at ``numba.config.NUMBA_NUM_THREADS``).

    The registry calls this on ``fp.set_num_threads(n)``. Numba's setting
    belongs to the calling thread, so every kernel call applies it (see
    ``_pick``) from whichever Python thread it runs on.
    """
    global _threads
    _threads = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(_threads)
    _tls.n = _threads


def get_num_threads() -> int:
    return _threads


def _pick(serial, parallel, work: int, activation: str):
    """The kernel for a pass of ``activation`` over ``work`` elements: ``parallel``
    (after setting Numba's thread count on this Python thread) when it is worth it."""
    global _parallel_used
    if _threads == 1 or _serial_only or work < (_PARALLEL_MIN_CHEAP if activation in _CHEAP else _PARALLEL_MIN):
        return serial
    if getattr(_tls, "n", None) != _threads:  # numba.set_num_threads costs ~2 us; skip repeats
        numba.set_num_threads(_threads)
        _tls.n = _threads
    _parallel_used = True
    return parallel


# Numba's "omp" threading layer (GNU OpenMP; Numba's default without TBB)
# terminates a forked child that starts a parallel region once the parent
# has launched the layer ("fork() called from a process already using GNU
# OpenMP") -- and loading this backend launches it (numba.set_num_threads).
# Such children (multiprocessing's default start method on Linux) run the
# elementwise passes on one thread instead.
_parallel_used = False  # for the tests: a parallel kernel ran in this process
_serial_only = False


def _after_fork_in_child() -> None:
    global _serial_only
    try:
        layer = numba.threading_layer()
    except ValueError:  # never launched in the parent: the child may launch it
        return
    if layer == "omp":
        _serial_only = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

# Numba's "workqueue" layer (its last resort, e.g. on macOS without libomp
# or TBB) aborts the process when two threads launch parallel kernels at
# once. There, one parallel kernel runs at a time; a call that finds one
# running takes the serial kernel. Set after the layer is launched (below).
_workqueue = False
_workqueue_lock = threading.Lock()


def _run(serial, parallel, work: int, activation: str, *args):
    """Run the pass with the kernel ``_pick`` chooses."""
    kernel = _pick(serial, parallel, work, activation)
    if kernel is serial or not _workqueue:
        return kernel(*args)
    if not _workqueue_lock.acquire(blocking=False):
        return serial(*args)
    try:
        return parallel(*args)
    finally:
        _workqueue_lock.release()


def _c(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _rows(a: np.ndarray) -> np.ndarray:
    """(..., features) as C-contiguous (batch, features)."""
    return _c(a.reshape(math.prod(a.shape[:-1]), a.shape[-1]))


def _blas(a: np.ndarray) -> np.ndarray:
    """``a`` if BLAS can read it in place (C or F order), else a C-contiguous copy."""
    return a if a.flags.c_contiguous or a.flags.f_contiguous else np.ascontiguousarray(a)


def _flat(a: np.ndarray) -> np.ndarray:
    return _c(a.reshape(-1))


def _target(out, shape, dtype):
    """A C-contiguous buffer of ``shape``: a view of ``out`` when possible."""
    if out is not None and out.flags.c_contiguous:
        return out.reshape(shape)
    return np.empty(shape, dtype)


def _finish(buf, out, shape):
    """The result: ``buf`` reshaped, or ``out`` (filled from ``buf`` unless ``buf`` is a view of it)."""
    if out is None:
        return buf.reshape(shape)
    if not out.flags.c_contiguous:  # _target gave a separate buffer
        out[...] = buf.reshape(shape)
    return out


# ----------------------------------------------------------------- activations

def activation(x, name, negative_slope, out):
    v.check_activation_call(x, name, negative_slope, out)
    xf = _flat(x)
    yf = _target(out, (xf.size,), x.dtype)
    _run(k.activation_forward, k.activation_forward_parallel, xf.size, name,
         xf, _CODES[name], k.constants(x.dtype, negative_slope), yf)
    return _finish(yf, out, x.shape)


def activation_grad(grad_y, saved, name, negative_slope):
    v.check_activation_grad(grad_y, saved, name, negative_slope)
    gf = _flat(grad_y)
    sf = gf if name == "identity" else _flat(saved)
    dz = np.empty(gf.size, grad_y.dtype)
    _run(k.activation_backward, k.activation_backward_parallel, gf.size, name,
         gf, sf, _CODES[name], k.constants(grad_y.dtype, negative_slope), dz)
    return dz.reshape(grad_y.shape)


# ---------------------------------------------------------------------- layers

def matmul(a, b, out):
    v.check_matmul(a, b, out)
    return _matmul(_blas(a), _blas(b), out=out)


def _forward(x, weight, bias, activation, negative_slope, z, y):
    """z = x2 @ W.T + b, y = act(z) into the C-contiguous (batch, out) buffers (y may be z)."""
    _matmul(_blas(x.reshape(z.shape[0], x.shape[-1])), _blas(weight).T, out=z)  # zeros if in_features == 0
    has_bias = bias is not None
    b = _c(bias) if has_bias else _EMPTY[x.dtype]
    _run(k.bias_activation, k.bias_activation_parallel, z.size, activation,
         z, b, has_bias, _CODES[activation], k.constants(x.dtype, negative_slope), y)


def linear(x, weight, bias, activation, negative_slope, out):
    y_shape = v.check_linear("linear", x, weight, bias, activation, negative_slope)
    if out is not None:
        v.check_out("linear", out, y_shape, x.dtype, {"x": x, "weight": weight, "bias": bias})
    shape2 = (math.prod(y_shape[:-1]), y_shape[-1])
    y = _target(out, shape2, x.dtype)
    _forward(x, weight, bias, activation, negative_slope, y, y)
    return _finish(y, out, y_shape)


def linear_forward(x, weight, bias, activation, negative_slope):
    y_shape = v.check_linear("linear_forward", x, weight, bias, activation, negative_slope)
    shape2 = (math.prod(y_shape[:-1]), y_shape[-1])
    z = np.empty(shape2, x.dtype)
    if activation in v.SAVES_PREACTIVATION:
        y = np.empty(shape2, x.dtype)
        _forward(x, weight, bias, activation, negative_slope, z, y)
        return y.reshape(y_shape), z.reshape(y_shape)
    _forward(x, weight, bias, activation, negative_slope, z, z)  # in place: Y over Z
    y = z.reshape(y_shape)
    return y, (y if activation in v.SAVES_OUTPUT else None)


def linear_backward(grad_y, x, weight, saved, activation, negative_slope, needs_input_grad):
    v.check_linear_backward(grad_y, x, weight, saved, activation, negative_slope)
    g = _rows(grad_y)
    m, n = g.shape
    identity = activation == "identity"
    s = g if identity else _rows(saved)
    # identity: dZ is dY itself, which the kernel only sums (its dz is then a dummy).
    dz = g if identity else np.empty((m, n), g.dtype)
    dz_out = _EMPTY2[g.dtype] if identity else dz
    grad_bias = _run(k.dz_and_bias_grad, k.dz_and_bias_grad_parallel, g.size, activation,
                     g, s, _CODES[activation], k.constants(g.dtype, negative_slope), dz_out)
    x2 = _blas(x.reshape(m, x.shape[-1]))
    grad_weight = _matmul(dz.T, x2)  # zeros for an empty batch
    grad_x = _matmul(dz, _blas(weight)).reshape(x.shape) if needs_input_grad else None
    return grad_x, grad_weight, grad_bias


def _apply_current_thread_setting() -> None:
    from .. import _runtime  # noqa: PLC0415 (import cycle: _runtime imports the registry)

    set_num_threads(_runtime.get_num_threads())  # also launches Numba's threading layer


_apply_current_thread_setting()
_workqueue = numba.threading_layer() == "workqueue"


# ------------------------------------------------------------------ optimizers
from .optim_numba import adam_step, sgd_step  # noqa: E402,F401  (fused per-parameter updates)

# ----------------------------------------------------- dropout and norms
from .norm_numba import (  # noqa: E402,F401
    batch_norm_backward, batch_norm_eval, batch_norm_forward, batch_norm_update, dropout, layer_norm_backward,
    layer_norm_forward,
)
