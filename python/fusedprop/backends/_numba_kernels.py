"""The Numba kernels behind ``numba_backend`` (imported only with that backend).

Every kernel is ``@njit(cache=True, nogil=True)`` without a signature, so it
compiles on its first call for each dtype (float32, float64) and is loaded
from Numba's on-disk cache afterwards. The Python side hands over
C-contiguous arrays only, which keeps one compiled variant per dtype, and
sets Numba's thread count before the call: ``numba.set_num_threads`` inside
a kernel would make it uncachable (it reaches the threading layer through a
ctypes pointer).

Arithmetic stays in the input's dtype: a Python float or int literal mixed
with a float32 value would promote it to float64, so every constant comes in
the small array ``c`` of the input's dtype (see ``constants``).

Layer kernels: the products run in NumPy's BLAS (``numba_backend`` calls
``np.matmul`` with ``out=``; see there why not Numba's ``np.dot``); the
elementwise work is one pass over the rows, ``prange`` when large: bias +
activation after the forward product, dZ and the bias gradient before the
backward products. The bias gradient is summed in fixed chunks of
``DB_CHUNK`` rows whose partial sums are added in order, so it does not
depend on the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Activation codes (the order of _validation.ACTIVATIONS).
IDENTITY, RELU, LEAKY_RELU, SIGMOID, TANH, GELU, GELU_TANH, SILU = range(8)

# Indices into the constants array.
ZERO, ONE, HALF, SLOPE, SQRT_HALF, INV_SQRT_2PI, SQRT_2_OVER_PI, KAPPA, KAPPA3 = range(9)

DB_CHUNK = 32  # rows per partial sum of the bias gradient (fixed: determinism)

_constants_cache: dict = {}


def constants(dtype: np.dtype, slope: float) -> np.ndarray:
    """The constants every kernel reads, in ``dtype``."""
    key = (dtype.char, float(slope))
    c = _constants_cache.get(key)
    if c is None:
        c = np.array([0.0, 1.0, 0.5, slope, math.sqrt(0.5), 1.0 / math.sqrt(2.0 * math.pi),
                      math.sqrt(2.0 / math.pi), 0.044715, 3 * 0.044715], dtype=dtype)
        if len(_constants_cache) > 64:
            _constants_cache.clear()
        _constants_cache[key] = c
    return c


# -------------------------------------------------------------- scalar math

@njit(cache=True, nogil=True)
def _sigmoid(v, c):
    # exp of a non-positive number only, so nothing overflows; NaN stays NaN.
    e = math.exp(-abs(v))
    if v >= c[ZERO]:
        return c[ONE] / (c[ONE] + e)
    return e / (c[ONE] + e)


@njit(cache=True, nogil=True)
def _gelu(v, c):
    return c[HALF] * v * (c[ONE] + math.erf(v * c[SQRT_HALF]))


@njit(cache=True, nogil=True)
def _gelu_tanh(v, c):
    return c[HALF] * v * (c[ONE] + math.tanh(c[SQRT_2_OVER_PI] * (v + c[KAPPA] * v * v * v)))


@njit(cache=True, nogil=True)
def _gelu_grad(z, c):
    cdf = c[HALF] * (c[ONE] + math.erf(z * c[SQRT_HALF]))
    pdf = c[INV_SQRT_2PI] * math.exp(-c[HALF] * z * z)
    return cdf + z * pdf


@njit(cache=True, nogil=True)
def _gelu_tanh_grad(z, c):
    z2 = z * z
    t = math.tanh(c[SQRT_2_OVER_PI] * (z + c[KAPPA] * z2 * z))
    return c[HALF] * (c[ONE] + t) + c[HALF] * z * (c[ONE] - t * t) * c[SQRT_2_OVER_PI] * (c[ONE] + c[KAPPA3] * z2)


@njit(cache=True, nogil=True)
def _silu_grad(z, c):
    s = _sigmoid(z, c)
    return s * (c[ONE] + z * (c[ONE] - s))


# ------------------------------------------------------------ row functions

@njit(cache=True, nogil=True)
def _forward_row(z, act, c, y):
    """y[j] = act(z[j]) along one row (y may be z itself)."""
    n = z.shape[0]
    zero = c[ZERO]
    if act == IDENTITY:
        for j in range(n):
            y[j] = z[j]
    elif act == RELU:
        for j in range(n):
            v = z[j]
            y[j] = zero if v < zero else v  # NaN stays NaN
    elif act == LEAKY_RELU:
        slope = c[SLOPE]
        for j in range(n):
            v = z[j]
            y[j] = v if v > zero else v * slope
    elif act == SIGMOID:
        for j in range(n):
            y[j] = _sigmoid(z[j], c)
    elif act == TANH:
        for j in range(n):
            y[j] = math.tanh(z[j])
    elif act == GELU:
        for j in range(n):
            y[j] = _gelu(z[j], c)
    elif act == GELU_TANH:
        for j in range(n):
            y[j] = _gelu_tanh(z[j], c)
    else:  # SILU
        for j in range(n):
            v = z[j]
            y[j] = v * _sigmoid(v, c)


@njit(cache=True, nogil=True)
def _backward_row(g, s, act, c, dz):
    """dz[j] = g[j] * act'(.) along one row, from the saved Y or Z in s."""
    n = g.shape[0]
    zero = c[ZERO]
    one = c[ONE]
    if act == IDENTITY:
        for j in range(n):
            dz[j] = g[j]
    elif act == RELU:  # a select, not a multiply: dY = Inf at Y = 0 gives 0
        for j in range(n):
            dz[j] = zero if s[j] <= zero else g[j]
    elif act == LEAKY_RELU:
        slope = c[SLOPE]
        for j in range(n):
            dz[j] = g[j] if s[j] > zero else g[j] * slope
    elif act == SIGMOID:
        for j in range(n):
            dz[j] = g[j] * (s[j] * (one - s[j]))
    elif act == TANH:
        for j in range(n):
            dz[j] = g[j] * (one - s[j] * s[j])
    elif act == GELU:
        for j in range(n):
            dz[j] = g[j] * _gelu_grad(s[j], c)
    elif act == GELU_TANH:
        for j in range(n):
            dz[j] = g[j] * _gelu_tanh_grad(s[j], c)
    else:  # SILU
        for j in range(n):
            dz[j] = g[j] * _silu_grad(s[j], c)


