"""Dropout: inverted dropout with a counter-based (Philox4x32-10) mask."""

from __future__ import annotations

import numpy as np

from .. import _runtime
from . import functional as F
from .module import Module

__all__ = ["Dropout"]


def _check_p(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"Dropout: p must be a float, got {type(p).__name__}")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
    return float(p)


class Dropout(Module):
    """PyTorch's ``nn.Dropout(p)``: in training, each element is zeroed with
    probability ``p`` and the rest scaled by ``1 / (1 - p)``; in eval (and for
    ``p == 0``) the input comes back unchanged.

    The mask is a pure function of the key ``(seed, stream, step)`` and each
    element's row-major index (Philox4x32-10, csrc/layers/dropout.h): ``seed``
    is ``fp.manual_seed``'s, ``stream`` this module's number (modules are
    numbered 0, 1, ... in construction order after each ``manual_seed``) and
    ``step`` how many training forwards it has run since (``manual_seed``
    resets it). So masks are bitwise the same on every backend, for every
    thread count and every run with the same seed, and differ from step to
    step. The backward regenerates the mask from the key instead of storing it.
    ``p = 1`` (PyTorch's all-zero output) is refused: it makes the scale infinite.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.inplace = bool(inplace)  # accepted for PyTorch's signature; the output is always new
        self._stream = _runtime.next_dropout_stream()
        self._generation = _runtime.seed_generation()
        self._steps = 0

    def next_key(self) -> tuple:
        """The key of this training step's mask, ``(seed, stream, step)``; counts the step."""
        generation = _runtime.seed_generation()
        if generation != self._generation:
            self._generation, self._steps = generation, 0
        step = self._steps
        self._steps = (step + 1) & 0xFFFF_FFFF
        return _runtime.dropout_seed(), self._stream, step

    def steps_done(self) -> int:
        """Training forwards counted since the last manual_seed (the next mask's step)."""
        return 0 if self._generation != _runtime.seed_generation() else self._steps

    def restore_steps(self, stream: int, steps: int) -> None:
        """Continue as a module numbered ``stream`` that ran ``steps`` steps (fit's resume)."""
        self._stream, self._steps = int(stream) & 0xFFFF_FFFF, int(steps) & 0xFFFF_FFFF
        self._generation = _runtime.seed_generation()

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        return F.dropout(x, self.p, self.next_key())

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
