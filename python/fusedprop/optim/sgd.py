"""SGD with momentum, dampening, Nesterov and weight decay (PyTorch's update, fused per parameter)."""

from __future__ import annotations

import numpy as np

from .. import backends as _backends
from .optimizer import Optimizer, _check_number

__all__ = ["SGD"]


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _validate_group(self, g: dict) -> None:
        g["lr"] = _check_number("SGD", "lr", g["lr"])
        g["momentum"] = _check_number("SGD", "momentum", g["momentum"])
        g["dampening"] = _check_number("SGD", "dampening", g["dampening"], low=float("-inf"))
        g["weight_decay"] = _check_number("SGD", "weight_decay", g["weight_decay"])
        g["nesterov"] = bool(g["nesterov"])
        if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True requires momentum > 0 and dampening == 0, got "
                             f"momentum={g['momentum']} and dampening={g['dampening']}")

    def _momentum_buffer_of(self, p) -> tuple:
        """(p's momentum buffer, whether this is its first step): on the first
        step the buffer is new and the kernel fills it (also used by TrainStep)."""
        s = self.state.get(p)
        if s is None:
            s = self.state[p] = {"momentum_buffer": np.empty_like(p.data)}
            return s["momentum_buffer"], True
        return s["momentum_buffer"], False

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        kernel = _backends.current.sgd_step
        for g in self.param_groups:
            lr, momentum, dampening, wd, nesterov = (g["lr"], g["momentum"], g["dampening"],
                                                     g["weight_decay"], g["nesterov"])
            for p in g["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if momentum != 0:
                    buf, first = self._momentum_buffer_of(p)
                    kernel(p.data, _contiguous(grad), buf, lr, momentum, dampening, wd, nesterov, first)
                else:
                    kernel(p.data, _contiguous(grad), None, lr, 0.0, dampening, wd, nesterov, False)
        return loss


_contiguous = np.ascontiguousarray  # a no-op for the gradients backward() produces
