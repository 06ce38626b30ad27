"""The compiled backend: the functional API runs in ``fusedprop._core``.

The C++ functions take the arguments in the order of the backend contract
(see ``numpy_backend``) and validate them in C++, so this module is only a
name table: no Python runs between the functional API and the kernel.
"""

from __future__ import annotations

from . import numpy_backend as _reference
from .. import _core

NAME = "cpp"

# Until a kernel lands in _core, its name resolves to the NumPy reference;
# tests/test_backends.py lists which ones still do, and fails once all have.
_KERNELS = ("matmul", "linear", "linear_forward", "linear_backward", "activation", "activation_grad")
for _name in _KERNELS:
    globals()[_name] = getattr(_core, _name, getattr(_reference, _name))
del _name

# Fused per-parameter optimizer updates (csrc/optim).
from .._core import adam_step, sgd_step  # noqa: E402,F401
