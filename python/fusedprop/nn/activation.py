"""Activation modules; each maps to one name of the fused kernels."""

from __future__ import annotations

from . import functional as F
from .module import Module

__all__ = ["Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "SiLU"]


class _Activation(Module):
    """``kernel_name`` is what ``Sequential`` fuses into the preceding Linear."""

    kernel_name = "identity"
    negative_slope = 0.01

    def forward(self, x):
        return F.activation(x, self.kernel_name, self.negative_slope, self.training)


class Identity(_Activation):
    kernel_name = "identity"

    def __init__(self, *args, **kwargs) -> None:  # PyTorch ignores its arguments
        super().__init__()

    def forward(self, x):
        return x


class ReLU(_Activation):
    kernel_name = "relu"

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()


class LeakyReLU(_Activation):
    kernel_name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        if not (isinstance(negative_slope, (int, float)) and negative_slope >= 0):
            raise ValueError(f"LeakyReLU: negative_slope must be a number >= 0 (the fused backward reads the "
                             f"sign from the output), got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Activation):
    kernel_name = "sigmoid"


class Tanh(_Activation):
    kernel_name = "tanh"


class GELU(_Activation):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.kernel_name = "gelu" if approximate == "none" else "gelu_tanh"

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(_Activation):
    kernel_name = "silu"
