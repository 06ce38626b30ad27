"""Initialisers, drawing from the generator ``fp.manual_seed`` seeds."""

from __future__ import annotations

import math

import numpy as np

from .. import _runtime

__all__ = ["uniform_", "zeros_", "ones_", "normal_", "kaiming_uniform_", "calculate_fan_in_and_fan_out"]


def _array(t) -> np.ndarray:
    return t.data if hasattr(t, "data") and isinstance(t.data, np.ndarray) else t


def calculate_fan_in_and_fan_out(t) -> tuple:
    shape = _array(t).shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def uniform_(t, a: float = 0.0, b: float = 1.0):
    arr = _array(t)
    arr[...] = _runtime.generator().uniform(a, b, size=arr.shape)
    return t


def normal_(t, mean: float = 0.0, std: float = 1.0):
    arr = _array(t)
    arr[...] = _runtime.generator().normal(mean, std, size=arr.shape)
    return t


def zeros_(t):
    _array(t)[...] = 0
    return t


def ones_(t):
    _array(t)[...] = 1
    return t


def kaiming_uniform_(t, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    """PyTorch's kaiming_uniform_ (gain for leaky_relu with slope ``a``)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    if nonlinearity == "leaky_relu":
        gain = math.sqrt(2.0 / (1 + a * a))
    elif nonlinearity == "relu":
        gain = math.sqrt(2.0)
    else:
        gain = 1.0
    bound = math.sqrt(3.0) * gain / math.sqrt(fan) if fan else 0.0
    return uniform_(t, -bound, bound)
