"""PyTorch modules in and out: ``fp.from_torch(module)`` and ``model.to_torch()``.

Both copy the weights (nothing is shared) and keep their dtype (float32 or
float64), the child names (so ``state_dict`` keys match), ``requires_grad``
and the train/eval mode. torch is imported here only when a function runs,
never by ``import fusedprop``.

What maps to what:

=====================================  ===========================================
torch.nn                               fusedprop.nn
=====================================  ===========================================
Sequential (nested too)                Sequential, same child names
Linear (float32/float64)               Linear
ReLU, LeakyReLU(slope >= 0), Sigmoid,  the module of the same name
Tanh, GELU(approximate), SiLU,
Identity
Dropout(p < 1)                         Dropout (its own masks: fusedprop's
                                       generator, not torch's)
BatchNorm1d (float32/float64)          BatchNorm1d, with weight, bias and the
                                       running_mean / running_var /
                                       num_batches_tracked buffers
LayerNorm (float32/float64)            LayerNorm, with weight and bias
=====================================  ===========================================

``to_torch`` turns a ``Linear`` with a fused ``activation=`` into
``torch.nn.Sequential(OrderedDict(linear=Linear, activation=<activation>))``
(its keys gain a level: ``0.weight`` becomes ``0.linear.weight``), since
torch's Linear has no activation; ``from_torch`` brings that back as a
Sequential of the two, which fusedprop runs as the same one fused kernel.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .nn import activation as _act
from .nn.batchnorm import BatchNorm1d
from .nn.container import Sequential
from .nn.dropout import Dropout
from .nn.normalization import LayerNorm
from .nn.linear import Linear
from .nn.module import Module

__all__ = ["from_torch", "to_torch"]


def _import_torch(fn: str):
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"{fn} needs PyTorch: pip install torch") from e
    return torch


def _numpy_param(torch, name: str, p) -> np.ndarray:
    if p.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"from_torch: {name} must be float32 or float64, got {p.dtype}; convert the module "
                        "with .float() or .double() first")
    return p.detach().cpu().numpy().copy()  # from any device: the weights are copied anyway


# ------------------------------------------------------------------ torch -> fusedprop
def from_torch(module) -> Module:
    """The fusedprop model equivalent to a ``torch.nn`` module, weights copied.

    Takes a ``torch.nn.Sequential`` (nested ones too) of Linear, ReLU,
    LeakyReLU, Sigmoid, Tanh, GELU, SiLU, Identity, Dropout, BatchNorm1d and
    LayerNorm modules, or one such module. Every other module raises
    TypeError naming it. Float32 and float64 weights keep their dtype.
    """
    torch = _import_torch("from_torch")
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: module must be a torch.nn.Module, got {type(module).__name__}")
    return _from(torch, module, "")


def _from(torch, m, path: str) -> Module:
    tnn = torch.nn
    kind = type(m)
    where = f"module {path} " if path else ""
    if kind is tnn.Sequential:
        out = Sequential(OrderedDict((name, _from(torch, child, f"{path}.{name}" if path else name))
                                     for name, child in m.named_children()))
    elif kind is tnn.Linear:
        weight = _numpy_param(torch, f"{path}.weight" if path else "weight", m.weight)
        out = Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=weight.dtype)
        np.copyto(out.weight.data, weight)
        out.weight.requires_grad = m.weight.requires_grad
        if m.bias is not None:
            np.copyto(out.bias.data, _numpy_param(torch, f"{path}.bias" if path else "bias", m.bias))
            out.bias.requires_grad = m.bias.requires_grad
    elif kind is tnn.LeakyReLU:
        out = _act.LeakyReLU(m.negative_slope)
    elif kind is tnn.GELU:
        out = _act.GELU(approximate=m.approximate)
    elif kind is tnn.Dropout:
        if m.p >= 1:
            raise TypeError(f"from_torch: cannot convert {where}(Dropout(p={m.p})): fusedprop's Dropout needs "
                            "p in [0, 1)")
        out = Dropout(m.p)
    elif kind is tnn.BatchNorm1d:
        out = _from_batch_norm(torch, m, path)
    elif kind is tnn.LayerNorm:
        out = _from_layer_norm(torch, m, path)
    elif kind in (tnn.ReLU, tnn.Sigmoid, tnn.Tanh, tnn.SiLU, tnn.Identity):
        out = getattr(_act, kind.__name__)()
    else:
        raise TypeError(f"from_torch: cannot convert {where}({kind.__name__}): supported are Sequential, Linear, "
                        "ReLU, LeakyReLU, Sigmoid, Tanh, GELU, SiLU, Identity, Dropout, BatchNorm1d and LayerNorm")
    return out.train(bool(m.training))


def _copy_params(torch, m, out, path: str) -> None:
    """weight / bias (those present) and every buffer, copied into out's arrays."""
    for name, p in m.named_parameters(recurse=False):
        mine = getattr(out, name)
        np.copyto(mine.data, _numpy_param(torch, f"{path}.{name}" if path else name, p))
        mine.requires_grad = p.requires_grad
    for name, b in m.named_buffers(recurse=False):
        np.copyto(getattr(out, name), b.detach().cpu().numpy(), casting="unsafe")


