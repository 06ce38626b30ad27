"""Differentiable dropout, batch norm and layer norm (re-exported by ``nn.functional``).

Each records one node whose backward is one backend kernel call. Dropout's
node keeps only its key (seed, stream, step): the backward regenerates the
mask. The norms keep their input and the per-feature (or per-row) mean and
inverse standard deviation; x-hat is recomputed in the backward.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backends as _backends
from .._arrays import as_array
from ..tensor import Node, Tensor
from .functional import _grad, _input

__all__ = ["dropout", "batch_norm", "layer_norm"]

_new = object.__new__


def _float_input(x, dtype, fn: str):
    """(array in dtype, tensor needing grad or None, original dtype or None); dtype None keeps a float input's."""
    if dtype is None:
        data = x.data if isinstance(x, Tensor) else as_array(x, fn, "input")
        if data.dtype not in (np.float32, np.float64):
            if data.dtype.kind != "f":
                raise TypeError(f"{fn}: input must be a floating-point tensor (float32 or float64), "
                                f"got dtype {data.dtype}")
            dtype = np.dtype(np.float32)
        else:
            dtype = data.dtype
    return _input(x, np.dtype(dtype), "input")


# ------------------------------------------------------------------ dropout

class DropoutBackward(Node):
    __slots__ = ("p", "key", "x_dtype")
    fresh = True

    name = "NativeDropoutBackward0"

    def backward(self, g):
        gx = _backends.current.dropout(g, self.p, *self.key)
        return (gx if self.x_dtype is None else gx.astype(self.x_dtype),)


def dropout(x, p: float, key: tuple, record: bool = True) -> Tensor:
    """``x * mask / (1 - p)``, the mask drawn from Philox keyed on ``key = (seed, stream, step)``."""
    xd, xt, _ = _float_input(x, None, "dropout")
    y = _backends.current.dropout(xd, p, *key)
    if record and _grad.enabled and xt is not None:
        node = _new(DropoutBackward)
        node.inputs = (xt,)
        node.p = p
        node.key = key
        node.x_dtype = None
        return Tensor._from_op(y, node)
    return Tensor(y)


# --------------------------------------------------------------- batch norm

def _channels_last(xd: np.ndarray) -> np.ndarray:
    """(N, C) as is; (N, C, L) as the (N*L, C) matrix batch norm reduces over."""
    if xd.ndim == 2:
        return xd
    n, c, l = xd.shape
    return np.ascontiguousarray(xd.transpose(0, 2, 1)).reshape(n * l, c)


def _channels_back(a: np.ndarray, shape: tuple) -> np.ndarray:
    if len(shape) == 2:
        return a
    n, c, l = shape
    return np.ascontiguousarray(a.reshape(n, l, c).transpose(0, 2, 1))


class BatchNormBackward(Node):
    __slots__ = ("x", "mean", "invstd", "w", "shape", "x_dtype")
    fresh = True

    name = "NativeBatchNormBackward0"

    def backward(self, g):
        needs_x = self.inputs[0] is not None
        gx, gw, gb = _backends.current.batch_norm_backward(_channels_last(g), self.x, self.mean, self.invstd,
                                                           self.w, needs_x)
        if needs_x:
            gx = _channels_back(gx, self.shape)
            if self.x_dtype is not None:
                gx = gx.astype(self.x_dtype)
        return gx, gw, gb


