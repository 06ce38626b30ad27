"""The Numba backend: the fused algorithms under ``@njit`` (no compiler needed).

Imported only when this backend is selected, so ``import fusedprop`` with
the compiled core never imports Numba. The kernels (``_numba_kernels``)
compile on their first call for each dtype and are cached on disk
(``cache=True``), so later processes load them instead of compiling.

Same contract, validation and saved tensors as ``numpy_backend``. Inputs of
any strides are accepted; those that are not C-contiguous are copied once
(the compiled core reads strides directly, this fallback does not), so that
each kernel has a single compiled variant per dtype. Products run in BLAS
through Numba's ``np.dot``; fp.set_num_threads sets the threads of the
elementwise passes (BLAS keeps its own setting, as with NumPy).
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np

from . import _numba_kernels as k
from . import _validation as v

NAME = "numba"

_CODES = {name: code for code, name in enumerate(v.ACTIVATIONS)}
assert _CODES["silu"] == k.SILU and _CODES["relu"] == k.RELU

# Elementwise passes smaller than this stay on one thread: waking the pool
# costs more than the work.
_PARALLEL_MIN = 1 << 15

_threads = 1
_EMPTY = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}
_EMPTY2 = {np.dtype(np.float32): np.empty((0, 0), np.float32), np.dtype(np.float64): np.empty((0, 0), np.float64)}


_tls = threading.local()  # the count last given to numba.set_num_threads on this thread


def set_num_threads(n: int) -> None:
    """Threads for the ``prange`` passes (capped at ``numba.config.NUMBA_NUM_THREADS``).

    The registry calls this on ``fp.set_num_threads(n)``. Numba's setting
    belongs to the calling thread, so every kernel call applies it (see
    ``_use_threads``) from whichever Python thread it runs on.
    """
    global _threads
    _threads = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    _tls.n = None
    _use_threads(_PARALLEL_MIN)


def get_num_threads() -> int:
    return _threads


def _use_threads(work: int) -> None:
    """Set Numba's threads for a pass over ``work`` elements (small ones: 1)."""
    n = _threads if work >= _PARALLEL_MIN else 1
    if getattr(_tls, "n", None) != n:  # numba.set_num_threads costs ~2 us; skip repeats
        numba.set_num_threads(n)
        _tls.n = n


def _c(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _rows(a: np.ndarray) -> np.ndarray:
    """(..., features) as C-contiguous (batch, features)."""
    return _c(a.reshape(math.prod(a.shape[:-1]), a.shape[-1]))


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
    _use_threads(xf.size)
    k.activation_forward(xf, _CODES[name], k.constants(x.dtype, negative_slope), yf)
    return _finish(yf, out, x.shape)


def activation_grad(grad_y, saved, name, negative_slope):
    v.check_activation_grad(grad_y, saved, name, negative_slope)
    gf = _flat(grad_y)
    sf = gf if name == "identity" else _flat(saved)
    dz = np.empty(gf.size, grad_y.dtype)
    _use_threads(gf.size)
    k.activation_backward(gf, sf, _CODES[name], k.constants(grad_y.dtype, negative_slope), dz)
    return dz.reshape(grad_y.shape)


# ---------------------------------------------------------------------- layers

def matmul(a, b, out):
    v.check_matmul(a, b, out)
    # np.dot in Numba takes C- or F-contiguous operands (BLAS transposes the F ones).
    a_ = a if a.flags.f_contiguous and not a.flags.c_contiguous else _c(a)
    b_ = b if b.flags.f_contiguous and not b.flags.c_contiguous else _c(b)
    shape = (a.shape[0], b.shape[1])
    c = _target(out, shape, a.dtype)
    k.matmul(a_, b_, c)
    return _finish(c, out, shape)


def _forward(x, weight, bias, activation, negative_slope, z, y):
    """z = x2 @ W.T + b, y = act(z) in place of the C-contiguous (batch, out) buffers."""
    x2 = _rows(x)
    w = _c(weight)
    has_bias = bias is not None
    b = _c(bias) if has_bias else _EMPTY[x.dtype]
    _use_threads(z.size)
    k.linear_forward(x2, w, b, has_bias, _CODES[activation], k.constants(x.dtype, negative_slope), z, y)


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
    x2 = _rows(x)
    w = _c(weight)
    m, n = g.shape
    identity = activation == "identity"
    s = g if identity else _rows(saved)
    dz = g if identity else np.empty((m, n), g.dtype)  # identity: dZ is dY, only read
    gw = np.empty(w.shape, g.dtype)
    gx = np.empty(x2.shape, g.dtype) if needs_input_grad else _EMPTY2[g.dtype]
    _use_threads(g.size)
    gb = k.linear_backward(g, s, x2, w, _CODES[activation], k.constants(g.dtype, negative_slope), dz, gw, gx,
                           bool(needs_input_grad))
    return (gx.reshape(x.shape) if needs_input_grad else None), gw, gb


def _apply_current_thread_setting() -> None:
    from .. import _runtime  # noqa: PLC0415 (import cycle: _runtime imports the registry)

    set_num_threads(_runtime.get_num_threads())


_apply_current_thread_setting()


# ------------------------------------------------------------------ optimizers
from .optim_numba import adam_step, sgd_step  # noqa: E402,F401  (fused per-parameter updates)
