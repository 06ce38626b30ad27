"""Differentiable ops on Tensors: the fused layer, activations and losses.

The layer and activations run the active backend's fused kernels
(``fusedprop.functional``); each records one node whose backward is one
kernel call. Losses are short NumPy formulas in stable form with PyTorch's
semantics. Float input is converted to the layer's dtype; integer or bool
input raises TypeError (as PyTorch does: it never casts silently to float).
"""

from __future__ import annotations

import sys

import numpy as np

from .. import backends as _backends
from .._arrays import as_array
from ..tensor import Node, Tensor

_grad = sys.modules[Tensor.__module__]._state  # per-thread grad mode (fusedprop.tensor is also a function)

__all__ = ["linear", "activation", "mse_loss", "l1_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "cross_entropy"]

_REDUCTIONS = ("mean", "sum", "none")
_SAVES_OUTPUT = frozenset({"relu", "leaky_relu", "sigmoid", "tanh"})

_new = object.__new__


def _input(x, dtype: np.dtype, what: str = "input"):
    """(array in ``dtype``, tensor needing grad or None, original dtype or None)."""
    if x.__class__ is Tensor:
        data, t = x.data, (x if x.requires_grad else None)
    elif isinstance(x, Tensor):
        data, t = x.data, (x if x.requires_grad else None)
    else:
        data, t = as_array(x, "linear", what), None
    if data.dtype is dtype or data.dtype == dtype:
        return data, t, None
    if data.dtype.kind != "f":
        raise TypeError(f"{what} must be a floating-point tensor (float32 or float64), got dtype {data.dtype}; "
                        f"convert it with .astype(np.float32)")
    return data.astype(dtype), t, data.dtype


# -------------------------------------------------------------------- layer

class LinearBackward(Node):
    __slots__ = ("x", "w", "saved", "act", "slope", "has_bias", "x_dtype")
    fresh = True

    @property
    def name(self):
        return "LinearBackward" if self.act == "identity" else f"Linear{self.act.title().replace('_', '')}Backward"

    def backward(self, g):
        needs_x = self.inputs[0] is not None
        gx, gw, gb = _backends.current.linear_backward(g, self.x, self.w, self.saved, self.act, self.slope, needs_x)
        if needs_x and self.x_dtype is not None:
            gx = gx.astype(self.x_dtype)
        return gx, gw, (gb if self.has_bias else None)


def linear(x, weight: Tensor, bias: Tensor | None = None, activation: str = "identity",
           negative_slope: float = 0.01, record: bool = True) -> Tensor:
    """``activation(x @ weight.T + bias)`` as one fused kernel call, forward and backward.

    ``record=False`` (eval mode) runs the inference kernel and saves nothing.
    """
    w = weight.data
    xd, xt, x_dtype = _input(x, w.dtype)
    b = None if bias is None else bias.data
    if record and _grad.enabled and (weight.requires_grad or xt is not None
                                             or (bias is not None and bias.requires_grad)):
        y, saved = _backends.current.linear_forward(xd, w, b, activation, negative_slope)
        node = _new(LinearBackward)
        node.inputs = (xt, weight if weight.requires_grad else None,
                       bias if bias is not None and bias.requires_grad else None)
        node.x = xd
        node.w = w
        node.saved = saved
        node.act = activation
        node.slope = negative_slope
        node.has_bias = bias is not None
        node.x_dtype = x_dtype
        return Tensor._from_op(y, node)
    return Tensor(_backends.current.linear(xd, w, b, activation, negative_slope, None))


# -------------------------------------------------------------- activation

class ActivationBackward(Node):
    __slots__ = ("saved", "act", "slope")
    fresh = False  # a backend may hand grad_y back for identity: a leaf input gets a copy

    @property
    def name(self):
        return f"{self.act.title().replace('_', '')}Backward0"

    def backward(self, g):
        return (_backends.current.activation_grad(g, self.saved, self.act, self.slope),)


def activation(x, name: str, negative_slope: float = 0.01, record: bool = True) -> Tensor:
    """Elementwise ``name(x)`` (identity, relu, leaky_relu, sigmoid, tanh, gelu, gelu_tanh, silu)."""
    if isinstance(x, Tensor):
        xd, xt = x.data, x
    else:
        xd, xt = as_array(x, f"activation {name!r}", "input"), None
    if xd.dtype.kind != "f":
        raise TypeError(f"activation {name!r}: input must be a floating-point tensor, got dtype {xd.dtype}")
    y = _backends.current.activation(xd, name, negative_slope, None)
    if record and _grad.enabled and xt is not None and xt.requires_grad:
        node = _new(ActivationBackward)
        node.inputs = (xt,)
        node.saved = None if name == "identity" else (y if name in _SAVES_OUTPUT else xd)
        node.act = name
        node.slope = negative_slope
        return Tensor._from_op(y, node)
    return Tensor(y)


# ------------------------------------------------------------------- losses

class LossBackward(Node):
    """Backward of a loss: ``grad_input = reduce'(g) * dloss`` with dloss precomputed."""
    __slots__ = ("dloss", "reduction", "label", "in_dtype")
    fresh = True

    @property
    def name(self):
        return self.label

    def backward(self, g):
        d = self.dloss
        if self.reduction == "none":
            gi = d * (g if g.ndim == d.ndim else g.reshape(g.shape + (1,) * (d.ndim - g.ndim)))
        else:
            gi = d * g
        if self.in_dtype is not None:
            gi = gi.astype(self.in_dtype)
        return (gi,)


def _check_reduction(fn: str, reduction) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of 'mean', 'sum', 'none', got {reduction!r}")
    return reduction


def _loss_input(fn: str, input):
    if isinstance(input, Tensor):
        data, t = input.data, (input if input.requires_grad else None)
    else:
        data, t = as_array(input, fn, "input"), None
    if data.dtype not in (np.float32, np.float64):
        if data.dtype.kind != "f":
            raise TypeError(f"{fn}: input must be float32 or float64, got dtype {data.dtype}")
        data = data.astype(np.float32)
    return data, t


def _float_target(fn: str, target, data: np.ndarray) -> np.ndarray:
    y = as_array(target.data if isinstance(target, Tensor) else target, fn, "target")
    if y.dtype.kind not in "fiub":
        raise TypeError(f"{fn}: target must be numeric, got dtype {y.dtype}")
    if y.shape != data.shape:
        raise ValueError(f"{fn}: target shape {y.shape} must equal input shape {data.shape}")
    return y.astype(data.dtype, copy=False)


def _finish(fn_label: str, loss: np.ndarray, dloss: np.ndarray, reduction: str, t, n_mean: int,
            in_dtype=None) -> Tensor:
    """Reduce the per-element ``loss``; record a node holding d(reduced)/d(input)."""
    dt = loss.dtype.type
    if reduction == "mean":
        out = np.asarray(loss.sum() / dt(n_mean) if n_mean else dt(np.nan), dtype=loss.dtype)
        scale = dt(1.0 / n_mean) if n_mean else dt(np.nan)
    elif reduction == "sum":
        out = np.asarray(loss.sum(), dtype=loss.dtype)
        scale = None
    else:
        out = loss
        scale = None
    if t is None or not _grad.enabled:
        return Tensor(out)
    if scale is not None:
        dloss = dloss * scale
    node = _new(LossBackward)
    node.inputs = (t,)
    node.dloss = dloss
    node.reduction = reduction
    node.label = fn_label
    node.in_dtype = in_dtype
    return Tensor._from_op(out, node)


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    fn = "mse_loss"
    _check_reduction(fn, reduction)
    x, t = _loss_input(fn, input)
    diff = x - _float_target(fn, target, x)
    dloss = None if t is None else diff * x.dtype.type(2)
    return _finish("MseLossBackward0", diff * diff, dloss, reduction, t, x.size)


def l1_loss(input, target, reduction: str = "mean") -> Tensor:
    fn = "l1_loss"
    _check_reduction(fn, reduction)
    x, t = _loss_input(fn, input)
    diff = x - _float_target(fn, target, x)
    dloss = None if t is None else np.sign(diff)
    return _finish("L1LossBackward0", np.abs(diff), dloss, reduction, t, x.size)


_BCE_EPS = 1e-12  # PyTorch's clamp of (1 - p) * p in binary_cross_entropy's backward


def binary_cross_entropy(input, target, reduction: str = "mean") -> Tensor:
    """``-(y log p + (1 - y) log(1 - p))`` with each log clamped to >= -100, as PyTorch."""
    fn = "binary_cross_entropy"
    _check_reduction(fn, reduction)
    p, t = _loss_input(fn, input)
    y = _float_target(fn, target, p)
    if p.size and not (np.all(p >= 0) and np.all(p <= 1)):
        raise ValueError(f"{fn}: every element of input must be a probability in [0, 1] "
                         f"(apply a Sigmoid, or use BCEWithLogitsLoss); got values in "
                         f"[{np.nanmin(p)}, {np.nanmax(p)}]")
    dt = p.dtype.type
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), dt(-100))
        log_1p = np.maximum(np.log1p(-p), dt(-100))
    loss = -(y * log_p + (1 - y) * log_1p)
    dloss = None if t is None else (p - y) / np.maximum((1 - p) * p, dt(_BCE_EPS))
    return _finish("BinaryCrossEntropyBackward0", loss, dloss, reduction, t, p.size)


