"""Adam (with AMSGrad) and AdamW: PyTorch's single-tensor update, one fused kernel per parameter."""

from __future__ import annotations

import numpy as np

from .. import backends as _backends
from .optimizer import Optimizer, _check_number

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def _validate_group(self, g: dict) -> None:
        name = type(self).__name__
        g["lr"] = _check_number(name, "lr", g["lr"])
        g["eps"] = _check_number(name, "eps", g["eps"])
        betas = g["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        g["betas"] = (_check_number(name, "betas[0]", betas[0], high=1.0),
                      _check_number(name, "betas[1]", betas[1], high=1.0))
        g["weight_decay"] = _check_number(name, "weight_decay", g["weight_decay"])
        g["amsgrad"] = bool(g["amsgrad"])

    def _state_of(self, p, amsgrad: bool) -> dict:
        """p's moments, created as zeros on its first step (also used by TrainStep)."""
        s = self.state.get(p)
        if s is None:
            data = p.data
            s = self.state[p] = {"step": 0.0, "exp_avg": np.zeros_like(data), "exp_avg_sq": np.zeros_like(data)}
        if amsgrad and "max_exp_avg_sq" not in s:  # also when amsgrad is switched on later
            s["max_exp_avg_sq"] = np.zeros_like(p.data)
        return s

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        kernel = _backends.current.adam_step
        decoupled = self._decoupled
        for g in self.param_groups:
            lr, (beta1, beta2), eps, wd, amsgrad = g["lr"], g["betas"], g["eps"], g["weight_decay"], g["amsgrad"]
            for p in g["params"]:
                grad = p.grad
                if grad is None:
                    continue
                s = self._state_of(p, amsgrad)
                step = s["step"] + 1.0
                s["step"] = step
                vmax = s["max_exp_avg_sq"] if amsgrad else None
                kernel(p.data, np.ascontiguousarray(grad), s["exp_avg"], s["exp_avg_sq"], vmax, step, lr, beta1,
                       beta2, eps, wd, decoupled)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay: ``param *= 1 - lr * weight_decay`` before the Adam update."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
