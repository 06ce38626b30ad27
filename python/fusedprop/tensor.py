"""Tensor and the small autograd tape behind the nn API.

A ``Tensor`` wraps a NumPy array (``t.data``). An operation on tensors that
require gradients records a node: the op's inputs and what its backward needs
(for a fused layer, only what ``F.linear_forward`` saved). ``t.backward()``
visits the recorded nodes in reverse topological order, so any DAG works: a
tensor used twice receives the sum of both gradients. Leaves accumulate into
``leaf.grad`` -- a NumPy array, so ``print(param.grad)`` prints numbers -- until
it is reset (``zero_grad``). Under ``no_grad()`` nothing is recorded.

The ops here are the few the nn API needs: +, -, *, neg, sum, mean; the fused
layer, activations and losses live in ``fusedprop.nn.functional``.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from . import _runtime
from ._arrays import as_array as _as_array, is_array_object as _is_array_object

__all__ = ["Tensor", "tensor", "randn", "zeros", "ones", "no_grad", "enable_grad", "is_grad_enabled"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# --------------------------------------------------------------- grad mode

class _GradState(threading.local):
    """Per-thread grad mode, as in PyTorch: ``no_grad`` in one thread leaves the others recording."""
    enabled = True


_state = _GradState()


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``: ops then record nothing."""
    return _state.enabled


class _GradMode:
    _mode = True

    def __new__(cls, func=None):
        self = super().__new__(cls)
        return self if func is None else self(func)  # bare @no_grad works too

    def __init__(self, func=None):
        pass

    def __enter__(self):
        self._previous = _state.enabled
        _state.enabled = self._mode
        return self

    def __exit__(self, *exc):
        _state.enabled = self._previous
        return False

    def __call__(self, fn):  # also a decorator, as in PyTorch
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """``with fp.no_grad():`` (or ``@fp.no_grad()``): record nothing, save nothing for backward."""
    _mode = False


class enable_grad(_GradMode):
    """Re-enable recording inside ``no_grad()``."""
    _mode = True


# -------------------------------------------------------------------- nodes

