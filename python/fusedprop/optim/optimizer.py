"""Optimizer base: parameter groups, state and state dicts as in PyTorch."""

from __future__ import annotations

import copy
import math

import numpy as np

from ..nn.parameter import Parameter
from ..tensor import Tensor

__all__ = ["Optimizer"]


def _check_number(cls: str, name: str, value, low=0.0, high=None, high_open=True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{cls}: {name} must be a float, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or value < low or (high is not None and (value >= high if high_open else value > high)):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{cls}: invalid {name} {value}: must be {bound}")
    return value


class Optimizer:
    """``params``: an iterable of Parameters, or of dicts ``{"params": [...], <option>: value}``
    (parameter groups; options not given take the defaults)."""

    def __init__(self, params, defaults: dict) -> None:
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list = []
        if isinstance(params, (Tensor, np.ndarray)):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters or dicts, got a single "
                            f"{type(params).__name__}; pass model.parameters()")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        if not isinstance(group, dict):
            raise TypeError(f"add_param_group: group must be a dict, got {type(group).__name__}")
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__} can only optimize nn.Parameter objects, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._validate_group(group)
        self.param_groups.append(group)

    def _validate_group(self, group: dict) -> None:
        """Subclasses check their hyperparameters (ValueError naming the argument)."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.fill(0)

    def step(self, closure=None):
        raise NotImplementedError

    # ------------------------------------------------------------ state dict
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}`` as PyTorch,
        parameters numbered in group order; arrays are copies."""
        index = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state saved by ``state_dict()`` (arrays are copied,
        cast to each parameter's dtype)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(groups)} parameter groups, the optimizer has "
                             f"{len(self.param_groups)}")
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"loaded state dict's group {i} has {len(saved['params'])} parameters, "
                                 f"the optimizer's has {len(own['params'])}")
        new_state = {}
        for saved, own in zip(groups, self.param_groups):
            for idx, p in zip(saved["params"], own["params"]):
                entry = state_dict["state"].get(idx, state_dict["state"].get(str(idx)))
                if entry is None:
                    continue
                restored = {}
                for k, v in entry.items():
                    if hasattr(v, "detach") and not isinstance(v, np.ndarray):
                        v = v.detach().cpu().numpy()  # a torch tensor
                    if isinstance(v, np.ndarray) and v.ndim == 0:
                        v = v.item()
                    if isinstance(v, np.ndarray):
                        if v.shape != p.data.shape:
                            raise ValueError(f"state {k!r} has shape {v.shape}, its parameter has {p.data.shape}")
                        v = np.array(v, dtype=p.data.dtype, order="C", copy=True)
                    restored[k] = v
                new_state[p] = restored
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = copy.deepcopy(v)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)