def batch_norm(x, running_mean, running_var, weight, bias, training: bool, momentum: float, eps: float,
               record: bool = True, fn: str = "batch_norm") -> Tensor:
    """PyTorch's ``F.batch_norm`` on (N, C) or (N, C, L): batch statistics when
    ``training`` (the running ones, if given, updated in place with ``momentum``
    and the unbiased variance), else the running statistics."""
    dtype = None
    for ref in (weight, running_mean):
        if ref is not None:
            dtype = (ref.data if isinstance(ref, Tensor) else ref).dtype
            break
    xd, xt, x_dtype = _float_input(x, dtype, fn)
    if xd.ndim not in (2, 3):
        raise ValueError(f"{fn}: expected 2D or 3D input (got {xd.ndim}D input)")
    c = xd.shape[1]
    n_per_channel = xd.shape[0] * (xd.shape[2] if xd.ndim == 3 else 1)
    if training and n_per_channel == 1:
        raise ValueError(f"{fn}: expected more than 1 value per channel when training, got input size {xd.shape}")
    w = None if weight is None else weight.data
    b = None if bias is None else bias.data
    if w is not None and w.shape != (c,):
        raise ValueError(f"{fn}: input has {c} channels (shape {xd.shape}) but the layer has {w.shape[0]} features")
    if running_mean is not None and running_mean.shape != (c,):
        raise ValueError(f"{fn}: input has {c} channels (shape {xd.shape}) but running_mean has shape "
                         f"{running_mean.shape}")
    be = _backends.current
    x2 = _channels_last(xd)
    if not training:
        return Tensor(_channels_back(be.batch_norm_eval(x2, running_mean, running_var, w, b, eps), xd.shape))
    y, mean, invstd, var = be.batch_norm_forward(x2, w, b, eps)
    if running_mean is not None and n_per_channel > 0:  # an empty batch leaves them alone, as PyTorch
        be.batch_norm_update(running_mean, running_var, mean, var, momentum)
    y = _channels_back(y, xd.shape)
    wt = weight if weight is not None and weight.requires_grad else None
    bt = bias if bias is not None and bias.requires_grad else None
    if record and _grad.enabled and (xt is not None or wt is not None or bt is not None):
        node = _new(BatchNormBackward)
        node.inputs = (xt, wt, bt)
        node.x, node.mean, node.invstd, node.w = x2, mean, invstd, w
        node.shape = xd.shape
        node.x_dtype = x_dtype
        return Tensor._from_op(y, node)
    return Tensor(y)


# --------------------------------------------------------------- layer norm

class LayerNormBackward(Node):
    __slots__ = ("x", "mean", "rstd", "w", "shape", "w_shape", "has_bias", "x_dtype")
    fresh = True

    name = "NativeLayerNormBackward0"

    def backward(self, g):
        needs_x = self.inputs[0] is not None
        d = self.x.shape[1]
        gx, gw, gb = _backends.current.layer_norm_backward(g.reshape(-1, d), self.x, self.mean, self.rstd, self.w,
                                                           self.has_bias, needs_x)
        if needs_x:
            gx = gx.reshape(self.shape)
            if self.x_dtype is not None:
                gx = gx.astype(self.x_dtype)
        if gw is not None:
            gw = gw.reshape(self.w_shape)
        if gb is not None:
            gb = gb.reshape(self.w_shape)
        return gx, gw, gb


def layer_norm(x, normalized_shape: tuple, weight, bias, eps: float, record: bool = True) -> Tensor:
    """PyTorch's ``F.layer_norm``: normalise over the last ``len(normalized_shape)`` dimensions."""
    fn = "layer_norm"
    dtype = None if weight is None else weight.data.dtype
    xd, xt, x_dtype = _float_input(x, dtype, fn)
    k = len(normalized_shape)
    if xd.ndim < k or tuple(xd.shape[xd.ndim - k:]) != tuple(normalized_shape):
        raise ValueError(f"{fn}: given normalized_shape={list(normalized_shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, normalized_shape))}], but got input of shape {xd.shape}")
    d = math.prod(normalized_shape)
    x2 = xd.reshape(-1, d) if d else xd.reshape(math.prod(xd.shape[:xd.ndim - k]), 0)
    w = None if weight is None else weight.data.reshape(d)
    b = None if bias is None else bias.data.reshape(d)
    y, mean, rstd = _backends.current.layer_norm_forward(x2, w, b, eps)
    y = y.reshape(xd.shape)
    wt = weight if weight is not None and weight.requires_grad else None
    bt = bias if bias is not None and bias.requires_grad else None
    if record and _grad.enabled and (xt is not None or wt is not None or bt is not None):
        node = _new(LayerNormBackward)
        node.inputs = (xt, wt, bt)
        node.x, node.mean, node.rstd, node.w = x2, mean, rstd, w
        node.shape, node.w_shape = xd.shape, tuple(normalized_shape)
        node.has_bias = bias is not None
        node.x_dtype = x_dtype
        return Tensor._from_op(y, node)
    return Tensor(y)
