"""Dropout, BatchNorm1d and LayerNorm for the Numba backend: the contract and
checks of ``norm_numpy``, the loops in ``_numba_norm_kernels`` (compiled on
first use, cached on disk)."""

from __future__ import annotations

import numpy as np

from . import _numba_norm_kernels as k
from . import _philox
from .norm_numpy import check_dropout, check_eps, check_grad, check_matrix, check_vector
from .norm_numpy import batch_norm_update  # noqa: F401  (n elements: NumPy is as fast)

__all__ = ["dropout", "batch_norm_forward", "batch_norm_eval", "batch_norm_update", "batch_norm_backward",
           "layer_norm_forward", "layer_norm_backward"]


def _c(a):
    return a if a is None or a.flags.c_contiguous else np.ascontiguousarray(a)


def _opt(a, like):
    """(array, present): absent vectors become a dummy of like's dtype (one compiled variant)."""
    return (np.zeros(1, like.dtype), False) if a is None else (_c(a), True)


def dropout(x, p, seed, stream, step):
    x = check_dropout(x, p)
    dt = x.dtype.type
    flat = _c(x).reshape(-1)
    out = np.empty(x.shape, x.dtype)
    k.dropout_kernel(flat, out.reshape(-1), np.uint64(_philox.threshold(p)), dt(1) / dt(1.0 - p), dt(0),
                     np.uint64(seed), np.uint64(step & 0xFFFFFFFF), np.uint64(stream & 0xFFFFFFFF))
    return out


def batch_norm_forward(x, weight, bias, eps):
    fn = "batch_norm_forward"
    x = _c(check_matrix(fn, x))
    m, n = x.shape
    weight = check_vector(fn, "weight", weight, x, n)
    bias = check_vector(fn, "bias", bias, x, n)
    eps = np.array([check_eps(fn, eps)], x.dtype)
    (w, hw), (b, hb) = _opt(weight, x), _opt(bias, x)
    y = np.empty_like(x)
    mean, invstd, var = (np.empty(n, x.dtype) for _ in range(3))
    if m == 0:  # Numba raises on 0 / 0 where C++ and NumPy give NaN
        mean.fill(np.nan), invstd.fill(np.nan), var.fill(np.nan)
        return y, mean, invstd, var
    k.bn_forward_kernel(x, eps, w, b, hw, hb, y, mean, invstd, var, np.array([np.nan], x.dtype))
    return y, mean, invstd, var


def batch_norm_eval(x, running_mean, running_var, weight, bias, eps):
    fn = "batch_norm_eval"
    x = _c(check_matrix(fn, x))
    n = x.shape[1]
    if running_mean is None or running_var is None:
        raise TypeError(f"{fn}: running_mean and running_var must be arrays, got None")
    rm = _c(check_vector(fn, "running_mean", running_mean, x, n))
    rv = _c(check_vector(fn, "running_var", running_var, x, n))
    (w, hw), (b, hb) = _opt(check_vector(fn, "weight", weight, x, n), x), _opt(check_vector(fn, "bias", bias, x, n), x)
    y = np.empty_like(x)
    k.bn_eval_kernel(x, np.array([check_eps(fn, eps)], x.dtype), rm, rv, w, b, hw, hb, y)
    return y


def batch_norm_backward(grad_y, x, mean, invstd, weight, needs_input_grad=True):
    fn = "batch_norm_backward"
    x = _c(check_matrix(fn, x))
    grad_y = _c(check_grad(fn, grad_y, x))
    n = x.shape[1]
    if mean is None or invstd is None:
        raise TypeError(f"{fn}: mean and invstd must be arrays, got None")
    mean = _c(check_vector(fn, "mean", mean, x, n))
    invstd = _c(check_vector(fn, "invstd", invstd, x, n))
    w, hw = _opt(check_vector(fn, "weight", weight, x, n), x)
    dx = np.empty_like(x) if needs_input_grad else np.empty((0, 0), x.dtype)
    dgamma, dbeta = np.empty(n, x.dtype), np.empty(n, x.dtype)
    k.bn_backward_kernel(grad_y, x, mean, invstd, w, hw, dx, bool(needs_input_grad), dgamma, dbeta)
    return (dx if needs_input_grad else None), (dgamma if hw else None), (dbeta if hw else None)


def layer_norm_forward(x, weight, bias, eps):
    fn = "layer_norm_forward"
    x = _c(check_matrix(fn, x))
    m, d = x.shape
    weight = check_vector(fn, "weight", weight, x, d)
    bias = check_vector(fn, "bias", bias, x, d)
    if bias is not None and weight is None:
        raise ValueError(f"{fn}: a bias needs a weight")
    (w, hw), (b, hb) = _opt(weight, x), _opt(bias, x)
    y = np.empty_like(x)
    mean, rstd = np.empty(m, x.dtype), np.empty(m, x.dtype)
    k.ln_forward_kernel(x, np.array([check_eps(fn, eps)], x.dtype), w, b, hw, hb, y, mean, rstd)
    return y, mean, rstd


def layer_norm_backward(grad_y, x, mean, rstd, weight, has_bias, needs_input_grad=True):
    fn = "layer_norm_backward"
    x = _c(check_matrix(fn, x))
    grad_y = _c(check_grad(fn, grad_y, x))
    m, d = x.shape
    for name, a in (("mean", mean), ("rstd", rstd)):
        a = check_vector(fn, name, a, x, m) if a is not None else None
        if a is None:
            raise TypeError(f"{fn}: {name} must be an array, got None")
    w, hw = _opt(check_vector(fn, "weight", weight, x, d), x)
    dx = np.empty_like(x) if needs_input_grad else np.empty((0, 0), x.dtype)
    dgamma, dbeta = np.empty(d, x.dtype), np.empty(d, x.dtype)
    k.ln_backward_kernel(grad_y, x, _c(mean), _c(rstd), w, hw, dx, bool(needs_input_grad), dgamma, dbeta)
    return ((dx if needs_input_grad else None), (dgamma if hw else None),
            (dbeta if hw and has_bias else None))
