"""The benchmark tool itself (python -m fusedprop.bench) on tiny shapes, and the measured peak."""

from __future__ import annotations

import importlib.util
import json
import time

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import bench
from fusedprop._bench.common import Contender
from fusedprop._bench.report import describe_machine

core = fp.backends.core_module()
needs_core = pytest.mark.skipif(core is None, reason="no compiled core")


@needs_core
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
def test_measure_peak_gflops_is_positive(dtype, threads):
    peak = core.measure_peak_gflops(dtype, threads, 0.05)
    assert isinstance(peak, float) and np.isfinite(peak) and peak > 0.1


@needs_core
@pytest.mark.parametrize("args,match", [(("float16", 1, 0.01), "dtype"), (("float32", 0, 0.01), "threads"),
                                        (("float32", 1, 0.0), "seconds"), (("float32", 1, float("nan")), "seconds")])
def test_measure_peak_gflops_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        core.measure_peak_gflops(*args)


def _run(tmp_path, capsys, *extra, hook=None):
    out = tmp_path / "out"
    rc = bench.main(["--smoke", "--threads", "1", "--no-progress", "--out", str(out), *extra], extra_contenders=hook)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err, out


def test_gemm_smoke_prints_tables_and_writes_json_and_chart(tmp_path, capsys):
    rc, out, err, outdir = _run(tmp_path, capsys, "--only", "gemm")
    assert rc == 0, out + err
    assert "== gemm · 1 thread ==" in out
    for column in ("shape", "contender", "median", "GFLOP/s", "% peak", "vs NumPy", "vs PyTorch"):
        assert column in out
    assert "16x16x16 f32" in out and "fusedprop[numpy]" in out
    data = json.loads((outdir / "results.json").read_text())
    machine = data["machine"]
    for key in ("cpu", "versions", "threadpools", "peak_gflops", "date"):
        assert key in machine
    assert set(machine["versions"]) >= {"fusedprop", "numpy", "torch", "numba"}
    assert data["config"]["threads"] == [1] and data["config"]["groups"] == ["gemm"]
    rows = data["rows"]
    assert rows and all(r["group"] == "gemm" and r["threads"] == 1 for r in rows)
    timed = [r for r in rows if r["status"] == "ok"]
    assert any(r["contender"] == "numpy" for r in timed)
    for r in timed:
        assert r["median_s"] > 0 and r["gflops"] > 0 and r["error"] <= r["tol"]
        assert r["speedup_numpy"] is not None
    if importlib.util.find_spec("matplotlib") is not None:
        assert (outdir / "speedup.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _wrong_contender(case):
    numpy_contender = next(c for c in case.contenders if c.name == "numpy")

    def make():
        run, _ = numpy_contender.make()
        return (lambda: run() * 1.01 + 1), None
    return [Contender("deliberately wrong", "fusedprop", make)]


def test_a_wrong_result_is_flagged_loudly_and_fails_the_run(tmp_path, capsys):
    rc, out, err, outdir = _run(tmp_path, capsys, "--only", "gemm", hook=_wrong_contender)
    assert rc == 1
    assert "WRONG RESULT" in out and "deliberately wrong" in err
    rows = json.loads((outdir / "results.json").read_text())["rows"]
    wrong = [r for r in rows if r["contender"] == "deliberately wrong"]
    assert wrong and all(r["status"] == "WRONG" and r["error"] > r["tol"] for r in wrong)
    assert all(r["status"] == "ok" for r in rows if r["contender"] == "numpy")


def test_a_crashing_contender_is_an_error(tmp_path, capsys):
    def crashing(case):
        def make():
            def run():
                raise RuntimeError("boom")
            return run, None
        return [Contender("crashes", "fusedprop", make)]
    rc, out, err, _ = _run(tmp_path, capsys, "--only", "gemm", hook=crashing)
    assert rc == 1 and "ERROR: RuntimeError: boom" in out


def test_every_group_runs_in_smoke_mode(tmp_path, capsys):
    rc, out, err, outdir = _run(tmp_path, capsys)
    assert rc == 0, out + err
    groups = {"gemm", "linear_fwd", "linear_fwd_bwd", "inference", "optim_update", "train_step", "digits"}
    for group in groups:
        assert f"== {group} · 1 thread ==" in out
    rows = json.loads((outdir / "results.json").read_text())["rows"]
    assert {r["group"] for r in rows} == groups
    # the inference group has every contender, ONNX Runtime and JAX included
    # (CI installs them), and each computed the right result
    names = {r["contender"] for r in rows if r["group"] == "inference"}
    assert {"fusedprop Predictor", "fusedprop model(x)", "numpy", "torch eager", "onnxruntime", "jax jit"} <= names
    assert "vs ORT" in out
    # Names missing from this build are rows that say so, not crashes.
    for r in rows:
        assert r["status"] in ("ok", "unavailable"), r
        if r["status"] == "unavailable":
            assert r["note"]


def test_unknown_group_is_refused():
    with pytest.raises(SystemExit, match="unknown group"):
        bench.main(["--smoke", "--only", "nope"])


def test_without_core_the_peak_is_unknown():
    info = {"cpu": {"cpu": "x", "isa": "none", "backend": "numpy"}, "cpus_usable": 2, "versions": {"numpy": "2"},
            "threadpools": [], "env": {}, "peak_gflops": "unknown (no compiled core)", "peak_isa": None,
            "load_average": None}
    assert "peak: unknown (no compiled core)" in describe_machine(info)


def test_at_several_threads_a_round_groups_thread_pools_and_waits_where_they_change():
    from fusedprop._bench.runner import SETTLE, round_order, settle_time

    cpp = Contender("fusedprop[cpp]", "fusedprop", backend="cpp")
    numba = Contender("fusedprop[numba]", "fusedprop", backend="numba")
    np_ = Contender("numpy", "numpy")
    torch = Contender("torch", "torch")
    live = [[c] for c in (cpp, numba, np_, torch)]
    for r in range(4):
        names = [e[0].name for e in round_order(live, r, threads=2)]
        assert names[:2] == ["fusedprop[cpp]", "torch"]  # OpenBLAS users last, whatever the rotation
        assert sorted(names[2:]) == ["fusedprop[numba]", "numpy"]
    assert [e[0].name for e in round_order(live, 1, threads=1)] == ["fusedprop[numba]", "numpy", "torch",
                                                                   "fusedprop[cpp]"]  # plain rotation
    assert settle_time(np_, cpp, threads=2) == SETTLE["openblas"] > settle_time(torch, np_, threads=2) > 0
    assert settle_time(np_, numba, threads=2) == 0  # the same pool: no wait
    assert settle_time(np_, cpp, threads=1) == 0
    assert settle_time(None, cpp, threads=2) == 0


def test_rewarm_calls_once_then_until_the_time_is_up():
    from fusedprop._bench.runner import rewarm

    calls = []
    assert rewarm(lambda: calls.append(1), 0.0) == 1 == len(calls)
    start = time.perf_counter()
    n = rewarm(lambda: time.sleep(0.001), 0.03)
    assert time.perf_counter() - start >= 0.03 and n >= 2


def test_after_a_pause_the_next_contender_runs_untimed_before_its_sample(monkeypatch):
    # fusedprop's pool comes after OpenBLAS's in every round (and round 0 after
    # the warm-up), so its samples follow a pause and the rewarm; NumPy's never do.
    from fusedprop._bench import runner
    from fusedprop._bench.common import Case

    monkeypatch.setitem(runner.SETTLE, "openblas", 0.001)
    calls = {"fusedprop": 0, "numpy": 0}
    log = []

    def contender(name, family):
        def make():
            def run():
                calls[family] += 1
                log.append(family)
                time.sleep(0.001)
                return 0.0
            return run, None
        return Contender(name, family, make)

    case = Case("gemm", "fake", "float64", None, [contender("fusedprop[cpp]", "fusedprop"),
                                                  contender("numpy", "numpy")], lambda r: (0.0, ""), 0.0)
    timing = runner.Timing(warmup=1, min_sample=0.0, min_repeats=3, max_repeats=3, budget=0.0, slow_repeats=1,
                           slow_budget=0.0, rewarm=0.05)
    rows = runner.run_case(case, 2, timing)
    assert [r["repeats"] for r in rows] == [3, 3]
    # Each: the checked call, the timing call, 1 warm-up, 3 samples. Before
    # each of its 3 samples fusedprop also rewarms for 0.05 s (round 0 follows
    # the warm-up, which ran NumPy too): calls of >= 1 ms, so at most 52 each,
    # and more than one (a single untimed call would give 6 + 3).
    assert calls["numpy"] == 6
    assert 6 + 3 * 3 <= calls["fusedprop"] <= 6 + 3 * 52
    # Round 0: between NumPy's last warm-up call and its first sample,
    # fusedprop rewarms (2+ calls), then takes its sample (1 call).
    numpy_calls = [i for i, who in enumerate(log) if who == "numpy"]
    assert log[numpy_calls[2]:numpy_calls[3]].count("fusedprop") >= 3
