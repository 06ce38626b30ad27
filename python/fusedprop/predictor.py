"""``Predictor``: a frozen, compiled inference plan for a chain of fused layers."""

from __future__ import annotations

import threading
from typing import NamedTuple, Optional

import numpy as np

from . import backends
from . import functional as F
from ._arrays import as_array
from . import _sequence
from ._train_plan import compile_model
from .tensor import Tensor

__all__ = ["Predictor"]


def _layer_tuples(layers) -> list:
    return [(s.activation, s.negative_slope, s.linear.bias is not None, s.linear.in_features,
             s.linear.out_features) for s in layers]


def _aligned_copy(a, dtype) -> np.ndarray:
    """A C-contiguous copy of ``a`` in ``dtype`` starting on a 64-byte
    boundary, for every parameter a snapshot copies: the small-batch kernels
    read W's rows with 32-byte loads, which split cache lines when the rows
    are not so aligned (NumPy aligns to 16 bytes)."""
    dtype = np.dtype(dtype)
    a = np.asarray(a)
    raw = np.empty(a.size * dtype.itemsize + 64, np.uint8)
    start = (-raw.ctypes.data) % 64
    out = raw[start:start + a.size * dtype.itemsize].view(dtype).reshape(a.shape)
    np.copyto(out, a, casting="unsafe")
    return out


class _Snapshot(NamedTuple):
    """What one refresh() copied; swapped whole, so a call sees one snapshot, never a mix."""
    chain: list  # LayerSpecs (a Linear chain) or ops (norms, dropout: _sequence)
    dtype: np.dtype
    params: list  # the copied weights and biases
    bound: object  # a Linear chain's InferencePlan, its weights (and packed copies) bound; or None
    ops_plan: object  # an op chain's SequencePlan (cpp backend), or None
    ops_packed: Optional[list]  # the SequencePlan's PackedWeight per op (None but for Linears), or None
    extras: Optional[list]  # an op chain's eval extras (batch-norm buffers), or None
    backend: str  # the backend the plans were made for


