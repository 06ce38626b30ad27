"""How the backend is chosen at import, checked in fresh interpreters.

`FUSEDPROP_BACKEND` wins; else `cpp` if `fusedprop._core` loads; else `numba`
if Numba is installed (with one RuntimeWarning that says why and how to
build); else `numpy`. `import fusedprop` imports neither Numba nor PyTorch.
Every check runs in a subprocess: the choice is made once per process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

import fusedprop as fp

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
HAVE_CORE = "cpp" in fp.available_backends()

# Prepended to a child's script: makes `fusedprop._core` unimportable, as in a
# source checkout that was never built or a wheel whose extension fails to load.
BLOCK_CORE = textwrap.dedent("""
    import sys

    class _BlockCore:
        def find_spec(self, name, path=None, target=None):
            if name == "fusedprop._core":
                raise ModuleNotFoundError("No module named 'fusedprop._core' (blocked by the test)", name=name)
            return None

    sys.meta_path.insert(0, _BlockCore())
""")


def run_child(script: str, *, backend: str | None = None, block_core: bool = False, tmp_path=None) -> dict:
    """Run `script` in a fresh interpreter; it prints one JSON object last."""
    env = {k: v for k, v in os.environ.items() if k != "FUSEDPROP_BACKEND"}
    if backend is not None:
        env["FUSEDPROP_BACKEND"] = backend
    code = (BLOCK_CORE if block_core else "") + textwrap.dedent(script)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, f"child failed:\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


IMPORT_AND_REPORT = """
    import json, sys, time, warnings
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import fusedprop as fp
    import_ms = 1e3 * (time.perf_counter() - t0)
    print(json.dumps({
        "backend": fp.get_backend(),
        "warnings": [[w.category.__name__, str(w.message)] for w in caught],
        "numba": "numba" in sys.modules,
        "torch": "torch" in sys.modules,
        "import_ms": import_ms,
    }))
"""


@pytest.mark.skipif(not HAVE_NUMBA, reason="Numba is not installed")
def test_missing_core_falls_back_to_numba_with_one_warning(tmp_path):
    script = IMPORT_AND_REPORT.replace("print(json.dumps({", """
    import numpy as np
    from fusedprop import functional as F
    from fusedprop.backends import numpy_backend
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    y = F.linear(x, w, b, "relu")
    linear_ok = bool(np.allclose(y, numpy_backend.linear(x, w, b, "relu", 0.01, None), rtol=1e-12, atol=1e-12))
    print(json.dumps({
        "linear_ok": linear_ok,""")
    got = run_child(script, block_core=True, tmp_path=tmp_path)
    assert got["backend"] == "numba"
    runtime = [msg for cat, msg in got["warnings"] if cat == "RuntimeWarning"]
    assert len(runtime) == 1, got["warnings"]
    message = runtime[0]
    assert "compiled core did not load" in message and "_core" in message  # why
    assert "numba backend" in message
    assert "pip install" in message and "C++17 compiler" in message  # how to get the compiled core
    assert got["linear_ok"]


@pytest.mark.skipif(not HAVE_NUMBA, reason="Numba is not installed")
def test_missing_core_numba_fallback_trains_a_small_model(tmp_path):
    got = run_child("""
        import json, warnings
        import numpy as np
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            import fusedprop as fp
        from fusedprop import nn, optim
        fp.manual_seed(0)
        rng = np.random.default_rng(0)
        X = rng.standard_normal((64, 4)).astype(np.float32)
        y = (X @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)).astype(np.float32)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
        criterion = nn.MSELoss()
        opt = optim.SGD(model.parameters(), lr=0.05)
        losses = []
        for _ in range(50):
            opt.zero_grad()
            loss = criterion(model(fp.tensor(X)), fp.tensor(y))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        print(json.dumps({"backend": fp.get_backend(), "first": losses[0], "last": losses[-1]}))
    """, block_core=True, tmp_path=tmp_path)
    assert got["backend"] == "numba"
    assert got["last"] < 0.5 * got["first"], got


def test_missing_core_and_numpy_requested_gives_no_warning(tmp_path):
    got = run_child(IMPORT_AND_REPORT, backend="numpy", block_core=True, tmp_path=tmp_path)
    assert got["backend"] == "numpy"
    assert got["warnings"] == []


@pytest.mark.parametrize("name", ["numba", "numpy"])
def test_environment_variable_picks_the_backend(tmp_path, name):
    if name == "numba" and not HAVE_NUMBA:
        pytest.skip("Numba is not installed")
    got = run_child(IMPORT_AND_REPORT, backend=name, tmp_path=tmp_path)
    assert got["backend"] == name
    assert got["warnings"] == []
    assert got["numba"] == (name == "numba")  # Numba is imported only for its backend
    assert not got["torch"]


@pytest.mark.skipif(not HAVE_CORE, reason="the compiled core is not built here")
def test_environment_variable_cpp_and_the_default_pick_cpp(tmp_path):
    for requested in ("cpp", None):
        got = run_child(IMPORT_AND_REPORT, backend=requested, tmp_path=tmp_path)
        assert got["backend"] == "cpp" and got["warnings"] == []


@pytest.mark.parametrize("value", ["bogus", "torch"])
def test_unknown_backend_in_environment_fails_clearly(tmp_path, value):
    env = {k: v for k, v in os.environ.items() if k != "FUSEDPROP_BACKEND"}
    env["FUSEDPROP_BACKEND"] = value
    proc = subprocess.run([sys.executable, "-c", "import fusedprop"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError"), proc.stderr
    assert f"FUSEDPROP_BACKEND={value!r}" in last and "unknown backend" in last
    assert "cpp, numba, numpy" in last  # what would have been accepted


def test_requesting_cpp_without_core_fails_clearly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FUSEDPROP_BACKEND"}
    env["FUSEDPROP_BACKEND"] = "cpp"
    proc = subprocess.run([sys.executable, "-c", BLOCK_CORE + "\nimport fusedprop"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "FUSEDPROP_BACKEND='cpp'" in last and "not available" in last and "_core" in last, proc.stderr


@pytest.mark.skipif(not HAVE_CORE, reason="without the compiled core the default backend is numba, which imports it")
def test_import_fusedprop_imports_neither_numba_nor_torch(tmp_path):
    got = run_child(IMPORT_AND_REPORT, tmp_path=tmp_path)
    assert got["backend"] == "cpp"
    assert not got["numba"], "import fusedprop imported numba"
    assert not got["torch"], "import fusedprop imported torch"
    # Import time is reported, not asserted (the machine is shared); see
    # `python -m fusedprop.bench` for speed.
    print(f"import fusedprop: {got['import_ms']:.0f} ms")


@pytest.mark.skipif(not HAVE_NUMBA, reason="Numba is not installed")
def test_set_backend_numba_later_imports_numba_then(tmp_path):
    got = run_child("""
        import json, sys
        import fusedprop as fp
        before = "numba" in sys.modules
        fp.set_num_threads(1)
        fp.set_backend("numba")
        import numba
        print(json.dumps({"before": before, "after": "numba" in sys.modules,
                          "backend": fp.get_backend(), "numba_threads": numba.get_num_threads()}))
    """, backend="numpy", tmp_path=tmp_path)
    assert not got["before"] and got["after"] and got["backend"] == "numba"
    assert got["numba_threads"] == 1  # the thread setting made before the backend loaded applies
