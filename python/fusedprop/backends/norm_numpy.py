"""Dropout, BatchNorm1d and LayerNorm kernels, NumPy reference (the contract every backend follows).

    dropout(x, p, seed, stream, step) -> x * mask / (1 - p)        (also the backward, on dY)
    batch_norm_forward(x, weight, bias, eps) -> (y, mean, invstd, var_unbiased)
    batch_norm_eval(x, running_mean, running_var, weight, bias, eps) -> y
    batch_norm_update(running_mean, running_var, mean, var_unbiased, momentum) -> None  (in place)
    batch_norm_backward(grad_y, x, mean, invstd, weight, needs_input_grad) -> (grad_x, grad_weight, grad_bias)
    layer_norm_forward(x, weight, bias, eps) -> (y, mean, rstd)
    layer_norm_backward(grad_y, x, mean, rstd, weight, has_bias, needs_input_grad) -> (grad_x, grad_weight, grad_bias)

``x`` is (rows, features): batch norm reduces over the rows, layer norm over
each row; the nn layer reshapes (N, C, L) and (..., *normalized_shape) to
that. weight and bias may be None (1 and 0); grads of absent ones are None.
The mask is Philox4x32-10's (``_philox``): every backend draws the same bits.
Arithmetic in the input's dtype, formulas as the C++ kernels write them.
"""

from __future__ import annotations

import numpy as np

from . import _philox
from . import _validation as v

__all__ = ["dropout", "batch_norm_forward", "batch_norm_eval", "batch_norm_update", "batch_norm_backward",
           "layer_norm_forward", "layer_norm_backward", "check_dropout", "check_matrix", "check_vector"]


# ------------------------------------------------------------------ checks

def check_dropout(x, p) -> np.ndarray:
    x = v.check_array("dropout", "x", x)
    if not (0.0 <= p < 1.0):
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    return x


def check_matrix(fn: str, x) -> np.ndarray:
    x = v.check_array(fn, "x", x)
    if x.ndim != 2:
        raise ValueError(f"{fn}: x must be 2-D (rows, features), got shape {x.shape}")
    return x


def check_vector(fn: str, name: str, a, x: np.ndarray, n: int):
    if a is None:
        return None
    a = v.check_array(fn, name, a)
    v.check_same_dtype(fn, "x", x, name, a)
    if a.shape != (n,):
        raise ValueError(f"{fn}: {name} must have shape ({n},), got {a.shape}")
    return a


