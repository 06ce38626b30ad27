"""Argument checks shared by the Python backends (numpy, numba).

The compiled backend makes the same checks in C++ with the same messages.
Each function raises TypeError for a wrong type or dtype and ValueError for a
wrong shape or value, naming the argument, what was expected and what came.
"""

from __future__ import annotations

import math

import numpy as np

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu")
# What the forward keeps for the backward: the least each activation needs.
SAVES_OUTPUT = frozenset({"relu", "leaky_relu", "sigmoid", "tanh"})
SAVES_PREACTIVATION = frozenset({"gelu", "gelu_tanh", "silu"})
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_array(fn: str, name: str, a) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{fn}: {name} must have dtype float32 or float64, got {a.dtype}")
    return a


def check_same_dtype(fn: str, reference_name: str, reference: np.ndarray, name: str, a: np.ndarray) -> None:
    if a.dtype != reference.dtype:
        raise TypeError(f"{fn}: {name} has dtype {a.dtype} but {reference_name} has dtype {reference.dtype}; "
                        "convert one with .astype()")


def check_activation(fn: str, activation, negative_slope) -> str:
    if not isinstance(activation, str):
        raise TypeError(f"{fn}: activation must be a str, got {type(activation).__name__}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{fn}: unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float, np.floating, np.integer)):
        raise TypeError(f"{fn}: negative_slope must be a float, got {type(negative_slope).__name__}")
    if activation == "leaky_relu" and not (math.isfinite(negative_slope) and negative_slope >= 0):
        raise ValueError(f"{fn}: negative_slope must be a finite number >= 0 (the backward tells the sign "
                         f"of the pre-activation from the output), got {negative_slope}")
    return activation


def check_out(fn: str, out, shape: tuple, dtype: np.dtype, inputs: dict) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{fn}: out must have dtype {dtype}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{fn}: out must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{fn}: out is read-only")
    for name, a in inputs.items():
        if a is not None and overlaps(out, a):
            raise ValueError(f"{fn}: out overlaps input {name}; pass a separate array")
    return out


def overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    """True when a and b may share an element (exact up to a work bound)."""
    if a.size == 0 or b.size == 0 or not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=10_000))
    except Exception:  # numpy's TooHardError: too costly to decide, so refuse
        return True


def check_matmul(a, b, out):
    fn = "matmul"
    check_array(fn, "a", a)
    check_array(fn, "b", b)
    check_same_dtype(fn, "a", a, "b", b)
    if a.ndim != 2:
        raise ValueError(f"{fn}: a must be 2-D, got {a.ndim}-D with shape {a.shape}")
    if b.ndim != 2:
        raise ValueError(f"{fn}: b must be 2-D, got {b.ndim}-D with shape {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"{fn}: a.shape[1] ({a.shape[1]}) must equal b.shape[0] ({b.shape[0]}); "
                         f"got a {a.shape} and b {b.shape}")
    if out is not None:
        check_out(fn, out, (a.shape[0], b.shape[1]), a.dtype, {"a": a, "b": b})


def check_linear(fn: str, x, weight, bias, activation, negative_slope) -> tuple:
    """Checks the forward's inputs; returns the output shape."""
    check_array(fn, "x", x)
    check_array(fn, "weight", weight)
    check_same_dtype(fn, "x", x, "weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"{fn}: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if x.ndim < 1:
        raise ValueError(f"{fn}: x must have at least 1 dimension (..., in_features), got a 0-D array")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{fn}: x.shape[-1] ({x.shape[-1]}) must equal weight.shape[1] (in_features = "
                         f"{weight.shape[1]}); got x {x.shape} and weight {weight.shape}")
    if bias is not None:
        check_array(fn, "bias", bias)
        check_same_dtype(fn, "x", x, "bias", bias)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"{fn}: bias must have shape ({weight.shape[0]},) (out_features), got {bias.shape}")
    check_activation(fn, activation, negative_slope)
    return x.shape[:-1] + (weight.shape[0],)


def check_linear_backward(grad_y, x, weight, saved, activation, negative_slope) -> None:
    fn = "linear_backward"
    y_shape = check_linear(fn, x, weight, None, activation, negative_slope)
    check_array(fn, "grad_y", grad_y)
    check_same_dtype(fn, "x", x, "grad_y", grad_y)
    if grad_y.shape != y_shape:
        raise ValueError(f"{fn}: grad_y must have shape {y_shape} (x.shape[:-1] + (out_features,)), "
                         f"got {grad_y.shape}")
    check_saved(fn, saved, activation, y_shape, x.dtype)


def check_saved(fn: str, saved, activation: str, shape: tuple, dtype: np.dtype) -> None:
    if activation == "identity":
        return  # nothing is needed, anything is ignored
    if saved is None:
        what = "output Y" if activation in SAVES_OUTPUT else "pre-activation Z"
        raise ValueError(f"{fn}: activation {activation!r} needs saved (the {what} from the forward), got None")
    check_array(fn, "saved", saved)
    if saved.dtype != dtype:
        raise TypeError(f"{fn}: saved must have dtype {dtype}, got {saved.dtype}")
    if saved.shape != tuple(shape):
        raise ValueError(f"{fn}: saved must have shape {tuple(shape)}, got {saved.shape}")


def check_activation_call(x, name, negative_slope, out) -> None:
    fn = "activation"
    check_array(fn, "x", x)
    check_activation(fn, name, negative_slope)
    if out is not None:
        check_out(fn, out, x.shape, x.dtype, {"x": x})


def check_activation_grad(grad_y, saved, name, negative_slope) -> None:
    fn = "activation_grad"
    check_array(fn, "grad_y", grad_y)
    check_activation(fn, name, negative_slope)
    check_saved(fn, saved, name, grad_y.shape, grad_y.dtype)
