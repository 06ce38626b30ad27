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
Dropout(p=0)                           Identity (it is one)
Dropout(p>0)                           TypeError: fusedprop has no Dropout yet,
                                       and dropping it would silently change
                                       what training computes
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
from .nn.container import Sequential
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
    LeakyReLU, Sigmoid, Tanh, GELU, SiLU, Identity and Dropout(p=0) modules,
    or one such module. Dropout with p > 0 and every other module raise
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
    elif kind is tnn.Dropout and m.p == 0:
        out = _act.Identity()
    elif kind is tnn.Dropout:
        raise TypeError(f"from_torch: cannot convert {where}(Dropout(p={m.p})): fusedprop has no Dropout yet; "
                        "remove it, or set p=0 (then it is an Identity)")
    elif kind in (tnn.ReLU, tnn.Sigmoid, tnn.Tanh, tnn.SiLU, tnn.Identity):
        out = getattr(_act, kind.__name__)()
    else:
        raise TypeError(f"from_torch: cannot convert {where}({kind.__name__}): supported are Sequential, Linear, "
                        "ReLU, LeakyReLU, Sigmoid, Tanh, GELU, SiLU, Identity and Dropout(p=0)")
    return out.train(bool(m.training))


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
    elif kind in (_act.Identity, _act.ReLU, _act.LeakyReLU, _act.Sigmoid, _act.Tanh, _act.SiLU):
        out = _torch_activation(torch, m.kernel_name, m.negative_slope)
    else:
        where = f"module {path} " if path else ""
        raise TypeError(f"to_torch: cannot convert {where}({kind.__name__}): supported are Sequential, Linear "
                        "and the activation modules (Identity, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, SiLU)")
    return out.train(bool(m.training))
