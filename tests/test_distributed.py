"""Data-parallel TrainStep and fit over MPI (mpi4py + mpich): P ranks against
the one-process run of the same global batches, bitwise equality across
ranks, errors on every rank, and a failing rank ending the job.

Each test runs tests/distributed_worker.py under ``mpiexec -n P``; the worker
computes the one-process reference on every rank and prints one JSON line per
case from rank 0.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import fusedprop as fp

pytest.importorskip("mpi4py", reason="distributed training needs mpi4py (pip install 'fusedprop[mpi]')")

WORKER = pathlib.Path(__file__).resolve().parent / "distributed_worker.py"
# The folder the fusedprop under test was imported from (a source tree with a
# built core, or site-packages after pip install): the ranks import that one.
PYTHONPATH = str(pathlib.Path(fp.__file__).resolve().parent.parent)
TIMEOUT = 120  # seconds for a whole mpiexec run
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


def _mpiexec() -> str:
    found = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    assert found is not None, "mpi4py is installed but no mpiexec was found: pip install mpich (the test extra has it)"
    return found


def _run(ranks: int, *args, backend="cpp", comm_timeout=None, abort_on_exception=True):
    env = dict(os.environ, FUSEDPROP_BACKEND=backend, FUSEDPROP_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(p for p in (PYTHONPATH, os.environ.get("PYTHONPATH")) if p))
    # Every rank on this machine: hydra forks them itself (no ssh needed in a CI sandbox).
    env.setdefault("HYDRA_LAUNCHER", "fork")
    if comm_timeout is not None:
        env["FUSEDPROP_COMM_TIMEOUT"] = str(comm_timeout)
    # -m mpi4py: an uncaught exception in the worker aborts the job at once.
    python = [sys.executable, "-m", "mpi4py"] if abort_on_exception else [sys.executable]
    return subprocess.run([_mpiexec(), "-n", str(ranks), *python, str(WORKER), *args], capture_output=True,
                          text=True, env=env, timeout=TIMEOUT)


def _cases(proc) -> list:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _check(case: dict) -> None:
    tol = TOLERANCE[case["dtype"]]
    assert case["same"], f"{case['case']}: the ranks' parameters or losses differ"
    for key in ("err", "grad_err", "loss_err"):
        if key in case:
            assert case[key] <= tol, f"{case['case']}: {key} {case[key]:.3g} > {tol:g}"


@pytest.mark.parametrize("ranks", [2, 3])
def test_matches_one_process_and_ranks_stay_bitwise_equal(backend, ranks):
    """SGD/Adam/AdamW x MSE/BCEWithLogits/CrossEntropy (mean and smoothed sum) x
    float64/float32, in a TrainStep loop (batches of 10, 7, 1, 2: uneven and
    empty slices) and in fit (shuffle on and off, an uneven last batch,
    validation split across ranks)."""
    cases = _cases(_run(ranks, "parity", backend=backend))
    errors = cases.pop(0)
    assert errors.pop("case") == "errors"
    assert all(errors.values()), errors
    assert len(cases) == 48, [c["case"] for c in cases]
    for case in cases:
        _check(case)
        if "keys" in case:
            assert case["keys"], case


def test_fit_resumes_from_rank_0s_checkpoints(tmp_path):
    (case,) = _cases(_run(2, "resume", str(tmp_path)))
    _check(case)
    assert case["resumed"], case
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint-000000000008.safetensors", "checkpoint-000000000009.safetensors"], names


@pytest.mark.parametrize("bad_rank", [0, 1])
def test_a_rank_raising_in_fit_ends_the_job(bad_rank):
    proc = _run(2, "raise", str(bad_rank), abort_on_exception=False)
    assert proc.returncode != 0
    assert "this rank fails on purpose" in proc.stderr
    assert f"fusedprop: rank {bad_rank} of 2: RuntimeError in the training loop" in proc.stderr


def test_a_rank_killed_in_fit_ends_the_job():
    proc = _run(2, "kill", "1", abort_on_exception=False)
    assert proc.returncode != 0
    assert "Killed (signal 9)" in proc.stdout + proc.stderr  # mpiexec's report


def test_a_rank_leaving_a_custom_loop_ends_the_job_after_the_timeout():
    """Without -m mpi4py nothing aborts on the raising rank: the others give up
    after FUSEDPROP_COMM_TIMEOUT seconds and abort the job."""
    proc = _run(2, "raise-step", "1", comm_timeout=3, abort_on_exception=False)
    assert proc.returncode != 0
    assert "this rank fails on purpose, outside TrainStep" in proc.stderr
    assert "did not arrive within 3 s (FUSEDPROP_COMM_TIMEOUT)" in proc.stderr


def test_one_rank_gives_the_bits_of_no_comm_and_raises_instead_of_aborting(backend):
    """A one-rank COMM_WORLD (no mpiexec, e.g. a notebook): parameters and
    losses bitwise those of comm=None, and fit's errors raise as usual."""
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, FUSEDPROP_BACKEND=backend)
    proc = subprocess.run([sys.executable, str(WORKER), "single"], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    *lines, error = proc.stdout.strip().splitlines()
    cases = [json.loads(line) for line in lines]
    assert len(cases) == 24 and all(c["same"] for c in cases), [c["case"] for c in cases if not c["same"]]
    assert error == "ValueError: fit: epochs must be a positive int, got 0", proc.stdout


def test_import_fusedprop_does_not_import_mpi4py():
    code = "import sys, fusedprop; fusedprop.TrainStep; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=PYTHONPATH))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_example_runs_on_two_ranks_as_on_one():
    example = pathlib.Path(__file__).resolve().parent.parent / "examples" / "train_distributed.py"
    args = [str(example), "--epochs", "2", "--rows", "4000"]
    env = dict(os.environ, FUSEDPROP_NUM_THREADS="1", HYDRA_LAUNCHER=os.environ.get("HYDRA_LAUNCHER", "fork"),
               PYTHONPATH=PYTHONPATH)
    runs = [subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT)
            for cmd in ([_mpiexec(), "-n", "2", sys.executable, *args], [sys.executable, *args])]
    epochs = []
    for proc, ranks in zip(runs, (2, 1)):
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.startswith(f"{ranks} rank(s)"), proc.stdout  # rank 0 alone prints
        epochs.append([float(w) for line in proc.stdout.splitlines() if line.startswith("epoch")
                       for w in line.split() if w[0].isdigit() and "." in w])  # loss, accuracy per epoch
    assert len(epochs[0]) == 4 and epochs[0][-1] > 0.5, runs[0].stdout  # it learns (chance is 0.1)
    assert epochs[0] == pytest.approx(epochs[1], rel=1e-3), (runs[0].stdout, runs[1].stdout)