class Node:
    """One recorded op: ``inputs`` (a Tensor per differentiable input, None
    where no gradient is needed) and ``backward(grad) -> grads`` aligned with
    ``inputs``. ``fresh`` tells the engine the returned arrays are new and
    unshared, so a leaf may keep them without a copy."""

    __slots__ = ("inputs",)
    fresh = False

    def backward(self, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__


def _topological_order(root: Node) -> list:
    """Nodes reachable from ``root``, each after every node it feeds."""
    # Fast path: a chain (each node has at most one input with a history), the
    # usual shape of an MLP's graph, is already in order.
    chain = [root]
    node = root
    while True:
        nxt = None
        for t in node.inputs:
            if t is not None and t._node is not None:
                if nxt is not None:
                    break  # two inputs with a history: not a chain
                nxt = t._node
        else:
            if nxt is None:
                return chain
            chain.append(nxt)
            node = nxt
            continue
        break
    order = []
    visited = {id(root)}
    stack = [(root, 0)]
    while stack:
        node, i = stack[-1]
        inputs = node.inputs
        n = len(inputs)
        while i < n:
            t = inputs[i]
            i += 1
            if t is not None:
                child = t._node
                if child is not None and id(child) not in visited:
                    visited.add(id(child))
                    stack[-1] = (node, i)
                    stack.append((child, 0))
                    break
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return order


def _accumulate_leaf(t: "Tensor", g: np.ndarray, fresh: bool) -> None:
    if g.dtype != t.data.dtype:
        g = g.astype(t.data.dtype)
        fresh = True
    if g.shape != t.data.shape:
        g = np.broadcast_to(g, t.data.shape)
        fresh = False
    if t.grad is None:
        t.grad = g if fresh and g.flags.writeable else np.array(g, order="C")
    else:
        t.grad += g


def _run_backward(root: "Tensor", grad: np.ndarray) -> None:
    node = root._node
    if node is None:  # a leaf
        _accumulate_leaf(root, grad, False)
        return
    grads = {id(node): grad}
    for node in _topological_order(node):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        fresh = node.fresh
        for t, gi in zip(node.inputs, node.backward(g)):
            if t is None or gi is None:
                continue
            child = t._node
            if child is None:
                if t.requires_grad:
                    _accumulate_leaf(t, gi, fresh)
            else:
                key = id(child)
                previous = grads.get(key)
                grads[key] = gi if previous is None else previous + gi


# ------------------------------------------------------------------- tensor

class Tensor:
    """An array with an optional autograd history.

    ``data`` is the NumPy array; ``grad`` is None or a NumPy array of the same
    shape and dtype (accumulated by ``backward``); ``grad_fn`` names the op
    that produced it (None for leaves).
    """

    __slots__ = ("data", "requires_grad", "grad", "_node", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor

    def __init__(self, data, requires_grad: bool = False):
        data = data.data if isinstance(data, Tensor) else _as_array(data, "Tensor", "data")
        if requires_grad and data.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"only float32/float64 tensors can require gradients, got dtype {data.dtype}")
        self.data = data
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._node = None

    @classmethod
    def _from_op(cls, data: np.ndarray, node) -> "Tensor":
        """A result: records ``node`` when given (fast path, no checks)."""
        t = object.__new__(Tensor)
        t.data = data
        t.grad = None
        t._node = node
        t.requires_grad = node is not None
        return t

    # -- array protocol and properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    @property
    def grad_fn(self):
        return self._node

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, as ``torch.Tensor.numpy``)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to a Python scalar, "
                             f"got shape {self.data.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory)."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if self._node is not None and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use detach()")
        if requires_grad and self.data.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"only float32/float64 tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def argmax(self, dim=None) -> "Tensor":
        return Tensor(np.argmax(self.data, axis=dim))

    # -- autograd
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` defaults to 1 for a one-element tensor; otherwise it must be
        given, with the shape of ``self``.
        """
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn "
                               "(was it computed under no_grad() or in eval() mode?)")
        data = self.data
        if grad is None:
            if data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs; "
                                   f"got shape {data.shape}: pass grad=")
            grad = np.array(1, dtype=data.dtype).reshape(data.shape)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
            if grad.shape != data.shape:
                raise ValueError(f"backward: grad must have shape {data.shape} (the tensor's), got {grad.shape}")
            if grad.dtype != data.dtype:
                grad = grad.astype(data.dtype)
        _run_backward(self, grad)

    # -- elementwise ops
    def __add__(self, other):
        return _binary(_Add, self, other)

    def __radd__(self, other):
        return _binary(_Add, other, self)

    def __sub__(self, other):
        return _binary(_Sub, self, other)

    def __rsub__(self, other):
        return _binary(_Sub, other, self)

    def __mul__(self, other):
        return _binary(_Mul, self, other)

    def __rmul__(self, other):
        return _binary(_Mul, other, self)

    def __neg__(self):
        return _binary(_Mul, self, -1.0)

    def sum(self) -> "Tensor":
        return _reduce(self, False)

    def mean(self) -> "Tensor":
        return _reduce(self, True)

    # -- printing
    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4,
                               floatmode="maxprec_equal") if self.data.size else "[]"
        extras = []
        if self.data.dtype != np.float32 and self.data.dtype.kind == "f" or self.data.size == 0:
            extras.append(f"dtype={self.data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    __str__ = __repr__


# --------------------------------------------------------------- small ops

def _unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` down to ``shape`` (the inverse of NumPy broadcasting)."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


class _Binary(Node):
    __slots__ = ("a", "b", "a_shape", "b_shape")


class _Add(_Binary):
    name = "AddBackward0"
    op = staticmethod(np.add)

    def backward(self, g):
        return (_unbroadcast(g, self.a_shape) if self.inputs[0] is not None else None,
                _unbroadcast(g, self.b_shape) if self.inputs[1] is not None else None)


