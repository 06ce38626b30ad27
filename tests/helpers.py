"""Shared by the tests: array builders (layouts a user can hand over), error
comparison, the ISAs the compiled kernels can run here."""

from __future__ import annotations

import numpy as np

LAYOUTS = ("contiguous", "fortran", "strided", "negative")


def make(rng, shape, dtype, layout="contiguous", scale=1.0):
    """An array of `shape` in `layout`: C order, Fortran order, every other
    element of a bigger buffer, or reversed along the last axis (negative stride)."""
    shape = tuple(shape)
    if layout == "contiguous":
        return np.asarray(rng.standard_normal(shape) * scale, dtype=dtype)
    if layout == "fortran":
        return np.asfortranarray((rng.standard_normal(shape) * scale).astype(dtype))
    if layout == "strided":
        big = (rng.standard_normal(tuple(2 * s for s in shape)) * scale).astype(dtype)
        return big[tuple(slice(None, None, 2) for _ in shape)]
    if layout == "negative":
        a = (rng.standard_normal(shape) * scale).astype(dtype)
        return a[..., ::-1] if a.ndim else a
    raise ValueError(layout)


def f64(*arrays):
    return tuple(None if a is None else np.asarray(a, dtype=np.float64) for a in arrays)


def same_error(call, reference, compiled):
    """``call(module)`` raises the same exception type and message on the
    compiled core as on the NumPy reference; returns the compiled one."""
    import pytest

    with pytest.raises(Exception) as ref:
        call(reference)
    with pytest.raises(type(ref.value)) as got:
        call(compiled)
    assert str(got.value) == str(ref.value)
    return got.value


def run_in_threads(n: int, work) -> None:
    """Runs ``work(i)`` for i in range(n) on n Python threads at once; re-raises
    the first exception a thread hit."""
    import threading

    errors: list = []

    def guarded(i):
        try:
            work(i)
        except Exception as exc:  # reported below, not swallowed
            errors.append(exc)

    pool = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors


def activation_isas() -> list:
    """The ISAs the compiled activation kernels run on this CPU: "reference",
    and "avx2" with AVX2 and FMA; none without the compiled core."""
    import fusedprop as fp

    core = fp.backends.core_module()
    if core is None:
        return []
    features = core.cpu_features()
    return ["reference"] + (["avx2"] if features["avx2"] and features["fma"] else [])
