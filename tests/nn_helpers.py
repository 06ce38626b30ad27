"""Twin networks in fusedprop and PyTorch built from the same weights."""

from __future__ import annotations

import numpy as np

import fusedprop.nn as nn

# name -> (fusedprop module factory, PyTorch module factory)
ACTIVATIONS = {
    "relu": (lambda: nn.ReLU(), lambda t: t.nn.ReLU()),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), lambda t: t.nn.LeakyReLU(0.2)),
    "sigmoid": (lambda: nn.Sigmoid(), lambda t: t.nn.Sigmoid()),
    "tanh": (lambda: nn.Tanh(), lambda t: t.nn.Tanh()),
    "gelu": (lambda: nn.GELU(), lambda t: t.nn.GELU()),
    "gelu_tanh": (lambda: nn.GELU(approximate="tanh"), lambda t: t.nn.GELU(approximate="tanh")),
    "silu": (lambda: nn.SiLU(), lambda t: t.nn.SiLU()),
    "identity": (lambda: nn.Identity(), lambda t: t.nn.Identity()),
}


def twin_mlp(torch, rng, widths, acts, bias, dtype, final=None):
    """fusedprop and PyTorch Sequentials with equal weights: Linear, act, ..., Linear[, final]."""
    fp_mods, t_mods = [], []
    for i in range(len(widths) - 1):
        lin = nn.Linear(widths[i], widths[i + 1], bias=bias, dtype=dtype)
        lin.weight.data[...] = rng.uniform(-0.6, 0.6, lin.weight.shape)
        if bias:
            lin.bias.data[...] = rng.uniform(-0.3, 0.3, lin.bias.shape)
        tlin = torch.nn.Linear(widths[i], widths[i + 1], bias=bias, dtype=getattr(torch, np.dtype(dtype).name))
        with torch.no_grad():
            tlin.weight.copy_(torch.from_numpy(lin.weight.data.copy()))
            if bias:
                tlin.bias.copy_(torch.from_numpy(lin.bias.data.copy()))
        fp_mods.append(lin)
        t_mods.append(tlin)
        act = acts[i] if i < len(widths) - 2 else final
        if act is not None:
            fp_mods.append(ACTIVATIONS[act][0]())
            t_mods.append(ACTIVATIONS[act][1](torch))
    return nn.Sequential(*fp_mods), torch.nn.Sequential(*t_mods)
