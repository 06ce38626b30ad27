"""One door for array inputs: NumPy arrays and anything NumPy can view without a copy.

Accepted besides ``np.ndarray``: objects with ``__array__``,
``__array_interface__`` or the buffer protocol (PyTorch CPU tensors, JAX CPU
arrays, ...) through ``np.asarray``, and DLPack-only objects through
``np.from_dlpack``; both give views that share the caller's memory. Python
sequences and scalars are converted as ``np.asarray`` does (a copy: they hold
no array). Nothing here casts a dtype; callers apply their own dtype rules.

A tensor NumPy cannot view raises TypeError naming the argument, never a
silent wrong result:

- a torch tensor that requires grad (fusedprop cannot backpropagate into
  PyTorch: pass ``x.detach()``, a view);
- a torch tensor on another device than the CPU (pass ``x.cpu()``: a copy);
- dtypes NumPy lacks (bfloat16) and torch's lazy negated / conjugated views.
  (torch's DLPack export ignores the negative bit, so torch tensors always go
  through ``__array__``, which refuses it.)

Objects whose own ``__array__`` copies (e.g. a JAX array on a GPU) arrive as
that copy, with their values.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_array", "as_view", "is_array_object"]

_PROTOCOLS = ("__array__", "__array_interface__", "__array_struct__", "__dlpack__")


def is_array_object(x) -> bool:
    """True for ndarrays and objects that expose their memory to NumPy (not lists or scalars)."""
    return isinstance(x, np.ndarray) or any(hasattr(x, p) for p in _PROTOCOLS)


def as_array(x, fn: str, name: str) -> np.ndarray:
    """``x`` as an ndarray (a view where ``x`` holds memory), or TypeError naming ``fn`` and ``name``."""
    if x.__class__ is np.ndarray:  # the hot path: one check
        return x
    return _convert(x, fn, name)


def as_view(x, fn: str, name: str):
    """Array objects as ndarray views (as ``as_array``); anything else (lists,
    None, ...) unchanged, for the functional API's own type check to refuse."""
    if x.__class__ is np.ndarray or not is_array_object(x):
        return x
    return _convert(x, fn, name)


def _convert(x, fn: str, name: str) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    cls = type(x)
    if cls.__module__.partition(".")[0] == "torch" and hasattr(x, "requires_grad"):
        _check_torch(x, fn, name)
    try:
        if (hasattr(x, "__dlpack__") and not hasattr(x, "__array__") and not hasattr(x, "__array_interface__")
                and not hasattr(x, "__array_struct__")):
            return np.from_dlpack(x)
        return np.asarray(x)
    except (TypeError, RuntimeError, BufferError) as e:
        raise TypeError(f"{fn}: {name} must be an array NumPy can view (a NumPy array, a CPU tensor, an object "
                        f"with __array__ or __dlpack__); got a {cls.__module__}.{cls.__qualname__} it cannot: {e}") from e


def _check_torch(x, fn: str, name: str) -> None:
    if x.requires_grad:
        raise TypeError(f"{fn}: {name} is a torch tensor that requires grad; fusedprop cannot backpropagate into "
                        f"PyTorch: pass {name}.detach()")
    if x.device.type != "cpu":
        raise TypeError(f"{fn}: {name} is a torch tensor on device {x.device}; fusedprop computes on the CPU: "
                        f"pass {name}.cpu() (a copy)")