class Predictor:
    """``pred = fp.Predictor(model); y = pred(x)``: the model's inference in one call.

    ``model`` is what ``TrainStep`` compiles: an ``nn.Sequential`` of ``Linear``
    layers, activation modules, ``BatchNorm1d``, ``LayerNorm`` (over the last
    dimension) and ``Dropout`` (or a single ``Linear``), run as in eval mode:
    Dropout is the identity, BatchNorm uses its running statistics (copied
    with the weights). Anything else raises a TypeError naming the module.

    The Predictor is a **snapshot**: it copies the weights when it is made
    and, on the cpp backend, packs each ``W^T`` once for the GEMM kernels, so
    a call never packs weights. A weight of 2 MiB or more is also kept with
    its rows interleaved for one-row calls (one stream of W, the same bits):
    the snapshot then holds three copies of it, otherwise two. Later changes
    to the model's parameters (an optimizer step, ``p.data[...] = ...``,
    ``load_state_dict``) do not reach it until ``pred.refresh()``.

    ``pred(x)`` takes what ``F.linear`` takes: an array (or Tensor) of shape
    ``(..., in_features)`` with any strides; float input of another dtype is
    converted to the model's, as ``model(x)`` does. It returns a new NumPy
    array of shape ``(..., out_features)``, bitwise equal to ``model(x)`` in
    eval mode. On the cpp backend the whole network is ONE call into C++ with
    the GIL released, reusing its buffers between calls; several Python
    threads may call one Predictor at once, each getting the bits it would
    alone. The numpy and numba backends run the same plan as a loop over
    their kernels.
    """

    def __init__(self, model) -> None:
        self._model = model
        self._lock = threading.Lock()  # refresh() against itself; calls read one snapshot
        self.refresh()

    def refresh(self) -> "Predictor":
        """Copy (and pack) the model's current weights again; returns self."""
        layers, ops = compile_model(self._model, "Predictor")
        if ops is not None:
            return self._refresh_ops(ops)
        dtype = layers[0].linear.weight.data.dtype
        params = []
        for s in layers:
            params.append(_aligned_copy(s.linear.weight.data, dtype))
            params.append(None if s.linear.bias is None else _aligned_copy(s.linear.bias.data, dtype))
        plan = None
        if backends.current.NAME == "cpp":
            core = backends.core_module()
            plan = core.InferencePlan("Predictor", str(dtype), _layer_tuples(layers))
            plan.bind(params, [core.PackedWeight(w) for w in params[0::2]])  # checked once: a snapshot never changes
        with self._lock:
            self._snapshot = _Snapshot(layers, dtype, params, plan, None, None, None, backends.current.NAME)
        return self

    def _refresh_ops(self, ops) -> "Predictor":
        """A chain with norms or dropout: the SequencePlan's eval forward, each Linear's W^T packed once."""
        dtype = _sequence.dtype_of(ops, "Predictor")
        params = [None if p is None else _aligned_copy(p.data, dtype) for p in _sequence.slots(ops)]
        buffers = {i: (None, None) if op.module.running_mean is None else
                   (op.module.running_mean.copy(), op.module.running_var.copy())
                   for i, op in enumerate(ops) if op.kind == "batch_norm"}
        plan = packed = None
        if backends.current.NAME == "cpp":
            core = backends.core_module()
            plan = core.SequencePlan(str(dtype), _sequence.op_tuples(ops), "mse", "mean", 0.0)
            packed = [core.PackedWeight(params[2 * i]) if op.kind == "linear" else None for i, op in enumerate(ops)]
        with self._lock:
            self._snapshot = _Snapshot(ops, dtype, params, None, plan, packed, _sequence.eval_extras(ops, buffers),
                                       backends.current.NAME)
        return self

    def _call_ops(self, x) -> np.ndarray:
        ops, dtype, params, _, plan, packed, extras, backend = self._snapshot
        x = _as_input(x, dtype, ops[0].width_in)
        if x.ndim != 2 and any(op.kind == "batch_norm" for op in ops):
            raise ValueError(f"Predictor: a model with BatchNorm1d takes x of shape (batch, {ops[0].width_in}) "
                             f"(BatchNorm1d reads 3-D input as (N, C, L)), got {x.shape}")
        rows = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
        if plan is not None and backends.current.NAME == backend:
            out = np.empty((rows.shape[0], ops[-1].width_out), dtype)
            plan.forward(rows, params, extras, out, packed)
        else:
            out = _sequence.python_forward(ops, params, extras, rows, False)[0]
        return out.reshape(x.shape[:-1] + (ops[-1].width_out,))

    def _is_ops(self) -> bool:
        return not hasattr(self._snapshot.chain[0], "linear")

    @property
    def in_features(self) -> int:
        if self._is_ops():
            return self._snapshot.chain[0].width_in
        return self._snapshot.chain[0].linear.in_features

    @property
    def out_features(self) -> int:
        if self._is_ops():
            return self._snapshot.chain[-1].width_out
        return self._snapshot.chain[-1].linear.out_features

    def __call__(self, x) -> np.ndarray:
        layers, dtype, params, bound, _, _, _, _ = self._snapshot
        # The common call, an array of the model's dtype on the cpp backend:
        # straight to the plan with its bound weights (it checks x's shape).
        if bound is not None and x.__class__ is np.ndarray and x.dtype == dtype and backends.current.NAME == "cpp":
            return bound.forward(x)
        if self._is_ops():
            return self._call_ops(x)
        x = _as_input(x, dtype, layers[0].linear.in_features)
        if bound is not None and backends.current.NAME == "cpp":
            return bound.forward(x)
        for s, w, b in zip(layers, params[0::2], params[1::2]):
            x = F.linear(x, w, b, s.activation, negative_slope=s.negative_slope)
        return x

    def __repr__(self) -> str:
        if self._is_ops():
            chain = " -> ".join(type(op.module).__name__ for op in self._snapshot.chain)
            return f"Predictor({chain}, dtype={self._snapshot.dtype})"
        layers = self._snapshot.chain
        chain = " -> ".join(f"Linear({s.linear.in_features}, {s.linear.out_features}"
                            + ("" if s.linear.bias is not None else ", bias=False") + ")"
                            + ("" if s.activation == "identity" else f"+{s.activation}") for s in layers)
        return f"Predictor({chain}, dtype={self._snapshot.dtype})"


def _as_input(x, dtype, n_in: int) -> np.ndarray:
    x = as_array(x.data if isinstance(x, Tensor) else x, "Predictor", "x")
    if x.dtype != dtype:
        if x.dtype.kind != "f":
            raise TypeError(f"Predictor: x must be a floating-point array, got dtype {x.dtype}")
        x = x.astype(dtype)
    if x.ndim < 1 or x.shape[-1] != n_in:
        raise ValueError(f"Predictor: x must have shape (..., {n_in}), got {x.shape}")
    return x