def _dtype_of(torch, m, path: str):
    for name, p in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False)):
        if p.dtype.is_floating_point:
            return _numpy_param(torch, f"{path}.{name}" if path else name, p).dtype
    return np.dtype(np.float32)


def _from_batch_norm(torch, m, path: str) -> Module:
    out = BatchNorm1d(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                      track_running_stats=m.track_running_stats, dtype=_dtype_of(torch, m, path))
    _copy_params(torch, m, out, path)
    return out


def _from_layer_norm(torch, m, path: str) -> Module:
    out = LayerNorm(tuple(m.normalized_shape), eps=m.eps, elementwise_affine=m.elementwise_affine,
                    bias=m.bias is not None, dtype=_dtype_of(torch, m, path))
    _copy_params(torch, m, out, path)
    return out


def _to_norm(torch, m, out):
    """out (a torch norm module) with m's parameters and buffers copied in."""
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[m._dtype]
    out = out.to(dtype)
    with torch.no_grad():
        for name, p in out.named_parameters(recurse=False):
            p.copy_(torch.from_numpy(np.array(getattr(m, name).data)))
            p.requires_grad_(bool(getattr(m, name).requires_grad))
        for name, b in out.named_buffers(recurse=False):
            b.copy_(torch.from_numpy(np.array(getattr(m, name))))
    return out


# ------------------------------------------------------------------ fusedprop -> torch
def to_torch(module: Module):
    """The ``torch.nn`` module equivalent to a fusedprop ``Sequential``,
    ``Linear`` or activation module, weights copied (see the module docstring)."""
    torch = _import_torch("to_torch")
    return _to(torch, module, "")


_ACTIVATION_TO = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "silu": "SiLU", "identity": "Identity"}


def _torch_activation(torch, name: str, negative_slope: float):
    if name == "leaky_relu":
        return torch.nn.LeakyReLU(negative_slope)
    if name in ("gelu", "gelu_tanh"):
        return torch.nn.GELU(approximate="none" if name == "gelu" else "tanh")
    return getattr(torch.nn, _ACTIVATION_TO[name])()


def _to(torch, m, path: str):
    kind = type(m)
    if kind is Sequential:
        out = torch.nn.Sequential(OrderedDict((name, _to(torch, child, f"{path}.{name}" if path else name))
                                              for name, child in m._modules.items() if child is not None))
    elif kind is Linear:
        dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[m.weight.data.dtype]
        # skip_init: no random initialisation, so torch's global RNG is left alone
        lin = torch.nn.utils.skip_init(torch.nn.Linear, m.in_features, m.out_features, bias=m.bias is not None,
                                       dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(m.weight.data)))
            if m.bias is not None:
                lin.bias.copy_(torch.from_numpy(np.array(m.bias.data)))
        lin.weight.requires_grad_(bool(m.weight.requires_grad))
        if m.bias is not None:
            lin.bias.requires_grad_(bool(m.bias.requires_grad))
        if m.activation == "identity":
            out = lin
        else:
            out = torch.nn.Sequential(OrderedDict(
                linear=lin, activation=_torch_activation(torch, m.activation, m.negative_slope)))
    elif kind is _act.GELU:
        out = torch.nn.GELU(approximate=m.approximate)
    elif kind is Dropout:
        out = torch.nn.Dropout(m.p)
    elif kind is BatchNorm1d:
        out = _to_norm(torch, m, torch.nn.BatchNorm1d(m.num_features, eps=m.eps, momentum=m.momentum,
                                                      affine=m.affine, track_running_stats=m.track_running_stats))
    elif kind is LayerNorm:
        out = _to_norm(torch, m, torch.nn.LayerNorm(m.normalized_shape, eps=m.eps,
                                                    elementwise_affine=m.elementwise_affine,
                                                    bias=m.bias is not None))
    elif kind in (_act.Identity, _act.ReLU, _act.LeakyReLU, _act.Sigmoid, _act.Tanh, _act.SiLU):
        out = _torch_activation(torch, m.kernel_name, m.negative_slope)
    else:
        where = f"module {path} " if path else ""
        raise TypeError(f"to_torch: cannot convert {where}({kind.__name__}): supported are Sequential, Linear, "
                        "Dropout, BatchNorm1d, LayerNorm and the activation modules (Identity, ReLU, LeakyReLU, "
                        "Sigmoid, Tanh, GELU, SiLU)")
    return out.train(bool(m.training))
