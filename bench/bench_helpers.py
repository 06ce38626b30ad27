"""The one function every bench suite calls (a module of its own: ``conftest`` is
ambiguous when tests/ and bench/ run in one session)."""

from __future__ import annotations

import contextlib

import pytest

import fusedprop as fp


def run_contender(benchmark, case, name, *, rounds=None):
    """Check the contender's first result against the reference, then time it."""
    matches = [c for c in case.contenders if c.name == name]
    assert matches, f"no contender {name!r} in {case.label}: {[c.name for c in case.contenders]}"
    c = matches[0]
    if c.unavailable or c.make is None:
        if c.family == "torch":
            pytest.importorskip("torch")
        pytest.skip(f"{name}: {c.unavailable}")
    benchmark.group = f"{case.group} {case.label}"
    benchmark.extra_info.update(contender=name, flops=case.flops, dtype=case.dtype)
    with fp.use_backend(c.backend) if c.backend else contextlib.nullcontext():
        run, observe = c.make()
        first = run()
        err, note = case.check(observe(first) if observe else first)
        assert err <= case.tol, f"{name} on {case.label}: WRONG result, rel. error {err:.3e} > tol {case.tol:.0e} {note}"
        if rounds is None:
            benchmark(run)
        else:
            benchmark.pedantic(run, rounds=rounds, iterations=1)
