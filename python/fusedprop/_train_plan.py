"""What TrainStep can compile: a chain of fused Linear layers, a loss and an
optimizer, read off the nn modules once and checked with clear errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._arrays import as_array
from .nn.activation import Identity, _Activation
from .nn.container import Sequential
from .nn.dropout import Dropout
from .nn.linear import Linear
from .nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .nn.module import Module
from .optim.adam import Adam
from .optim.sgd import SGD
from .tensor import Tensor
from ._sequence import compile_ops, dtype_of

SUPPORTED_LOSSES = (MSELoss, BCEWithLogitsLoss, CrossEntropyLoss)
SUPPORTED_OPTIMIZERS = (SGD, Adam)  # AdamW is an Adam


@dataclass(frozen=True)
class LayerSpec:
    linear: Linear
    activation: str
    negative_slope: float


@dataclass(frozen=True)
class LossSpec:
    kind: str  # "mse" | "bce_with_logits" | "cross_entropy"
    reduction: str  # "mean" | "sum"
    label_smoothing: float


def _flatten(model: Module, prefix: str = "") -> list:
    if isinstance(model, Sequential):
        out = []
        for name, child in model._modules.items():
            if child is not None:
                out.extend(_flatten(child, f"{prefix}{name}."))
        return out
    return [(prefix.rstrip(".") or type(model).__name__, model)]


def compile_layers(model) -> list:
    """Linear layers, each with the activation that follows it fused in."""
    if not isinstance(model, (Sequential, Linear)):
        raise TypeError(f"TrainStep: model must be an nn.Sequential or nn.Linear, got {type(model).__name__}")
    modules = [(n, m) for n, m in _flatten(model)
               if not isinstance(m, Identity) and not (type(m) is Dropout and m.p == 0.0)]
    layers: list = []
    for name, module in modules:
        if type(module) is Linear:
            layers.append([module, module.activation, module.negative_slope])
        elif isinstance(module, _Activation):
            if not layers or layers[-1][1] != "identity":
                where = "it does not follow a Linear" if not layers else "the Linear before it already has an activation"
                raise TypeError(f"TrainStep: cannot compile module {name} ({type(module).__name__}): {where}; "
                                "put each activation right after a Linear")
            layers[-1][1:] = [module.kernel_name, module.negative_slope]
        else:
            raise TypeError(f"TrainStep: cannot compile module {name} ({type(module).__name__}): only Linear and "
                            "activation modules (Identity, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, SiLU) are supported; "
                            "train this model with the eager loop instead")
    if not layers:
        raise TypeError("TrainStep: the model has no Linear layer")
    dtype = layers[0][0].weight.data.dtype
    for (a, *_), (b, *_) in zip(layers, layers[1:]):
        if b.weight.data.dtype != dtype:
            raise TypeError(f"TrainStep: every layer must have one dtype; found {dtype} and {b.weight.data.dtype}")
        if a.out_features != b.in_features:
            raise ValueError(f"TrainStep: a layer with out_features={a.out_features} feeds one with "
                             f"in_features={b.in_features}")
    return [LayerSpec(lin, act, float(slope)) for lin, act, slope in layers]


def compile_model(model, fn: str = "TrainStep"):
    """``(layers, None)`` for a chain of fused Linear layers (the TrainPlan /
    InferencePlan path), else ``(None, ops)`` with norms, dropout or
    standalone activations (the SequencePlan path, see _sequence.py)."""
    if not isinstance(model, (Sequential, Linear)):
        raise TypeError(f"{fn}: model must be an nn.Sequential or nn.Linear, got {type(model).__name__}")
    ops = compile_ops(_flatten(model), fn)
    if all(op.kind == "linear" for op in ops):
        return compile_layers(model), None
    dtype_of(ops, fn)
    return None, ops


def compile_loss(criterion) -> LossSpec:
    if not isinstance(criterion, SUPPORTED_LOSSES):
        raise TypeError(f"TrainStep: cannot compile loss {type(criterion).__name__}; supported: "
                        f"{', '.join(c.__name__ for c in SUPPORTED_LOSSES)}")
    if criterion.reduction not in ("mean", "sum"):
        raise ValueError(f"TrainStep: loss reduction must be 'mean' or 'sum' (a step needs a scalar), "
                         f"got {criterion.reduction!r}")
    kind = {MSELoss: "mse", BCEWithLogitsLoss: "bce_with_logits", CrossEntropyLoss: "cross_entropy"}[type(criterion)]
    return LossSpec(kind, criterion.reduction, float(getattr(criterion, "label_smoothing", 0.0)))


def compile_optimizer(optimizer, slots: list) -> None:
    """slots: (weight, bias) per layer or op, None where absent."""
    if not isinstance(optimizer, SUPPORTED_OPTIMIZERS):
        raise TypeError(f"TrainStep: cannot compile optimizer {type(optimizer).__name__}; supported: SGD, Adam, AdamW")
    owned = {id(p) for g in optimizer.param_groups for p in g["params"]}
    for k, p in enumerate(slots):
        if p is not None and id(p) not in owned:
            raise ValueError(f"TrainStep: a parameter of layer {k // 2} is not in the optimizer; pass "
                             "model.parameters() to it")


def targets_for(loss: LossSpec, y, batch: int, n_out: int, dtype: np.dtype) -> np.ndarray:
    """The step's targets as the kernels take them, checked against the output."""
    y = as_array(y.data if isinstance(y, Tensor) else y, "TrainStep", "y")
    if loss.kind == "cross_entropy":
        if y.dtype.kind not in "iu":
            raise TypeError(f"TrainStep: CrossEntropyLoss needs integer class indices as y, got dtype {y.dtype}")
        if y.shape != (batch,):
            raise ValueError(f"TrainStep: y must have shape ({batch},) (one class index per row), got {y.shape}")
        # The range [0, n_out) is checked by the loss itself (in C++ on the cpp backend).
        return np.ascontiguousarray(y, dtype=np.int64)
    if y.dtype.kind not in "fiub":
        raise TypeError(f"TrainStep: y must be numeric, got dtype {y.dtype}")
    if y.shape != (batch, n_out):
        raise ValueError(f"TrainStep: y must have the output's shape {(batch, n_out)}, got {y.shape}")
    return y.astype(dtype, copy=False)