def binary_cross_entropy_with_logits(input, target, reduction: str = "mean") -> Tensor:
    """``BCE(sigmoid(x), y)`` in the stable form ``max(x, 0) - x y + log1p(exp(-|x|))``."""
    fn = "binary_cross_entropy_with_logits"
    _check_reduction(fn, reduction)
    x, t = _loss_input(fn, input)
    y = _float_target(fn, target, x)
    e = np.exp(-np.abs(x))
    loss = np.maximum(x, 0) - x * y + np.log1p(e)
    if t is None:
        dloss = None
    else:
        sig = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        dloss = sig - y
    return _finish("BinaryCrossEntropyWithLogitsBackward0", loss, dloss, reduction, t, x.size)


def cross_entropy(input, target, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits ``(N, C)`` (or ``(C,)``) against class
    indices ``(N,)`` (integers in ``[0, C)``) or class probabilities ``(N, C)``,
    with PyTorch's label smoothing."""
    fn = "cross_entropy"
    _check_reduction(fn, reduction)
    if not (isinstance(label_smoothing, (int, float, np.floating)) and 0.0 <= label_smoothing <= 1.0):
        raise ValueError(f"{fn}: label_smoothing must be a float in [0, 1], got {label_smoothing!r}")
    x, t = _loss_input(fn, input)
    y = as_array(target.data if isinstance(target, Tensor) else target, fn, "target")
    if (not label_smoothing and reduction != "none" and x.ndim == 2 and isinstance(y, np.ndarray)
            and y.dtype.kind in "iu" and y.shape == (x.shape[0],) and x.shape[1] and _grad.enabled):
        return _cross_entropy_indices(x, t, y, reduction)
    if x.ndim not in (1, 2):
        raise ValueError(f"{fn}: input must be logits of shape (N, C) or (C,), got shape {x.shape}")
    single = x.ndim == 1
    if single:
        x = x[None, :]
    n, c = x.shape
    y = np.asarray(y)
    dt = x.dtype.type
    eps = float(label_smoothing)

    m = x.max(axis=1, keepdims=True) if c else np.zeros((n, 1), x.dtype)
    shifted = x - m
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    logp = shifted - np.log(sum_exp)

    if y.dtype.kind in "iu":  # class indices
        expected = (n,) if not single else ()
        if y.shape != expected:
            raise ValueError(f"{fn}: class-index target must have shape {expected} for input of shape "
                             f"{(c,) if single else (n, c)}, got {y.shape}")
        y = y.reshape(n)
        if n and (y.min() < 0 or y.max() >= c):
            bad = y[(y < 0) | (y >= c)][0]
            raise ValueError(f"{fn}: target class index {int(bad)} is out of range [0, {c}) "
                             f"(input has {c} classes)")
        rows = np.arange(n)
        nll = -logp[rows, y]
        if eps:
            loss = dt(1 - eps) * nll - dt(eps / c) * logp.sum(axis=1)
        else:
            loss = nll
        if t is not None:
            soft = exp / sum_exp
            if eps:
                soft -= dt(eps / c)
                soft[rows, y] -= dt(1 - eps)
            else:
                soft[rows, y] -= 1
            dloss = soft
        else:
            dloss = None
    elif y.dtype.kind == "f":  # class probabilities
        if y.shape != ((c,) if single else (n, c)):
            raise ValueError(f"{fn}: probability target must have the input's shape "
                             f"{(c,) if single else (n, c)}, got {y.shape}")
        y = y.astype(x.dtype, copy=False).reshape(n, c)
        if eps:
            y = y * dt(1 - eps) + dt(eps / c)
        loss = -(y * logp).sum(axis=1)
        dloss = None if t is None else (exp / sum_exp) * y.sum(axis=1, keepdims=True) - y
    else:
        raise TypeError(f"{fn}: target must be integer class indices or float class probabilities, "
                        f"got dtype {y.dtype}")
    if single:
        loss = loss.reshape(())
        if dloss is not None:
            dloss = dloss.reshape(c)
    elif dloss is not None and reduction == "none":
        pass  # LossBackward broadcasts the (N,) grad over C
    return _finish("NllLossBackward0", loss, dloss, reduction, t, n)


_ROWS: dict = {}
_max_reduce = np.maximum.reduce
_add_reduce = np.add.reduce


def _row_offsets(n: int, c: int) -> np.ndarray:
    """``arange(n) * c``: flat offsets of the rows of a C-contiguous (n, c) array (cached)."""
    off = _ROWS.get((n, c))
    if off is None:
        if len(_ROWS) > 64:
            _ROWS.clear()
        off = _ROWS[(n, c)] = np.arange(n) * c
    return off


def _cross_entropy_indices(x: np.ndarray, t, y: np.ndarray, reduction: str) -> Tensor:
    """The training hot path: logits (N, C), class indices (N,), no smoothing, mean or sum.

    ``loss_i = log(sum_c exp(x_ic - m_i)) + m_i - x_{i,y_i}``; the gradient
    ``softmax - onehot`` (times 1/N for the mean) reuses the exp buffer.
    """
    n, c = x.shape
    # One unsigned max checks both ends: negative indices wrap to huge values.
    if n and _max_reduce(y.astype(np.intp, copy=False).view(np.uintp)) >= c:
        bad = y[(y < 0) | (y >= c)][0]
        raise ValueError(f"cross_entropy: target class index {int(bad)} is out of range [0, {c}) "
                         f"(input has {c} classes)")
    dt = x.dtype.type
    # ufunc.reduce directly: ndarray.max/sum add a Python layer per call.
    m = _max_reduce(x, 1) if n else np.zeros(0, x.dtype)
    e = np.subtract(x, m[:, None])
    np.exp(e, out=e)
    sum_exp = _add_reduce(e, 1)
    flat = _row_offsets(n, c) + y  # flat index of each target logit (1-D indexing is the fast kind)
    lse = np.log(sum_exp)
    lse += m
    lse -= x.ravel().take(flat)
    total = _add_reduce(lse)
    if reduction == "mean":
        scale = dt(1.0 / n) if n else dt(np.nan)
        out = np.asarray(total * scale, dtype=x.dtype)
    else:
        scale = dt(1)
        out = np.asarray(total, dtype=x.dtype)
    if t is None:
        return Tensor(out)
    np.multiply(e, (scale / sum_exp)[:, None], out=e)
    e_flat = e.reshape(-1)
    e_flat[flat] -= scale
    node = _new(LossBackward)
    node.inputs = (t,)
    node.dloss = e
    node.reduction = reduction
    node.label = "NllLossBackward0"
    node.in_dtype = None
    return Tensor._from_op(out, node)


# ------------------------------------------------- dropout and normalisation
from ._norm_ops import batch_norm, dropout, layer_norm  # noqa: E402,F401

__all__ += ["dropout", "batch_norm", "layer_norm"]
