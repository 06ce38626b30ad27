"""Runs cases: every contender side by side in one process, interleaved.

For one case at one thread count: set up every contender, call each once and
check that result against the float64 reference (a wrong result is marked,
never timed silently), warm up, pick a number of calls per sample so a sample
is long enough to time, then take samples round-robin (the contenders' order
rotating each round) so that noise from other processes falls on all of them
alike; report the median.

At more than one thread, each library's idle workers keep spinning for a
while after a call: OpenBLAS's for about 0.1 s, PyTorch's OpenMP workers for
a few ms. Timed right after a NumPy sample, fusedprop's and PyTorch's threads
would share the cores with those spinners and look 2-3x slower than they
are. So at more than one thread each round groups the contenders by thread
pool (fusedprop's, PyTorch's, OpenBLAS's, in that order), and where the pool
changes, the next sample waits for the previous pool's workers to fall
asleep, then runs untimed for a while (Timing.rewarm) before its sample:
after the pause the machine is slow for tens of milliseconds, and NumPy's
samples, which follow other warm ones, never pay for it. On the development
VM, fusedprop's 2-thread GEMM at 512 f32 timed after one untimed call
measured 1.04x NumPy's (median of 9 runs, 0.96-1.08x), after 50 ms of
untimed calls 1.07x (8 runs, 1.05-1.09x); with a 0.6 s pause, 0.97x against
1.09x.
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import sys
import time
import traceback
from dataclasses import dataclass

import fusedprop as fp

from .common import Case


@dataclass(frozen=True)
class Timing:
    warmup: int         # extra calls after the checked one
    min_sample: float   # seconds one sample should last at least
    min_repeats: int
    max_repeats: int
    budget: float       # seconds of sampling per case and thread count (the minimum repeats may exceed it)
    slow_repeats: int   # samples for a contender whose single call is slow (after the checked call)
    slow_budget: float  # seconds of extra sampling a slow case may take (a busy machine makes trainings crawl)
    rewarm: float       # seconds of untimed calls (at least one) after a pause for other pools' workers


TIMINGS = {
    "full": Timing(warmup=2, min_sample=0.02, min_repeats=5, max_repeats=31, budget=2.5, slow_repeats=3,
                   slow_budget=30.0, rewarm=0.05),
    "quick": Timing(warmup=1, min_sample=0.005, min_repeats=3, max_repeats=9, budget=0.3, slow_repeats=2,
                    slow_budget=5.0, rewarm=0.01),
    "smoke": Timing(warmup=0, min_sample=0.0, min_repeats=1, max_repeats=2, budget=0.0, slow_repeats=1,
                    slow_budget=0.0, rewarm=0.0),
}
SLOW_CALL = 0.5  # seconds: a call this slow (after the first) gets no extra warm-up and the fewest repeats
# Seconds the idle workers of each thread pool may spin after a call:
# OpenBLAS's for 2**28 cycles by default, PyTorch's (OpenMP) briefly.
# ONNX Runtime's intra-op pool spins briefly too; JAX runs on one thread here.
SETTLE = {"fusedprop": 0.0, "torch": 0.02, "onnxruntime": 0.02, "jax": 0.0, "openblas": 0.15}
POOL_ORDER = ("fusedprop", "torch", "onnxruntime", "jax", "openblas")


def thread_pool_of(contender) -> str:
    """Whose worker threads a contender's calls run on."""
    if contender.family in ("numpy", "sklearn") or contender.backend in ("numpy", "numba"):
        return "openblas"  # fusedprop's numpy and numba backends run their products through NumPy
    if contender.family in ("torch", "onnxruntime", "jax"):
        return contender.family
    return "fusedprop"


def round_order(live: list, r: int, threads: int) -> list:
    """Round r's order: rotated by r; at several threads, grouped by thread pool (each group rotated)."""
    if threads <= 1 or not live:
        k = r % len(live) if live else 0
        return live[k:] + live[:k]
    order = []
    for pool in POOL_ORDER:
        group = [e for e in live if thread_pool_of(e[0]) == pool]
        if group:
            order += group[r % len(group):] + group[:r % len(group)]
    return order


