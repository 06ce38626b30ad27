"""Gradient clipping with PyTorch's formulas: ``nn.utils.clip_grad_norm_`` and ``clip_grad_value_``.

Both change ``p.grad`` in place (a read-only gradient array is replaced by a
clipped copy). Differences from PyTorch, on purpose:

- ``clip_grad_norm_`` returns the total norm as a NumPy scalar of the
  gradients' dtype (``np.float32`` or ``np.float64``; ``np.float32(0.0)``
  without gradients) where PyTorch returns a 0-d tensor: ``float(norm)`` and
  ``norm.item()`` work on both.
- Each gradient's norm is accumulated in float64 and rounded to its dtype,
  the total likewise, so a float32 norm can differ from PyTorch's float32
  reduction in the last bits.
- A negative or NaN ``max_norm`` / ``clip_value`` raises ValueError (PyTorch
  would flip or poison the gradients); an empty gradient adds 0 to an
  infinity norm (PyTorch's foreach path raises).
- ``foreach`` is accepted for compatibility and changes nothing: NumPy
  already clips each gradient in one vectorised pass.
"""

from __future__ import annotations

import math
import types
import warnings

import numpy as np

from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _params(fn: str, parameters) -> list:
    if isinstance(parameters, Tensor):
        return [parameters]
    if isinstance(parameters, np.ndarray) or not hasattr(parameters, "__iter__"):
        raise TypeError(f"{fn}: parameters must be a Parameter or an iterable of Parameters, got "
                        f"{type(parameters).__name__}")
    is_generator = isinstance(parameters, types.GeneratorType)
    parameters = list(parameters)
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: parameters[{i}] must be a Parameter (or Tensor), got {type(p).__name__}")
    if is_generator and not parameters:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", UserWarning,
                      stacklevel=3)
    return parameters


def _limit(fn: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: {name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not value >= 0:
        raise ValueError(f"{fn}: {name} must be >= 0, got {value}")
    return value


def _check_foreach(fn: str, foreach) -> None:
    if foreach is not None and not isinstance(foreach, bool):
        raise TypeError(f"{fn}: foreach must be None or a bool, got {type(foreach).__name__}")


def _vector_norm(x: np.ndarray, p: float) -> float:
    """``torch.linalg.vector_norm(x, p)``, accumulated in float64."""
    if x.size == 0:
        return 0.0
    if p == math.inf:
        return float(np.max(np.abs(x)))
    if p == -math.inf:
        return float(np.min(np.abs(x)))
    if p == 0:
        return float(np.count_nonzero(x))
    x = x.reshape(-1).astype(np.float64, copy=False)
    if p == 1:
        return float(np.abs(x).sum())
    if p == 2:
        return math.sqrt(float(np.dot(x, x)))
    return float(np.sum(np.abs(x) ** p) ** (1.0 / p))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None):
    """Scale the gradients of ``parameters`` so their total ``norm_type``-norm
    (the norm of the per-gradient norms) is at most ``max_norm``, as PyTorch:
    ``clip_coef = min(max_norm / (total_norm + 1e-6), 1)``, every gradient
    multiplied by it; ``norm_type`` may be ``inf``. Gradients that are None
    are skipped. Returns the total norm before clipping (a NumPy scalar, see
    the module docstring). ``error_if_nonfinite=True`` raises RuntimeError
    when the norm is NaN or infinite, as PyTorch.
    """
    fn = "clip_grad_norm_"
    parameters = _params(fn, parameters)
    max_norm = _limit(fn, "max_norm", max_norm)
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float, np.integer, np.floating, str)):
        raise TypeError(f"{fn}: norm_type must be a number (or 'inf'), got {type(norm_type).__name__}")
    try:
        norm_type = float(norm_type)
    except ValueError:
        raise ValueError(f"{fn}: norm_type must be a number (or 'inf'), got {norm_type!r}") from None
    if math.isnan(norm_type):
        raise ValueError(f"{fn}: norm_type must be a number, got nan")
    _check_foreach(fn, foreach)
    pairs = [(p, p.grad) for p in parameters if p.grad is not None]
    if not pairs:
        return np.float32(0.0)
    dtype = np.result_type(*[g.dtype for _, g in pairs])
    # Each gradient's norm rounded to its dtype, as PyTorch's per-gradient norms are (it matters for mixed dtypes).
    norms = np.array([g.dtype.type(_vector_norm(np.asarray(g), norm_type)) for _, g in pairs], np.float64)
    total = dtype.type(_vector_norm(norms, norm_type))
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    # PyTorch's `max_norm / (total + 1e-6)` on a tensor is `reciprocal(total + 1e-6) * max_norm`, in its dtype.
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        coef = (dtype.type(1.0) / (total + dtype.type(1e-6))) * dtype.type(max_norm)
        coef = np.minimum(coef, dtype.type(1.0))  # clamp(max=1): NaN stays NaN
        for p, g in pairs:
            if g.flags.writeable:
                np.multiply(g, coef.astype(g.dtype), out=g)
            else:
                p.grad = g * coef.astype(g.dtype)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient of ``parameters`` to ``[-clip_value, clip_value]``
    in place, as PyTorch (NaN stays NaN); None gradients are skipped."""
    fn = "clip_grad_value_"
    parameters = _params(fn, parameters)
    clip_value = _limit(fn, "clip_value", clip_value)
    _check_foreach(fn, foreach)
    for p in parameters:
        g = p.grad
        if g is None:
            continue
        lo, hi = g.dtype.type(-clip_value), g.dtype.type(clip_value)
        if g.flags.writeable:
            np.clip(g, lo, hi, out=g)
        else:
            p.grad = np.clip(g, lo, hi)