class _Sub(_Binary):
    name = "SubBackward0"
    op = staticmethod(np.subtract)

    def backward(self, g):
        return (_unbroadcast(g, self.a_shape) if self.inputs[0] is not None else None,
                _unbroadcast(-g, self.b_shape) if self.inputs[1] is not None else None)


class _Mul(_Binary):
    name = "MulBackward0"
    op = staticmethod(np.multiply)

    def backward(self, g):
        return (_unbroadcast(g * self.b, self.a_shape) if self.inputs[0] is not None else None,
                _unbroadcast(g * self.a, self.b_shape) if self.inputs[1] is not None else None)


def _operand(x, like: np.ndarray):
    """(array, tensor or None); Python numbers take the other operand's dtype."""
    if isinstance(x, Tensor):
        return x.data, x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return np.asarray(x, dtype=like.dtype if like.dtype.kind == "f" else None), None
    return np.asarray(x), None


def _binary(cls, a, b):
    ref = a.data if isinstance(a, Tensor) else b.data
    ad, at = _operand(a, ref)
    bd, bt = _operand(b, ref)
    out = cls.op(ad, bd)
    ta = at if at is not None and at.requires_grad else None
    tb = bt if bt is not None and bt.requires_grad else None
    if not _state.enabled or (ta is None and tb is None):
        return Tensor(out)
    node = cls()
    node.inputs = (ta, tb)
    node.a, node.b = ad, bd
    node.a_shape, node.b_shape = ad.shape, bd.shape
    return Tensor._from_op(out, node)


class _Reduce(Node):
    __slots__ = ("shape", "scale")

    @property
    def name(self):
        return "MeanBackward0" if self.scale != 1 else "SumBackward0"

    def backward(self, g):
        return (np.broadcast_to(g * g.dtype.type(self.scale), self.shape),)


def _reduce(t: Tensor, mean: bool) -> Tensor:
    data = t.data
    out = np.asarray(data.mean() if mean else data.sum(), dtype=data.dtype)
    if not (_state.enabled and t.requires_grad):
        return Tensor(out)
    node = _Reduce()
    node.inputs = (t,)
    node.shape = data.shape
    node.scale = 1.0 / data.size if mean and data.size else 1.0
    return Tensor._from_op(out, node)


# ------------------------------------------------------------- factories

def _resolve_dtype(dtype):
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype.startswith("torch."):
        dtype = dtype[6:]
    return np.dtype(dtype)


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data``.

    As in PyTorch, Python floats (lists, scalars) become float32 and Python
    ints int64; NumPy arrays keep their dtype (float64 stays float64).
    """
    if isinstance(data, Tensor):
        data = data.data
    elif _is_array_object(data):
        data = _as_array(data, "tensor", "data")  # keeps its dtype, as torch.tensor(a torch tensor) does
    dtype = _resolve_dtype(dtype)
    if dtype is None and not isinstance(data, np.ndarray):
        arr = np.array(data)
        if arr.dtype == np.float64 and not isinstance(data, np.floating):
            arr = arr.astype(np.float32)
    else:
        arr = np.array(data, dtype=dtype, copy=True)
    return Tensor(arr, requires_grad=requires_grad)


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"shape must be non-negative ints, got {shape!r}")
    return tuple(int(n) for n in shape)


def randn(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the generator ``fp.manual_seed`` seeds."""
    dtype = np.dtype(_resolve_dtype(dtype))
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"randn: dtype must be float32 or float64, got {dtype}")
    data = _runtime.generator().standard_normal(_shape(shape), dtype=dtype)
    return Tensor(data, requires_grad=requires_grad)


def zeros(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype=_resolve_dtype(dtype)), requires_grad=requires_grad)


def ones(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype=_resolve_dtype(dtype)), requires_grad=requires_grad)
