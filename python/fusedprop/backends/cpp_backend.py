"""The compiled backend: the functional API runs in ``fusedprop._core``.

The C++ functions take the arguments in the order of the backend contract
(see ``numpy_backend``) and validate them in C++, so this module is only a
name table: no Python runs between the functional API and the kernel.
"""

from __future__ import annotations

from .._core import (  # noqa: F401
    activation,
    activation_grad,
    adam_step,
    batch_norm_backward,
    batch_norm_eval,
    batch_norm_forward,
    batch_norm_update,
    dropout,
    layer_norm_backward,
    layer_norm_forward,
    linear,
    linear_backward,
    linear_forward,
    matmul,
    sgd_step,
)

NAME = "cpp"

_KERNELS = ("matmul", "linear", "linear_forward", "linear_backward", "activation", "activation_grad")
