"""LayerNorm: normalise each sample over its last dimensions (PyTorch's semantics)."""

from __future__ import annotations

import math

import numpy as np

from . import functional as F
from .module import Module
from .parameter import Parameter

__all__ = ["LayerNorm"]


def _check_dtype(fn: str, dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{fn}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_eps(fn: str, eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: eps must be a float, got {type(eps).__name__}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{fn}: eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def _check_shape(normalized_shape) -> tuple:
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
    if isinstance(shape, bool) or not isinstance(shape, (tuple, list)) or \
            any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in shape):
        raise TypeError(f"LayerNorm: normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}")
    if not shape or any(n < 1 for n in shape):
        raise ValueError(f"LayerNorm: normalized_shape must be one or more positive sizes, got {normalized_shape!r}")
    return tuple(int(n) for n in shape)


class LayerNorm(Module):
    """``LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=np.float32)``:
    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` over the last
    ``len(normalized_shape)`` dimensions, the variance biased, as PyTorch.
    ``weight`` starts at ones and ``bias`` at zeros."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=np.float32) -> None:
        super().__init__()
        self.normalized_shape = _check_shape(normalized_shape)
        self.eps = _check_eps("LayerNorm", eps)
        self.elementwise_affine = bool(elementwise_affine)
        dtype = _check_dtype("LayerNorm", dtype)
        self.register_parameter("weight", Parameter(np.empty(self.normalized_shape, dtype))
                                if self.elementwise_affine else None)
        self.register_parameter("bias", Parameter(np.empty(self.normalized_shape, dtype))
                                if self.elementwise_affine and bias else None)
        self._dtype = dtype
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight.data.fill(1)
        if self.bias is not None:
            self.bias.data.fill(0)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps, self.training)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
                + ("" if not self.elementwise_affine else f", bias={self.bias is not None}"))
