"""Chains with norms and dropout for TrainStep and Predictor: the op list read
off the modules, and how each backend runs it (one C++ call on cpp: the
_core.SequencePlan; a loop over the backend's kernels elsewhere).

Ops: "linear" (a Linear, fused with the activation right after it),
"batch_norm", "layer_norm" (over the last dimension), "activation" (one not
right after a Linear, e.g. after a norm) and "dropout". Identity and
Dropout(p=0) are dropped (they are the identity). Every op has a weight and
a bias slot (None where absent), in this order: the order of ``_slots``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import backends
from . import functional as F
from .backends._validation import SAVES_OUTPUT
from .nn.activation import Identity, _Activation
from .nn.batchnorm import BatchNorm1d
from .nn.dropout import Dropout
from .nn.linear import Linear
from .nn.normalization import LayerNorm

_SUPPORTED = ("Linear, BatchNorm1d, LayerNorm, Dropout and the activation modules (Identity, ReLU, LeakyReLU, "
              "Sigmoid, Tanh, GELU, SiLU)")


@dataclass
class OpSpec:
    kind: str
    module: object
    activation: str = "identity"
    negative_slope: float = 0.01
    width_in: int = 0
    width_out: int = 0

    @property
    def weight(self):
        return getattr(self.module, "weight", None) if self.kind in ("linear", "batch_norm", "layer_norm") else None

    @property
    def bias(self):
        return getattr(self.module, "bias", None) if self.kind in ("linear", "batch_norm", "layer_norm") else None


def compile_ops(named_modules: list, fn: str) -> list:
    """The ops of the flattened (name, module) chain, widths checked; TypeError naming what cannot compile."""
    ops: list = []
    for name, m in named_modules:
        if isinstance(m, Identity) or (type(m) is Dropout and m.p == 0.0):
            continue
        if type(m) is Linear:
            ops.append(OpSpec("linear", m, m.activation, m.negative_slope, m.in_features, m.out_features))
        elif isinstance(m, _Activation):
            last = ops[-1] if ops else None
            if last is not None and last.kind == "linear" and last.activation == "identity":
                last.activation, last.negative_slope = m.kernel_name, float(m.negative_slope)
            else:
                ops.append(OpSpec("activation", m, m.kernel_name, float(m.negative_slope)))
        elif type(m) is BatchNorm1d:
            ops.append(OpSpec("batch_norm", m, width_in=m.num_features, width_out=m.num_features))
        elif type(m) is LayerNorm:
            if len(m.normalized_shape) != 1:
                raise TypeError(f"{fn}: cannot compile module {name} (LayerNorm{m.normalized_shape}): a chain "
                                "of (batch, features) rows takes a LayerNorm over the last dimension only")
            d = m.normalized_shape[0]
            ops.append(OpSpec("layer_norm", m, width_in=d, width_out=d))
        elif type(m) is Dropout:
            ops.append(OpSpec("dropout", m))
        else:
            raise TypeError(f"{fn}: cannot compile module {name} ({type(m).__name__}): supported are {_SUPPORTED}; "
                            "train this model with the eager loop instead")
    if not any(op.kind == "linear" for op in ops):
        raise TypeError(f"{fn}: the model has no Linear layer")
    # Widths: each op passes its input width on; the first sized op fixes the input's.
    width = next(op.width_in for op in ops if op.width_in or op.kind in ("linear", "batch_norm", "layer_norm"))
    for i, op in enumerate(ops):
        if op.kind in ("activation", "dropout"):
            op.width_in = op.width_out = width
        elif op.width_in != width:
            raise ValueError(f"{fn}: op {i} ({type(op.module).__name__}) takes {op.width_in} features but gets "
                             f"{width}")
        width = op.width_out
    return ops


def dtype_of(ops: list, fn: str) -> np.dtype:
    dtypes = []
    for op in ops:
        if op.kind == "linear":
            dtypes.append(op.module.weight.data.dtype)
        elif op.kind in ("batch_norm", "layer_norm"):
            dtypes.append(op.module._dtype if op.weight is None else op.weight.data.dtype)
    for d in dtypes[1:]:
        if d != dtypes[0]:
            raise TypeError(f"{fn}: every layer must have one dtype; found {dtypes[0]} and {d}")
    return dtypes[0]


def op_tuples(ops: list) -> list:
    """What _core.SequencePlan takes: one 10-tuple per op."""
    out = []
    for op in ops:
        m = op.module
        eps = float(getattr(m, "eps", 1e-5))
        p = float(m.p) if op.kind == "dropout" else 0.0
        batch_stats = op.kind == "batch_norm" and not m.track_running_stats
        out.append((op.kind, op.activation, float(op.negative_slope), op.weight is not None, op.bias is not None,
                    op.width_in, op.width_out, eps, p, batch_stats))
    return out


def slots(ops: list) -> list:
    """(weight, bias) Parameters per op, None where absent."""
    return [p for op in ops for p in (op.weight, op.bias)]


def train_extras(ops: list, batch: int, fn: str) -> list:
    """Per op what one training step needs besides parameters; counts the step
    as the eager modules do (num_batches_tracked, dropout's step)."""
    extras = []
    for op in ops:
        m = op.module
        if op.kind == "batch_norm":
            momentum = m.momentum_for_step() if m.track_running_stats else 0.0
            if batch == 1:
                raise ValueError(f"{fn}: BatchNorm1d expects more than 1 value per channel when training, got a "
                                 f"batch of 1")
            extras.append(("batch_norm", m.running_mean, m.running_var, float(momentum)))
        elif op.kind == "dropout":
            extras.append(("dropout", *m.next_key()))
        else:
            extras.append(None)
    return extras


def eval_extras(ops: list, buffers: dict | None = None) -> list:
    """Per op what the eval forward needs (running statistics, from ``buffers`` when given)."""
    extras = []
    for i, op in enumerate(ops):
        if op.kind == "batch_norm":
            rm, rv = buffers[i] if buffers is not None else (op.module.running_mean, op.module.running_var)
            extras.append(("batch_norm", rm, rv, 0.0))
        elif op.kind == "dropout":
            extras.append(("dropout", 0, 0, 0))
        else:
            extras.append(None)
    return extras


# ------------------------------------------------------ the Python loop

def python_forward(ops: list, params: list, extras: list, x: np.ndarray, training: bool):
    """(output, what each op saved) through the backend's kernels."""
    be = backends.current
    saved = []
    for op, w, b, extra in zip(ops, params[0::2], params[1::2], extras):
        kept = None
        if op.kind == "linear":
            if training:
                y, kept = F.linear_forward(x, w, b, op.activation, negative_slope=op.negative_slope)
            else:
                y = F.linear(x, w, b, op.activation, negative_slope=op.negative_slope)
        elif op.kind == "batch_norm":
            _, rm, rv, momentum = extra
            if training or op.module.track_running_stats is False:
                y, mean, invstd, var = be.batch_norm_forward(x, w, b, op.module.eps)
                if training and rm is not None and len(x):
                    be.batch_norm_update(rm, rv, mean, var, momentum)
                kept = (mean, invstd)
            else:
                y = be.batch_norm_eval(x, rm, rv, w, b, op.module.eps)
        elif op.kind == "layer_norm":
            y, mean, rstd = be.layer_norm_forward(x, w, b, op.module.eps)
            kept = (mean, rstd)
        elif op.kind == "activation":
            y = be.activation(x, op.activation, op.negative_slope, None)
        else:  # dropout
            y = be.dropout(x, op.module.p, *extra[1:]) if training else x
        saved.append((x, y, kept))
        x = y
    return x, saved


def python_backward(ops: list, params: list, extras: list, saved: list, grad: np.ndarray) -> list:
    """Gradients [gw, gb] per op (None where absent), from dL/d(output)."""
    be = backends.current
    grads = [None] * len(params)
    for i in reversed(range(len(ops))):
        op, (x, y, kept), w = ops[i], saved[i], params[2 * i]
        needs_x = i > 0
        gw = gb = None
        if op.kind == "linear":
            grad, gw, gb = F.linear_backward(grad, x, w, kept, op.activation, negative_slope=op.negative_slope,
                                             needs_input_grad=needs_x)
        elif op.kind == "batch_norm":
            grad, gw, gb = be.batch_norm_backward(grad, x, kept[0], kept[1], w, needs_x)
        elif op.kind == "layer_norm":
            grad, gw, gb = be.layer_norm_backward(grad, x, kept[0], kept[1], w, params[2 * i + 1] is not None,
                                                  needs_x)
        elif op.kind == "activation":
            if needs_x:
                saved_for = None if op.activation == "identity" else (y if op.activation in SAVES_OUTPUT else x)
                grad = be.activation_grad(grad, saved_for, op.activation, op.negative_slope)
        elif needs_x:  # dropout
            grad = be.dropout(grad, op.module.p, *extras[i][1:])
        grads[2 * i] = gw
        grads[2 * i + 1] = gb if params[2 * i + 1] is not None else None
    return grads
