"""``Predictor``: a frozen, compiled inference plan for a chain of fused layers."""

from __future__ import annotations

import threading

import numpy as np

from . import backends
from . import functional as F
from ._arrays import as_array
from ._train_plan import compile_layers
from .tensor import Tensor

__all__ = ["Predictor"]


def _layer_tuples(layers) -> list:
    return [(s.activation, s.negative_slope, s.linear.bias is not None, s.linear.in_features,
             s.linear.out_features) for s in layers]


class Predictor:
    """``pred = fp.Predictor(model); y = pred(x)``: the model's inference in one call.

    ``model`` is what ``TrainStep`` compiles: an ``nn.Sequential`` of ``Linear``
    layers, each optionally followed by an activation module (or a single
    ``Linear``). Anything else raises a TypeError naming the module.

    The Predictor is a **snapshot**: it copies the weights when it is made
    and, on the cpp backend, packs each ``W^T`` once for the GEMM kernels, so
    a call never packs weights. Later changes to the model's parameters (an
    optimizer step, ``p.data[...] = ...``, ``load_state_dict``) do not reach it
    until ``pred.refresh()``.

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
        layers = compile_layers(self._model)
        dtype = layers[0].linear.weight.data.dtype
        params = []
        for s in layers:
            params.append(np.array(s.linear.weight.data, dtype=dtype, order="C", copy=True))
            params.append(None if s.linear.bias is None else
                          np.array(s.linear.bias.data, dtype=dtype, order="C", copy=True))
        plan = packed = None
        if backends.current.NAME == "cpp":
            core = backends.core_module()
            plan = core.InferencePlan("Predictor", str(dtype), _layer_tuples(layers))
            packed = [core.PackedWeight(w) for w in params[0::2]]
        with self._lock:
            # One tuple, swapped whole: a call running meanwhile sees the old
            # snapshot or the new one, never a mix.
            self._snapshot = (layers, dtype, params, plan, packed, backends.current.NAME)
        return self

    @property
    def in_features(self) -> int:
        return self._snapshot[0][0].linear.in_features

    @property
    def out_features(self) -> int:
        return self._snapshot[0][-1].linear.out_features

    def __call__(self, x) -> np.ndarray:
        layers, dtype, params, plan, packed, backend = self._snapshot
        x = _as_input(x, dtype, layers[0].linear.in_features)
        if plan is not None and backends.current.NAME == backend:
            return plan.forward(x, params, packed)
        for s, w, b in zip(layers, params[0::2], params[1::2]):
            x = F.linear(x, w, b, s.activation, negative_slope=s.negative_slope)
        return x

    def __repr__(self) -> str:
        layers = self._snapshot[0]
        chain = " -> ".join(f"Linear({s.linear.in_features}, {s.linear.out_features}"
                            + ("" if s.linear.bias is not None else ", bias=False") + ")"
                            + ("" if s.activation == "identity" else f"+{s.activation}") for s in layers)
        return f"Predictor({chain}, dtype={self._snapshot[1]})"


def _as_input(x, dtype, n_in: int) -> np.ndarray:
    x = as_array(x.data if isinstance(x, Tensor) else x, "Predictor", "x")
    if x.dtype != dtype:
        if x.dtype.kind != "f":
            raise TypeError(f"Predictor: x must be a floating-point array, got dtype {x.dtype}")
        x = x.astype(dtype)
    if x.ndim < 1 or x.shape[-1] != n_in:
        raise ValueError(f"Predictor: x must have shape (..., {n_in}), got {x.shape}")
    return x
