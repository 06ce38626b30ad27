"""The backend registry, threads and CPU information."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import backends


def test_available_backends_always_include_the_reference():
    names = fp.available_backends()
    assert names[-1] == "numpy"
    assert set(names) <= {"cpp", "numba", "numpy"}


def test_cpp_is_chosen_when_the_core_loads():
    if backends.core_module() is None:
        pytest.skip(f"compiled core not built here: {backends.core_import_error()}")
    code = "import fusedprop as fp; print(fp.get_backend())"
    env = {k: v for k, v in __import__("os").environ.items() if k != "FUSEDPROP_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "cpp"


def test_cpp_backend_runs_every_kernel_in_the_core():
    core = backends.core_module()
    if core is None:
        pytest.skip("compiled core not built here")
    from fusedprop.backends import cpp_backend

    for name in cpp_backend._KERNELS + ("sgd_step", "adam_step"):
        assert getattr(cpp_backend, name) is getattr(core, name), name


def test_set_backend_and_use_backend_restore(backend):
    assert fp.get_backend() == backend
    with fp.use_backend("numpy"):
        assert fp.get_backend() == "numpy"
    assert fp.get_backend() == backend


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        fp.set_backend("cuda")
    with pytest.raises(TypeError, match="backend name must be a str"):
        fp.set_backend(3)


def test_use_backend_restores_after_an_exception():
    before = fp.get_backend()
    with pytest.raises(RuntimeError):
        with fp.use_backend("numpy"):
            raise RuntimeError("boom")
    assert fp.get_backend() == before


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)])
def test_set_num_threads_validates(bad, exc):
    with pytest.raises(exc, match="set_num_threads"):
        fp.set_num_threads(bad)


def test_set_num_threads_round_trips():
    before = fp.get_num_threads()
    try:
        fp.set_num_threads(3)
        assert fp.get_num_threads() == 3
    finally:
        fp.set_num_threads(before)


def test_thread_count_comes_from_the_environment():
    code = "import fusedprop as fp; print(fp.get_num_threads())"
    for env, expected in (({"FUSEDPROP_NUM_THREADS": "3", "OMP_NUM_THREADS": "5"}, "3"), ({"OMP_NUM_THREADS": "5"}, "5")):
        full = {k: v for k, v in __import__("os").environ.items() if k not in ("FUSEDPROP_NUM_THREADS", "OMP_NUM_THREADS")}
        full.update(env)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, check=True)
        assert out.stdout.strip() == expected


def test_cpu_info_reports_the_kernel_and_threads():
    info = fp.cpu_info()
    assert info["backend"] == fp.get_backend()
    assert info["num_threads"] == fp.get_num_threads()
    assert isinstance(info["isa"], str) and info["isa"]
    if backends.core_module() is not None:
        assert {"sse2", "avx2", "fma", "avx512f"} <= set(info["features"])


def test_import_is_light():
    code = "import sys, fusedprop; print('numba' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_manual_seed_makes_the_generator_reproducible():
    fp.manual_seed(7)
    a = fp._runtime.generator().standard_normal(4)
    fp.manual_seed(7)
    b = fp._runtime.generator().standard_normal(4)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="seed must be an int"):
        fp.manual_seed(1.5)
