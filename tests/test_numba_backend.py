"""What is particular to the Numba backend: threads, determinism, concurrency.

The functional suite (test_functional.py) checks its results on every backend;
these tests check how it runs.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import functional as F

numba = pytest.importorskip("numba")


@pytest.fixture
def numba_backend():
    from fusedprop.backends import numba_backend as nb

    previous_threads = fp.get_num_threads()
    with fp.use_backend("numba"):
        yield nb
    fp.set_num_threads(previous_threads)


def test_numba_follows_fp_set_num_threads(numba_backend):
    fp.set_num_threads(1)
    assert numba_backend.get_num_threads() == 1
    assert numba.get_num_threads() == 1
    fp.set_num_threads(numba.config.NUMBA_NUM_THREADS + 1)  # more than Numba's pool: capped
    assert numba_backend.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS


def _layer(rng, dtype, activation, m=300, k=70, n=200):
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    gy = rng.standard_normal((m, n)).astype(dtype)
    y, saved = F.linear_forward(x, w, b, activation)
    return (y,) + F.linear_backward(gy, x, w, saved, activation)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "gelu", "identity"])
def test_numba_results_do_not_depend_on_thread_count(numba_backend, dtype, activation, monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has one thread here")
    # Every pass goes parallel with more than one thread, however small.
    monkeypatch.setattr(numba_backend, "_PARALLEL_MIN", 1)
    monkeypatch.setattr(numba_backend, "_PARALLEL_MIN_CHEAP", 1)
    monkeypatch.setattr(numba_backend, "_parallel_used", False)
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        fp.set_num_threads(threads)
        results.append(_layer(np.random.default_rng(7), dtype, activation))
        assert numba_backend._parallel_used == (threads > 1)
    for one, many in zip(*results):
        np.testing.assert_array_equal(one, many)  # bitwise, db included


def test_numba_kernels_run_from_several_python_threads(numba_backend):
    expected = _layer(np.random.default_rng(3), np.float32, "silu")
    errors, outputs = [], []

    def work():
        try:
            for _ in range(5):
                outputs.append(_layer(np.random.default_rng(3), np.float32, "silu"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(outputs) == 20
    for got in outputs:
        for a, e in zip(got, expected):
            np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("activation", ["tanh", "identity", "gelu"])
def test_numba_accepts_read_only_inputs(numba_backend, activation):
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((6, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    for a in (x, w, b):
        a.flags.writeable = False
    y, saved = F.linear_forward(x, w, b, activation)
    gy = np.ones_like(y)
    gy.flags.writeable = False
    got = F.linear_backward(gy, x, w, saved, activation) + (F.activation(x, "gelu"),)
    with fp.use_backend("numpy"):
        want = F.linear_backward(gy, x, w, saved, activation) + (F.activation(x, "gelu"),)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_numba_linear_into_non_contiguous_out(numba_backend):
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((2, 3, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    buf = np.full((2, 3, 8), 9.0)
    out = buf[..., ::2]
    assert F.linear(x, w, b, "relu", out=out) is out
    np.testing.assert_allclose(out, np.maximum(x @ w.T + b, 0), rtol=1e-12)
    assert np.all(buf[..., 1::2] == 9.0)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
@pytest.mark.parametrize("parent_ran_parallel", [True, False])
def test_numba_forked_child_still_runs(tmp_path, parent_ran_parallel):
    # Numba's GNU OpenMP layer kills a forked child that opens a parallel
    # region once the parent launched the layer (loading the backend does);
    # the backend runs such children serially.
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import os
        import numpy as np
        import fusedprop as fp
        from fusedprop import functional as F
        fp.set_backend("numba")
        fp.set_num_threads(2)
        x, w = np.ones((1024, 64), np.float32), np.ones((128, 64), np.float32)
        F.linear(x if PARENT_RAN_PARALLEL else x[:2], w, None, "gelu")  # x: big enough for a parallel pass
        pid = os.fork()
        if pid == 0:
            y, saved = F.linear_forward(x, w, None, "gelu")
            gx, gw, gb = F.linear_backward(np.ones_like(y), x, w, saved, "gelu")
            os._exit(0 if y[0, 0] == 64 and gb[0] == 1024 else 3)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
    """).replace("PARENT_RAN_PARALLEL", str(parent_ran_parallel))
    env = {k: v for k, v in __import__("os").environ.items() if k != "FUSEDPROP_BACKEND"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "child 0", proc.stdout + proc.stderr


def test_numba_workqueue_layer_survives_concurrent_calls(tmp_path):
    # Numba's workqueue layer aborts the process when two threads launch
    # parallel kernels at once; the backend runs one at a time there.
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import threading
        import numba
        import numpy as np
        import fusedprop as fp
        from fusedprop import functional as F
        fp.set_backend("numba")
        fp.set_num_threads(2)
        assert numba.threading_layer() == "workqueue"
        x, w = np.ones((400, 64)), np.ones((200, 64))
        expected = F.linear(x, w, None, "silu")  # 80000 outputs: parallel passes
        bad = []
        def work():
            for _ in range(20):
                y, saved = F.linear_forward(x, w, None, "silu")
                F.linear_backward(y, x, w, saved, "silu")
                bad.append(not np.array_equal(y, expected))
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("ok" if len(bad) == 80 and not any(bad) else "wrong")
    """)
    env = {k: v for k, v in os.environ.items() if k != "FUSEDPROP_BACKEND"}
    env["NUMBA_THREADING_LAYER"] = "workqueue"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "ok", proc.stdout + proc.stderr
