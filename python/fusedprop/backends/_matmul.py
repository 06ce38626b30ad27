"""NumPy's matmul for the NumPy and Numba backends, with its floating-point
warnings off.

OpenBLAS's kernels can leave floating-point flags set that say nothing
about the result (numpy/numpy#24067, #28967: "invalid value encountered in
matmul" from finite inputs and a finite product, seen here once in a few
thousand small float32 products on a Zen 4 with the SkylakeX kernels). NaN
and Inf still propagate, silently, as in the cpp backend.
"""

from __future__ import annotations

import numpy as np


def matmul(a, b, out=None):
    with np.errstate(all="ignore"):
        return np.matmul(a, b, out=out)
