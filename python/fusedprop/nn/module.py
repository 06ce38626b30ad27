"""Module: the base of every layer, with PyTorch's names and state-dict keys."""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Iterator

import numpy as np

from .parameter import Parameter

__all__ = ["Module"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


class Module:
    """Base class: assign Parameters and Modules as attributes to register them.

    Registered attributes live in the instance ``__dict__`` (plain attribute
    access, no ``__getattr__`` on the hot path); ``_parameters`` and
    ``_modules`` keep their names in registration order.
    """

    training: bool

    def __init__(self) -> None:
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["training"] = True

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        if "_parameters" not in d:
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(f"cannot assign {type(value).__name__} {name!r} before Module.__init__() call")
        elif isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        elif name in d.get("_buffers", ()):
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} (a NumPy array or None "
                                "is required)")
            self._buffers[name] = value
        elif value is None and name in self._parameters:
            self._parameters[name] = None
        elif value is None and name in self._modules:
            self._modules[name] = None
        elif name in self._parameters:
            raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                            "(a Parameter or None is required)")
        d[name] = value

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._parameters[name] = param
        self.__dict__[name] = param

    def register_buffer(self, name: str, array, persistent: bool = True) -> None:
        """A NumPy array the module keeps and ``state_dict`` saves (unless not
        ``persistent``), but no optimizer updates: BatchNorm's running statistics."""
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(f"register_buffer: {name!r} must be a NumPy array or None, got {type(array).__name__}")
        self._buffers[name] = array
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        self.__dict__[name] = array

    def add_module(self, name: str, module) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        self._modules[name] = module
        self.__dict__[name] = module

    # ---------------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------- traversal
    def children(self) -> Iterator["Module"]:
        for m in self._modules.values():
            if m is not None:
                yield m

    def named_children(self) -> Iterator[tuple]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def named_modules(self, prefix: str = "", memo=None) -> Iterator[tuple]:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple]:
        """(name, Parameter) pairs with PyTorch's dotted names (``0.weight``); each parameter once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in modules:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple]:
        """(name, array) pairs of the registered buffers (None ones skipped), PyTorch's dotted names."""
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in modules:
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), b

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def _state_items(self, prefix: str = "") -> Iterator[tuple]:
        """What state_dict holds, in PyTorch's order: each module's parameters, then its
        persistent buffers, module by module (pre-order); each parameter once."""
        seen = set()
        for mod_prefix, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), p.data
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), b

    # ----------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> "Module":
        """Training mode: forward records the graph (the default)."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self) -> "Module":
        """Inference mode: forward runs the inference kernels and saves nothing for backward
        (unlike PyTorch, whose eval() only changes dropout/batch-norm; here there is no graph)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.fill(0)

    # ------------------------------------------------------------ state dict
    def state_dict(self, prefix: str = "") -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter and persistent buffer, keyed as in PyTorch
        (``0.weight``, ``0.bias``, ``1.running_mean``, ``1.num_batches_tracked``, ...)."""
        out = OrderedDict()
        for name, a in self._state_items(prefix):
            out[name] = a.copy()
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the parameters in place (dtype cast to the parameter's).

        Values may be NumPy arrays, fusedprop tensors or anything ``np.asarray``
        accepts (e.g. a PyTorch CPU tensor from ``model.state_dict()``).
        Missing or unexpected keys raise RuntimeError (as PyTorch) when ``strict``; a shape
        mismatch always raises ValueError. Nothing is written unless all checks pass.
        """
        params = dict(self._state_items())  # name -> the array to write into (a parameter's data or a buffer)
        missing = [k for k in params if k not in state_dict]
        unexpected = [k for k in state_dict if k not in params]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("missing key(s): " + ", ".join(repr(k) for k in missing))
            if unexpected:
                parts.append("unexpected key(s): " + ", ".join(repr(k) for k in unexpected))
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}: " + "; ".join(parts))
        staged = []
        for name, p in params.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            if hasattr(value, "detach") and hasattr(value, "cpu") and not isinstance(value, np.ndarray):
                value = value.detach().cpu()  # a torch tensor
            value = np.asarray(value.data if hasattr(value, "_node") else value)
            if value.shape != p.shape:
                raise ValueError(f"load_state_dict: size mismatch for {name!r}: the checkpoint has shape "
                                 f"{value.shape}, the parameter has shape {p.shape}")
            if value.dtype.kind not in "fiu":
                raise TypeError(f"load_state_dict: {name!r} must be numeric, got dtype {value.dtype}")
            staged.append((p, value))
        for p, value in staged:
            np.copyto(p, value, casting="unsafe")  # in place: compiled plans keep pointing at the same arrays
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------- interop
    def to_torch(self):
        """The equivalent ``torch.nn`` module (Sequential, Linear, activations), weights copied
        with their dtype; other modules raise TypeError. Imports torch. See ``fp.from_torch``."""
        from .._torch_interop import to_torch
        return to_torch(self)

    # -------------------------------------------------------------- printing
    def extra_repr(self) -> str:
        return ""

    def _child_lines(self) -> list:
        return [f"({name}): " + _addindent(repr(m), 2) for name, m in self._modules.items()]

    def __repr__(self) -> str:
        extra = self.extra_repr()
        children = self._child_lines()
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