def settle_time(previous, contender, threads: int) -> float:
    """The pause before timing `contender` right after `previous` (None: the end of the last round)."""
    if threads <= 1 or previous is None or thread_pool_of(previous) == thread_pool_of(contender):
        return 0.0
    return SETTLE[thread_pool_of(previous)]


@contextlib.contextmanager
def all_threads(n: int):
    """n threads for every contender: fusedprop, PyTorch, OpenBLAS/OpenMP (threadpoolctl), Numba."""
    previous_fp = fp.get_num_threads()
    fp.set_num_threads(n)
    torch = sys.modules.get("torch")
    previous_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    numba = sys.modules.get("numba")
    previous_numba = None
    if numba is not None:
        try:
            previous_numba = numba.get_num_threads()
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        except Exception:  # no threading layer: Numba runs serial code anyway
            previous_numba = None
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=n)
    except ImportError:
        limits = contextlib.nullcontext()
    try:
        with limits:
            yield
    finally:
        fp.set_num_threads(previous_fp)
        if torch is not None:
            torch.set_num_threads(previous_torch)
        if numba is not None and previous_numba is not None:
            numba.set_num_threads(previous_numba)


def _backend(contender):
    return fp.use_backend(contender.backend) if contender.backend else contextlib.nullcontext()


def _short_error(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _row(case: Case, threads: int, contender, **fields) -> dict:
    row = {"group": case.group, "case": case.label, "dtype": case.dtype, "threads": threads,
           "contender": contender.name, "family": contender.family, "backend": contender.backend,
           "flops": case.flops, "status": "ok", "median_s": None, "min_s": None, "repeats": 0, "number": 0,
           "error": None, "tol": case.tol, "note": "", "weight_bytes": case.params.get("weight_bytes")}
    row.update(fields)
    return row


def run_case(case: Case, threads: int, timing: Timing) -> list:
    """One row per contender (unavailable ones included)."""
    rows, live = {}, []
    for c in case.contenders:
        if c.unavailable or c.make is None:
            rows[c.name] = _row(case, threads, c, status="unavailable", note=c.unavailable or "unavailable")
            continue
        if c.only_threads is not None and threads != c.only_threads:
            rows[c.name] = _row(case, threads, c, status="unavailable", note=c.only_threads_note)
            continue
        try:
            with _backend(c):
                run, observe = c.make()
                t0 = time.perf_counter()
                first = run()
                first_time = time.perf_counter() - t0
                err, note = case.check(observe(first) if observe else first)
        except Exception as exc:  # a crash is a failure too, loudly
            rows[c.name] = _row(case, threads, c, status="ERROR", note=_short_error(exc))
            continue
        ok = err <= case.tol
        rows[c.name] = _row(case, threads, c, status="ok" if ok else "WRONG", error=err, note=note)
        live.append([c, run, first_time, []])

    # Warm up, then choose calls per sample from the warm-up times.
    # The checked call may include one-off costs (a JIT compile, first-touch
    # allocation), so the second call decides how slow a contender is. A slow
    # one (a whole training run) gets no more warm-up: that second call is
    # its first sample.
    for entry in live:
        c, run, _, samples = entry
        with _backend(c):
            t0 = time.perf_counter()
            run()
            per_call = time.perf_counter() - t0
            if per_call >= SLOW_CALL:
                samples.append(per_call)
            elif timing.warmup:
                t0 = time.perf_counter()
                for _ in range(timing.warmup):
                    run()
                per_call = (time.perf_counter() - t0) / timing.warmup
        entry[2] = max(per_call, 1e-9)
    numbers = {id(e): max(1, min(100_000, math.ceil(timing.min_sample / e[2]))) for e in live}
    pools = {thread_pool_of(e[0]) for e in live}
    round_cost = sum(numbers[id(e)] * e[2] for e in live) + (
        sum(SETTLE[p] + timing.rewarm for p in pools if SETTLE[p]) if threads > 1 and len(pools) > 1 else 0.0)
    slow = any(e[2] >= SLOW_CALL for e in live)
    repeats = max(0, min(timing.slow_repeats - 1, int(timing.slow_budget / max(round_cost, 1e-9)))) if slow else min(
        timing.max_repeats, max(timing.min_repeats, int(timing.budget / max(round_cost, 1e-9))))
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        # The warm-up just ran every pool, so round 0 starts as if after the
        # pool slowest to fall asleep (without that wait, fusedprop's first
        # sample at 2 threads ran 1.3-3x slower than its others).
        previous = max((e[0] for e in live), key=lambda c: SETTLE[thread_pool_of(c)], default=None)
        for r in range(repeats):
            for entry in round_order(live, r, threads):
                c, run, _, samples = entry
                number = numbers[id(entry)]
                with _backend(c):
                    pause = settle_time(previous, c, threads)
                    if pause:
                        time.sleep(pause)
                        rewarm(run, timing.rewarm)
                    previous = c
                    t0 = time.perf_counter()
                    for _ in range(number):
                        run()
                    samples.append((time.perf_counter() - t0) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    for c, _, _, samples in live:
        if not samples:  # only when repeats is 0: a fast contender beside slow ones
            samples.append(_time_once(c, run_of(live, c)))
        rows[c.name].update(median_s=statistics.median(samples), min_s=min(samples), repeats=len(samples),
                            number=numbers[id(next(e for e in live if e[0] is c))], samples=samples)
    return [rows[c.name] for c in case.contenders]


def rewarm(run, seconds: float) -> int:
    """Calls run() once, then again until `seconds` have passed; returns the number of calls."""
    end = time.perf_counter() + seconds
    calls = 1
    run()
    while time.perf_counter() < end:
        run()
        calls += 1
    return calls


def run_of(live, c):
    return next(e[1] for e in live if e[0] is c)


def _time_once(c, run) -> float:
    with _backend(c):
        t0 = time.perf_counter()
        run()
        return time.perf_counter() - t0


_BANDWIDTH: dict = {}


def read_bandwidth(nbytes: int):
    """This core's measured read bandwidth (GB/s) for a buffer of nbytes (best of three), or None."""
    if nbytes not in _BANDWIDTH:
        core = fp.backends.core_module()
        _BANDWIDTH[nbytes] = (max(core.measure_read_bandwidth(float(nbytes), 0.1) for _ in range(3))
                              if core is not None and hasattr(core, "measure_read_bandwidth") else None)
    return _BANDWIDTH[nbytes]


def add_derived(rows: list, peaks: dict) -> None:
    """GFLOP/s, % of the measured peak, speed-ups over the NumPy, PyTorch and ONNX Runtime rows of the same case."""
    by_case: dict = {}
    for row in rows:
        by_case.setdefault((row["group"], row["case"], row["threads"]), []).append(row)
    for group_rows in by_case.values():
        base = {}
        for family in ("numpy", "torch", "onnxruntime"):
            candidates = [r for r in group_rows if r["family"] == family]
            timed = [r for r in candidates if r["median_s"] and r["status"] == "ok"]
            if timed:
                base[family] = timed[0]["median_s"]
            elif candidates:
                base[family] = candidates[0]["note"] if candidates[0]["status"] == "unavailable" else candidates[0]["status"]
            else:
                base[family] = None
        for row in group_rows:
            t = row["median_s"]
            row["gflops"] = row["flops"] / t / 1e9 if t and row["flops"] else None
            wbytes = row.get("weight_bytes")
            if wbytes and t and row["status"] == "ok":
                row["weight_gbps"] = wbytes / t / 1e9
                # the probe reads on one core: a share only for 1-thread rows
                bandwidth = read_bandwidth(wbytes) if row["threads"] == 1 else None
                row["read_bandwidth_gbps"] = bandwidth
                share = f" ({100 * row['weight_gbps'] / bandwidth:.0f}% of {bandwidth:.1f} GB/s measured)" if bandwidth else ""
                row["note"] = (row["note"] + "; " if row["note"] else "") + f"W read at {row['weight_gbps']:.1f} GB/s{share}"
            peak = (peaks.get(row["dtype"]) or {}).get(str(row["threads"]))
            row["pct_peak"] = 100.0 * row["gflops"] / peak if row["gflops"] and peak else None
            for family, key in (("numpy", "speedup_numpy"), ("torch", "speedup_torch"),
                                ("onnxruntime", "speedup_ort")):
                b = base[family]
                if isinstance(b, float) and t:
                    row[key] = b / t
                elif isinstance(b, str) and "not installed" in b:
                    row[key] = "not installed"
                else:
                    row[key] = None
