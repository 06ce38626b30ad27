"""Linear: ``y = activation(x @ weight.T + bias)``, one fused kernel each way."""

from __future__ import annotations

import math

import numpy as np

from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from ..functional import ACTIVATIONS

__all__ = ["Linear"]


def _check_features(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"Linear: {name} must be a non-negative int, got {n!r}")
    return int(n)


class Linear(Module):
    """PyTorch's ``nn.Linear`` plus an optional fused ``activation`` (a name
    from ``fusedprop.functional.ACTIVATIONS``; None means identity).

    Weight ``(out_features, in_features)`` and bias ``(out_features,)`` start
    as in PyTorch: ``kaiming_uniform_(a=sqrt(5))``, i.e. U(-1/sqrt(in), 1/sqrt(in)),
    for both. Float input is converted to ``dtype``; integer input raises TypeError.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str | None = None,
                 dtype=np.float32, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.in_features = _check_features("in_features", in_features)
        self.out_features = _check_features("out_features", out_features)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"Linear: dtype must be float32 or float64, got {dtype}")
        activation = "identity" if activation is None else activation
        if activation not in ACTIVATIONS:
            raise ValueError(f"Linear: unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
        self.activation = activation
        self.negative_slope = float(negative_slope)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias, self.activation, self.negative_slope, self.training)

    def extra_repr(self) -> str:
        s = f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        if self.weight.data.dtype != np.float32:
            s += f", dtype={self.weight.data.dtype}"
        if self.activation != "identity":
            s += f", activation={self.activation!r}"
            if self.activation == "leaky_relu":
                s += f", negative_slope={self.negative_slope}"
        return s
