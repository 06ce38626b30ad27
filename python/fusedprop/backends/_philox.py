"""Philox4x32-10 in NumPy: the twin of csrc/math/philox.h, and the dropout mask
every backend draws (see csrc/layers/dropout.h for the counter layout).

Element ``e`` (its row-major index) of a mask keyed on ``(seed, stream,
step)`` is kept when word ``(e // 8) % 4`` of Philox(counter=(block low,
block high, step, stream), key=(seed low, seed high)) is ``>= floor(p *
2**32)``, with ``block = (e // 32) * 8 + e % 8``: groups of 32 elements share
8 blocks, so a SIMD register of 8 lanes holds 8 consecutive elements' words.
"""

from __future__ import annotations

import numpy as np

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
_LOW = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)


def philox4x32_10(c0, c1, c2, c3, k0, k1) -> np.ndarray:
    """The four output words for each counter (arrays of uint32 broadcast together), shape (..., 4)."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint32) for c in np.broadcast_arrays(c0, c1, c2, c3))
    k0, k1 = np.uint32(k0), np.uint32(k1)
    with np.errstate(over="ignore"):
        for _ in range(10):
            p0 = c0.astype(np.uint64) * M0
            p1 = c2.astype(np.uint64) * M1
            n0 = (p1 >> _32).astype(np.uint32) ^ c1 ^ k0
            n2 = (p0 >> _32).astype(np.uint32) ^ c3 ^ k1
            c1 = (p1 & _LOW).astype(np.uint32)
            c3 = (p0 & _LOW).astype(np.uint32)
            c0, c2 = n0, n2
            k0 = np.uint32(k0 + W0)
            k1 = np.uint32(k1 + W1)
    return np.stack([c0, c1, c2, c3], axis=-1)


def threshold(p: float) -> int:
    """``floor(p * 2**32)`` as C++ computes it (one double product)."""
    return int(float(p) * 4294967296.0)


def random_words(n: int, seed: int, stream: int, step: int) -> np.ndarray:
    """The n uint32 words elements 0..n-1 draw."""
    groups = (n + 31) // 32
    b = np.arange(groups * 8, dtype=np.uint64)
    words = philox4x32_10((b & _LOW).astype(np.uint32), (b >> _32).astype(np.uint32), np.uint32(step & 0xFFFFFFFF),
                          np.uint32(stream & 0xFFFFFFFF), seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF)
    # words[group * 8 + j, w] is element group * 32 + w * 8 + j
    return words.reshape(groups, 8, 4).transpose(0, 2, 1).reshape(-1)[:n]


def keep_mask(n: int, p: float, seed: int, stream: int, step: int) -> np.ndarray:
    """Boolean keep mask of n elements."""
    return random_words(n, seed, stream, step) >= np.uint32(threshold(p))
