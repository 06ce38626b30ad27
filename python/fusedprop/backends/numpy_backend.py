"""The NumPy reference backend: the plain algorithms, and the test oracle.

Every backend module provides these functions with these signatures (the
functional API forwards to them with its keyword arguments filled in):

    matmul(a, b, out)
    linear(x, weight, bias, activation, negative_slope, out) -> y
    linear_forward(x, weight, bias, activation, negative_slope) -> (y, saved)
    linear_backward(grad_y, x, weight, saved, activation, negative_slope,
                    needs_input_grad) -> (grad_x or None, grad_weight, grad_bias)
    activation(x, name, negative_slope, out) -> y
    activation_grad(grad_y, saved, name, negative_slope) -> grad_z

It favours clarity over speed: each formula is written as PyTorch defines it,
in the input's dtype, in numerically stable form.
"""

from __future__ import annotations

import math

import numpy as np

from . import _validation as v
from ._matmul import matmul as _matmul

NAME = "numpy"

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_KAPPA = 0.044715


# ----------------------------------------------------------------- activations

def _erf(z: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf  # correctly rounded to an ulp, vectorised
    except ImportError:
        erf = np.frompyfunc(math.erf, 1, 1)  # libm's erf, one element at a time
    return np.asarray(erf(z), dtype=z.dtype)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only, so nothing overflows.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def _forward(z: np.ndarray, name: str, slope: float) -> np.ndarray:
    # NumPy turns 0-D results into scalars; keep arrays of the input's dtype.
    return np.asarray(_forward_values(z, name, slope), dtype=z.dtype)


def _forward_values(z, name, slope):
    dt = z.dtype.type
    with np.errstate(all="ignore"):  # ±Inf and NaN propagate as in PyTorch
        if name == "identity":
            return z.copy()
        if name == "relu":
            return np.where(z < 0, dt(0), z)  # NaN stays NaN
        if name == "leaky_relu":
            return np.where(z > 0, z, z * dt(slope))
        if name == "sigmoid":
            return _sigmoid(z)
        if name == "tanh":
            return np.tanh(z)
        if name == "gelu":
            return dt(0.5) * z * (1 + _erf(z * dt(_SQRT_HALF)))
        if name == "gelu_tanh":
            return dt(0.5) * z * (1 + np.tanh(dt(_SQRT_2_OVER_PI) * (z + dt(_KAPPA) * z * z * z)))
        if name == "silu":
            return z * _sigmoid(z)
    raise AssertionError(name)


def _backward(grad_y: np.ndarray, saved, name: str, slope: float) -> np.ndarray:
    """dZ = dY * act'(.), with act' computed from what the forward saved."""
    return np.asarray(_backward_values(grad_y, saved, name, slope), dtype=grad_y.dtype)


def _backward_values(grad_y, saved, name, slope):
    dt = grad_y.dtype.type
    with np.errstate(all="ignore"):
        if name == "identity":
            return grad_y.copy()
        if name == "relu":  # select, not multiply: dY = Inf at Y = 0 gives 0, as in PyTorch
            return np.where(saved <= 0, dt(0), grad_y)
        if name == "leaky_relu":
            return np.where(saved > 0, grad_y, grad_y * dt(slope))
        if name == "sigmoid":
            return grad_y * (saved * (1 - saved))
        if name == "tanh":
            return grad_y * (1 - saved * saved)
        z = saved
        if name == "gelu":
            cdf = dt(0.5) * (1 + _erf(z * dt(_SQRT_HALF)))
            pdf = dt(_INV_SQRT_2PI) * np.exp(dt(-0.5) * z * z)
            return grad_y * (cdf + z * pdf)
        if name == "gelu_tanh":
            z2 = z * z
            t = np.tanh(dt(_SQRT_2_OVER_PI) * (z + dt(_KAPPA) * z2 * z))
            left = dt(0.5) * z
            d = dt(0.5) * (1 + t) + left * (1 - t * t) * dt(_SQRT_2_OVER_PI) * (1 + dt(3 * _KAPPA) * z2)
            return grad_y * d
        if name == "silu":
            s = _sigmoid(z)
            return grad_y * (s * (1 + z * (1 - s)))
    raise AssertionError(name)


def activation(x, name, negative_slope, out):
    v.check_activation_call(x, name, negative_slope, out)
    y = _forward(x, name, negative_slope)
    if out is None:
        return y
    out[...] = y
    return out


def activation_grad(grad_y, saved, name, negative_slope):
    v.check_activation_grad(grad_y, saved, name, negative_slope)
    return _backward(grad_y, saved, name, negative_slope)


# ---------------------------------------------------------------------- layers

def matmul(a, b, out):
    v.check_matmul(a, b, out)
    return _matmul(a, b, out=out)


def _rows(a: np.ndarray) -> np.ndarray:
    """(..., features) as (batch, features), C-contiguous; reshape(-1, ...) fails on size 0.

    Contiguous because NumPy 1.x's matmul sends an operand BLAS cannot take
    (negative or odd strides) through its own loop, which rounds differently:
    results would depend on the input's layout (NumPy 2 copies it itself)."""
    return np.ascontiguousarray(a.reshape(math.prod(a.shape[:-1]), a.shape[-1]))


def _preactivation(x, weight, bias):
    z = _matmul(_rows(x), weight.T)
    if bias is not None:
        z += bias
    return z.reshape(x.shape[:-1] + (weight.shape[0],))


def linear(x, weight, bias, activation, negative_slope, out):
    y_shape = v.check_linear("linear", x, weight, bias, activation, negative_slope)
    if out is not None:
        v.check_out("linear", out, y_shape, x.dtype, {"x": x, "weight": weight, "bias": bias})
    y = _forward(_preactivation(x, weight, bias), activation, negative_slope)
    if out is None:
        return y
    out[...] = y
    return out


def linear_forward(x, weight, bias, activation, negative_slope):
    v.check_linear("linear_forward", x, weight, bias, activation, negative_slope)
    z = _preactivation(x, weight, bias)
    y = _forward(z, activation, negative_slope)
    if activation in v.SAVES_OUTPUT:
        return y, y
    if activation in v.SAVES_PREACTIVATION:
        return y, z
    return y, None


def linear_backward(grad_y, x, weight, saved, activation, negative_slope, needs_input_grad):
    v.check_linear_backward(grad_y, x, weight, saved, activation, negative_slope)
    dz = _rows(_backward(grad_y, saved, activation, negative_slope))
    x2 = _rows(x)
    grad_weight = _matmul(dz.T, x2)
    grad_bias = dz.sum(axis=0)
    grad_x = _matmul(dz, weight).reshape(x.shape) if needs_input_grad else None
    return grad_x, grad_weight, grad_bias


# ------------------------------------------------------------------ optimizers
from .optim_numpy import sgd_step, adam_step  # noqa: E402,F401  (fused per-parameter updates)

# ----------------------------------------------------- dropout and norms
from .norm_numpy import (  # noqa: E402,F401
    batch_norm_backward, batch_norm_eval, batch_norm_forward, batch_norm_update, dropout, layer_norm_backward,
    layer_norm_forward,
)
