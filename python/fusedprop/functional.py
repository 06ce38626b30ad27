"""Fused dense-layer kernels on NumPy arrays: NumPy in, NumPy out.

Every function runs on the active backend (``fusedprop.get_backend()``).
Shapes follow PyTorch: ``x`` is ``(..., in_features)``, ``weight`` is
``(out_features, in_features)``, ``bias`` is ``(out_features,)``.

    Z = x @ weight.T + bias,   Y = act(Z)

Activations: identity, relu, leaky_relu, sigmoid, tanh, gelu (erf form),
gelu_tanh, silu. The forward saves the least its backward needs: nothing for
identity, Y for relu/leaky_relu/sigmoid/tanh, Z for gelu/gelu_tanh/silu.

All arrays of one call must share one dtype, float32 or float64 (TypeError
otherwise); any strides are accepted. Inputs may also be anything NumPy views
without a copy (PyTorch CPU tensors, JAX CPU arrays, ``__array__`` /
``__array_interface__`` / DLPack objects; see ``fusedprop._arrays``); ``out=``
must be a NumPy array.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import backends as _backends
from ._arrays import as_view as _as_view

_nd = np.ndarray  # inputs that are ndarrays skip the conversion: one class check each

__all__ = ["ACTIVATIONS", "matmul", "linear", "linear_forward", "linear_backward", "activation", "activation_grad"]

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu")


def matmul(a: np.ndarray, b: np.ndarray, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``a @ b`` for 2-D arrays of any strides (the packed GEMM itself)."""
    if a.__class__ is not _nd:
        a = _as_view(a, "matmul", "a")
    if b.__class__ is not _nd:
        b = _as_view(b, "matmul", "b")
    return _backends.current.matmul(a, b, out)


def linear(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, activation: str = "identity",
           *, negative_slope: float = 0.01, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``act(x @ weight.T + bias)`` in one fused call; saves nothing (inference)."""
    if x.__class__ is not _nd or weight.__class__ is not _nd or (bias is not None and bias.__class__ is not _nd):
        x, weight, bias = _layer_args("linear", x, weight, bias)
    return _backends.current.linear(x, weight, bias, activation, negative_slope, out)


def linear_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                   activation: str = "identity", *, negative_slope: float = 0.01
                   ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Training forward: ``(Y, saved)`` where ``saved`` is what ``linear_backward`` needs."""
    if x.__class__ is not _nd or weight.__class__ is not _nd or (bias is not None and bias.__class__ is not _nd):
        x, weight, bias = _layer_args("linear_forward", x, weight, bias)
    return _backends.current.linear_forward(x, weight, bias, activation, negative_slope)


def linear_backward(grad_y: np.ndarray, x: np.ndarray, weight: np.ndarray, saved: Optional[np.ndarray],
                    activation: str = "identity", *, negative_slope: float = 0.01, needs_input_grad: bool = True
                    ) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]:
    """Gradients of the fused layer: ``(grad_x, grad_weight, grad_bias)``.

    ``grad_x`` is None when ``needs_input_grad`` is False (a first layer).
    ``grad_bias`` is the batch sum of ``dZ``, whether or not the layer has a bias.
    """
    if x.__class__ is not _nd or weight.__class__ is not _nd:
        x, weight, _ = _layer_args("linear_backward", x, weight, None)
    if grad_y.__class__ is not _nd:
        grad_y = _as_view(grad_y, "linear_backward", "grad_y")
    if saved is not None and saved.__class__ is not _nd:
        saved = _as_view(saved, "linear_backward", "saved")
    return _backends.current.linear_backward(grad_y, x, weight, saved, activation, negative_slope,
                                             bool(needs_input_grad))


def activation(x: np.ndarray, name: str, *, negative_slope: float = 0.01,
               out: Optional[np.ndarray] = None) -> np.ndarray:
    """``act(x)`` elementwise."""
    if x.__class__ is not _nd:
        x = _as_view(x, "activation", "x")
    return _backends.current.activation(x, name, negative_slope, out)


def activation_grad(grad_y: np.ndarray, saved: Optional[np.ndarray], name: str, *,
                    negative_slope: float = 0.01) -> np.ndarray:
    """``grad_y * act'(.)`` from what the forward saved (Y or Z; see the module doc)."""
    if grad_y.__class__ is not _nd:
        grad_y = _as_view(grad_y, "activation_grad", "grad_y")
    if saved is not None and saved.__class__ is not _nd:
        saved = _as_view(saved, "activation_grad", "saved")
    return _backends.current.activation_grad(grad_y, saved, name, negative_slope)


def _layer_args(fn: str, x, weight, bias) -> tuple:
    if x.__class__ is not _nd:
        x = _as_view(x, fn, "x")
    if weight.__class__ is not _nd:
        weight = _as_view(weight, fn, "weight")
    if bias is not None and bias.__class__ is not _nd:
        bias = _as_view(bias, fn, "bias")
    return x, weight, bias