def check_eps(fn: str, eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise TypeError(f"{fn}: eps must be a float, got {type(eps).__name__}")
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"{fn}: eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def check_grad(fn: str, grad_y, x: np.ndarray) -> np.ndarray:
    grad_y = v.check_array(fn, "grad_y", grad_y)
    v.check_same_dtype(fn, "x", x, "grad_y", grad_y)
    if grad_y.shape != x.shape:
        raise ValueError(f"{fn}: grad_y must have x's shape {x.shape}, got {grad_y.shape}")
    return grad_y


# ----------------------------------------------------------------- dropout

def dropout(x, p, seed, stream, step):
    x = check_dropout(x, p)
    dt = x.dtype.type
    keep = _philox.keep_mask(x.size, p, seed, stream, step).reshape(x.shape)
    noise = np.where(keep, dt(1) / dt(1.0 - p), dt(0))
    return np.multiply(x, noise, dtype=x.dtype)


# -------------------------------------------------------------- batch norm

def batch_norm_forward(x, weight, bias, eps):
    fn = "batch_norm_forward"
    x = check_matrix(fn, x)
    m, n = x.shape
    weight = check_vector(fn, "weight", weight, x, n)
    bias = check_vector(fn, "bias", bias, x, n)
    eps = check_eps(fn, eps)
    dt = x.dtype.type
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.sum(axis=0) / dt(m)
        ss = ((x - mean) ** 2).sum(axis=0)
        invstd = dt(1) / np.sqrt(ss / dt(m) + dt(eps))
        var_unbiased = ss / dt(m - 1) if m > 1 else np.full(n, np.nan, x.dtype)
    return _affine(x, mean, invstd, weight, bias), mean, invstd, var_unbiased


def _affine(x, mean, invstd, weight, bias):
    a = invstd if weight is None else invstd * weight
    c = (np.zeros_like(a) if bias is None else bias) - mean * a
    return x * a + c


def batch_norm_eval(x, running_mean, running_var, weight, bias, eps):
    fn = "batch_norm_eval"
    x = check_matrix(fn, x)
    n = x.shape[1]
    if running_mean is None or running_var is None:
        raise TypeError(f"{fn}: running_mean and running_var must be arrays, got None")
    running_mean = check_vector(fn, "running_mean", running_mean, x, n)
    running_var = check_vector(fn, "running_var", running_var, x, n)
    weight = check_vector(fn, "weight", weight, x, n)
    bias = check_vector(fn, "bias", bias, x, n)
    eps = check_eps(fn, eps)
    dt = x.dtype.type
    invstd = dt(1) / np.sqrt(running_var + dt(eps))
    return _affine(x, running_mean, invstd, weight, bias)


def batch_norm_update(running_mean, running_var, mean, var, momentum):
    fn = "batch_norm_update"
    for name, a in (("running_mean", running_mean), ("running_var", running_var)):
        a = v.check_array(fn, name, a)
        if a.ndim != 1 or not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(f"{fn}: the running statistics must be writeable, C-contiguous 1-D arrays")
    n = running_mean.shape[0]
    if running_var.shape != (n,):
        raise ValueError(f"{fn}: running_var must match running_mean's shape")
    mean = check_vector(fn, "mean", mean, running_mean, n)
    var = check_vector(fn, "var", var, running_mean, n)
    dt = running_mean.dtype.type
    keep, take = dt(1.0 - momentum), dt(momentum)
    running_mean[...] = keep * running_mean + take * mean
    running_var[...] = keep * running_var + take * var


def batch_norm_backward(grad_y, x, mean, invstd, weight, needs_input_grad=True):
    fn = "batch_norm_backward"
    x = check_matrix(fn, x)
    grad_y = check_grad(fn, grad_y, x)
    m, n = x.shape
    if mean is None or invstd is None:
        raise TypeError(f"{fn}: mean and invstd must be arrays, got None")
    mean = check_vector(fn, "mean", mean, x, n)
    invstd = check_vector(fn, "invstd", invstd, x, n)
    weight = check_vector(fn, "weight", weight, x, n)
    dt = x.dtype.type
    xc = x - mean
    sum_dy = grad_y.sum(axis=0)
    dot = (xc * grad_y).sum(axis=0)
    gw = gb = None
    if weight is not None:
        gb = sum_dy
        gw = dot * invstd if m else np.zeros(n, x.dtype)
    gx = None
    if needs_input_grad:
        inv_m = dt(1) / dt(m) if m else dt(0)
        k = dot * invstd * invstd * inv_m
        g = invstd if weight is None else invstd * weight
        gx = (grad_y - sum_dy * inv_m - xc * k) * g
    return gx, gw, gb


# -------------------------------------------------------------- layer norm

def layer_norm_forward(x, weight, bias, eps):
    fn = "layer_norm_forward"
    x = check_matrix(fn, x)
    m, d = x.shape
    weight = check_vector(fn, "weight", weight, x, d)
    bias = check_vector(fn, "bias", bias, x, d)
    if bias is not None and weight is None:
        raise ValueError(f"{fn}: a bias needs a weight")
    eps = check_eps(fn, eps)
    dt = x.dtype.type
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.sum(axis=1) / dt(d)
        xc = x - mean[:, None]
        rstd = dt(1) / np.sqrt((xc * xc).sum(axis=1) / dt(d) + dt(eps))
    y = xc * rstd[:, None]
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y, mean, rstd


def layer_norm_backward(grad_y, x, mean, rstd, weight, has_bias, needs_input_grad=True):
    fn = "layer_norm_backward"
    x = check_matrix(fn, x)
    grad_y = check_grad(fn, grad_y, x)
    m, d = x.shape
    for name, a in (("mean", mean), ("rstd", rstd)):
        a = v.check_array(fn, name, a)
        v.check_same_dtype(fn, "x", x, name, a)
        if a.shape != (m,):
            raise ValueError(f"{fn}: mean and rstd must have one value per row ({m})")
    weight = check_vector(fn, "weight", weight, x, d)
    dt = x.dtype.type
    xhat = (x - mean[:, None]) * rstd[:, None]
    gx = gw = gb = None
    if needs_input_grad:
        g = grad_y if weight is None else grad_y * weight
        inv_d = dt(1) / dt(d) if d else dt(0)
        mean_g = g.sum(axis=1) * inv_d
        mean_gx = (g * xhat).sum(axis=1) * inv_d
        gx = rstd[:, None] * (g - mean_g[:, None] - xhat * mean_gx[:, None])
    if weight is not None:
        gw = (grad_y * xhat).sum(axis=0)
        if has_bias:
            gb = grad_y.sum(axis=0)
    return gx, gw, gb
