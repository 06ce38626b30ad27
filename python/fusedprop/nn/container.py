"""Sequential: runs its modules in order, fusing each Linear with the activation after it."""

from __future__ import annotations

from collections import OrderedDict

from .. import backends as _backends
from ..tensor import Tensor
from . import functional as F
from .activation import _Activation
from .linear import Linear
from .module import Module, _addindent

__all__ = ["Sequential"]


class _FusedLinear:
    """One step of the plan: ``Linear`` ``i`` with activation module ``j``, one kernel call each way."""

    __slots__ = ("linear", "act", "indices")

    def __init__(self, linear: Linear, act: _Activation, indices: tuple) -> None:
        self.linear, self.act, self.indices = linear, act, indices

    def __call__(self, x):
        lin, act = self.linear, self.act
        return F.linear(x, lin.weight, lin.bias, act.kernel_name, act.negative_slope, lin.training)


def _infer_in_one_call(plan: list, x):
    """Inference through a chain of Linear layers (each maybe fused with its
    activation) as ONE call into C++ on the model's own weights, as
    ``fp.predict`` runs it; None where that does not apply (another module in
    the chain, a layer in training mode, mixed dtypes, not the cpp backend),
    and the layers then run one by one. Same bits either way."""
    if _backends.current.NAME != "cpp":
        return None
    grad = F._grad.enabled
    layers, params = [], []
    dtype = None
    for step in plan:
        if step.__class__ is _FusedLinear:
            lin, act = step.linear, step.act
            name, slope = act.kernel_name, act.negative_slope
        elif step.__class__ is Linear:
            lin = step
            name, slope = lin.activation, lin.negative_slope
        else:
            return None
        if grad and lin.training:
            return None
        w, b = lin.weight.data, lin.bias
        if dtype is None:
            dtype = w.dtype
        if w.dtype != dtype or not w.flags.c_contiguous:
            return None
        if b is not None:
            b = b.data
            if b.dtype != dtype or not b.flags.c_contiguous:
                return None
        layers.append((name, slope, b is not None, lin.in_features, lin.out_features))
        params.append(w)
        params.append(b)
    if not layers:
        return None
    xd, _, _ = F._input(x, dtype)
    if xd.ndim < 1 or xd.shape[-1] != layers[0][3]:
        return None  # the layer-by-layer path raises the usual error
    key = (dtype, tuple(layers))
    core_plan = _PLANS.get(key)
    if core_plan is None:
        if len(_PLANS) >= 64:
            _PLANS.clear()
        core_plan = _PLANS[key] = _backends.core_module().InferencePlan(
            "Sequential", str(dtype), [(n, float(s), hb, i, o) for n, s, hb, i, o in layers])
    return Tensor(core_plan.forward(xd, params))


# Compiled inference plans by (dtype, layer shapes): a plan holds no weights,
# only its buffers, so models of one shape share it (it is thread safe).
_PLANS: dict = {}


class Sequential(Module):
    """``Sequential(*modules)`` or ``Sequential(OrderedDict)``, as in PyTorch.

    A ``Linear`` without its own activation followed by an activation module
    (ReLU, LeakyReLU, Sigmoid, Tanh, GELU, SiLU, Identity) runs as ONE fused
    kernel call forward (``linear_forward`` with that activation) and one
    backward (``linear_backward``). ``self.fused`` lists the fused pairs as
    ``(linear_index, activation_index, kernel_name)``; ``repr`` marks them.
    """

    def __init__(self, *args) -> None:
        super().__init__()
        self.__dict__["_plan"] = None
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, m in args[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(args):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} must be a Module, got {type(m).__name__}")
                self.add_module(str(i), m)

    # -- mutation invalidates the plan
    def __setattr__(self, name, value) -> None:
        super().__setattr__(name, value)
        if isinstance(value, Module) or name in self._modules:
            self.__dict__["_plan"] = None

    def __delattr__(self, name) -> None:
        super().__delattr__(name)
        self.__dict__["_plan"] = None

    def add_module(self, name, module) -> None:
        super().add_module(name, module)
        self.__dict__["_plan"] = None

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        keys = list(self._modules)
        return self._modules[keys[idx]]

    def __setitem__(self, idx: int, module: Module) -> None:
        setattr(self, list(self._modules)[idx], module)

    def __delitem__(self, idx) -> None:
        keys = list(self._modules)
        for k in (keys[idx] if isinstance(idx, slice) else [keys[idx]]):
            delattr(self, k)
        # PyTorch renumbers after a deletion
        items = list(self._modules.items())
        for k, _ in items:
            self._parameters.pop(k, None)
            object.__delattr__(self, k)
        self._modules.clear()
        for i, (_, m) in enumerate(items):
            self.add_module(str(i), m)

    # -- the plan
    def _build_plan(self) -> list:
        mods = [m for m in self._modules.values() if m is not None]
        plan, i = [], 0
        while i < len(mods):
            m = mods[i]
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            if type(m) is Linear and m.activation == "identity" and isinstance(nxt, _Activation):
                plan.append(_FusedLinear(m, nxt, (i, i + 1)))
                i += 2
            else:
                plan.append(m)
                i += 1
        self.__dict__["_plan"] = plan
        return plan

    @property
    def fused(self) -> list:
        """``(linear_index, activation_index, kernel_name)`` for each fused pair."""
        plan = self._plan if self._plan is not None else self._build_plan()
        return [(s.indices[0], s.indices[1], s.act.kernel_name) for s in plan if isinstance(s, _FusedLinear)]

    def forward(self, x):
        plan = self._plan
        if plan is None:
            plan = self._build_plan()
        if not F._grad.enabled or not self.training:
            y = _infer_in_one_call(plan, x)
            if y is not None:
                return y
        for step in plan:
            x = step(x)
        return x

    __call__ = forward  # no hooks: skip Module.__call__'s extra frame on the hot path

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__ and "__call__" not in cls.__dict__:
            cls.__call__ = Module.__call__  # a subclass's own forward must run

    def _child_lines(self) -> list:
        fused = {i: j for i, j, _ in self.fused}
        names = list(self._modules)
        lines = []
        for i, (name, m) in enumerate(self._modules.items()):
            line = f"({name}): " + _addindent(repr(m), 2)
            if i in fused:
                line += f"  # fused with ({names[fused[i]]})"
            lines.append(line)
        return lines