# ------------------------------------------------------------------ kernels
#
# Each elementwise pass comes twice: `name` runs a plain loop (small
# problems: launching the thread team costs more than the work), and
# `name_parallel` the same loop as a `prange`. Separate functions, so that a
# program with small layers never compiles the parallel one (the parfor
# machinery roughly triples the compile time). Both cut the work the same
# way and give bitwise the same results.

ELEMENT_BLOCK = 4096  # elements per prange iteration in the 1-D activation passes


@njit(cache=True, nogil=True)
def _activation_block(x, act, c, y, i):
    lo = i * ELEMENT_BLOCK
    hi = min(lo + ELEMENT_BLOCK, x.shape[0])
    _forward_row(x[lo:hi], act, c, y[lo:hi])


@njit(cache=True, nogil=True)
def activation_forward(x, act, c, y):
    """y = act(x) for 1-D C-contiguous x and y (y may be x)."""
    _forward_row(x, act, c, y)


@njit(cache=True, nogil=True, parallel=True)
def activation_forward_parallel(x, act, c, y):
    for i in prange((x.shape[0] + ELEMENT_BLOCK - 1) // ELEMENT_BLOCK):
        _activation_block(x, act, c, y, i)


@njit(cache=True, nogil=True)
def _activation_grad_block(g, s, act, c, dz, i):
    lo = i * ELEMENT_BLOCK
    hi = min(lo + ELEMENT_BLOCK, g.shape[0])
    _backward_row(g[lo:hi], s[lo:hi], act, c, dz[lo:hi])


@njit(cache=True, nogil=True)
def activation_backward(g, s, act, c, dz):
    """dz = g * act'(.) for 1-D C-contiguous arrays."""
    _backward_row(g, s, act, c, dz)


@njit(cache=True, nogil=True, parallel=True)
def activation_backward_parallel(g, s, act, c, dz):
    for i in prange((g.shape[0] + ELEMENT_BLOCK - 1) // ELEMENT_BLOCK):
        _activation_grad_block(g, s, act, c, dz, i)


@njit(cache=True, nogil=True)
def _bias_activation_row(z, b, has_bias, act, c, y, i):
    row = z[i]
    if has_bias:
        for j in range(row.shape[0]):
            row[j] += b[j]
    _forward_row(row, act, c, y[i])


@njit(cache=True, nogil=True)
def bias_activation(z, b, has_bias, act, c, y):
    """z += b and y = act(z), in one pass over the rows of the product z = x @ w.T.

    z keeps the pre-activation; y may be z itself when Z need not be kept.
    All arrays C-contiguous.
    """
    for i in range(z.shape[0]):
        _bias_activation_row(z, b, has_bias, act, c, y, i)


@njit(cache=True, nogil=True, parallel=True)
def bias_activation_parallel(z, b, has_bias, act, c, y):
    for i in prange(z.shape[0]):
        _bias_activation_row(z, b, has_bias, act, c, y, i)


@njit(cache=True, nogil=True)
def _dz_db_chunk(g, s, act, c, dz, partial, ci):
    """dz for the rows of chunk ci, and their column sums into partial[ci]."""
    acc = partial[ci]
    n = g.shape[1]
    for i in range(ci * DB_CHUNK, min((ci + 1) * DB_CHUNK, g.shape[0])):
        if act == IDENTITY:  # dz is g itself: only summed (dz is a dummy then)
            row = g[i]
        else:
            _backward_row(g[i], s[i], act, c, dz[i])
            row = dz[i]
        for j in range(n):
            acc[j] += row[j]


@njit(cache=True, nogil=True)
def _sum_partials(partial):
    db = np.zeros(partial.shape[1], dtype=partial.dtype)
    for ci in range(partial.shape[0]):  # in order: independent of the threads
        p = partial[ci]
        for j in range(p.shape[0]):
            db[j] += p[j]
    return db


@njit(cache=True, nogil=True)
def dz_and_bias_grad(g, s, act, c, dz):
    """dz = g * act'(.) and db = sum of dz over rows, in one pass. Returns db.

    For identity dZ is g: pass any writable 2-D array as dz, it is not touched.
    The rows are cut into fixed
    chunks of DB_CHUNK rows whose partial sums are added in order afterwards,
    so db does not depend on the number of threads. All arrays C-contiguous.
    """
    chunks = (g.shape[0] + DB_CHUNK - 1) // DB_CHUNK
    partial = np.zeros((chunks, g.shape[1]), dtype=g.dtype)
    for ci in range(chunks):
        _dz_db_chunk(g, s, act, c, dz, partial, ci)
    return _sum_partials(partial)


@njit(cache=True, nogil=True, parallel=True)
def dz_and_bias_grad_parallel(g, s, act, c, dz):
    chunks = (g.shape[0] + DB_CHUNK - 1) // DB_CHUNK
    partial = np.zeros((chunks, g.shape[1]), dtype=g.dtype)
    for ci in prange(chunks):
        _dz_db_chunk(g, s, act, c, dz, partial, ci)
    return _sum_partials(partial)
