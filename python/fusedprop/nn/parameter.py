"""Parameter: a leaf tensor a Module registers and an optimizer updates."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor, _FLOAT_DTYPES

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A trainable leaf: ``p.data`` is a C-contiguous float32/float64 NumPy
    array (updated in place by optimizers), ``p.grad`` None or an array of the
    same shape and dtype."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        data = data.data if isinstance(data, Tensor) else np.asarray(data)
        if data.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"Parameter: data must be float32 or float64, got dtype {data.dtype}")
        super().__init__(np.ascontiguousarray(data), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__
