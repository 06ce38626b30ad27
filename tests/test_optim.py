"""Optimizers: hyperparameter validation, param groups, and each backend's fused updates against NumPy's."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fusedprop as fp
import fusedprop.nn as nn
from fusedprop import optim
from fusedprop.backends import optim_numpy


def _params():
    return nn.Linear(3, 2).parameters()


@pytest.mark.parametrize("make,match", [
    (lambda: optim.SGD(_params(), lr=-0.1), "lr"),
    (lambda: optim.SGD(_params(), lr=0.1, momentum=-0.5), "momentum"),
    (lambda: optim.SGD(_params(), lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda: optim.SGD(_params(), lr=0.1, nesterov=True), "nesterov"),
    (lambda: optim.SGD(_params(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (lambda: optim.Adam(_params(), lr=-1e-3), "lr"),
    (lambda: optim.Adam(_params(), betas=(1.0, 0.999)), r"betas\[0\]"),
    (lambda: optim.Adam(_params(), betas=(0.9, -0.1)), r"betas\[1\]"),
    (lambda: optim.Adam(_params(), eps=-1e-8), "eps"),
    (lambda: optim.Adam(_params(), weight_decay=-0.1), "weight_decay"),
    (lambda: optim.AdamW(_params(), betas=(0.9, 1.5)), r"betas\[1\]"),
    (lambda: optim.AdamW(_params(), lr=float("nan")), "lr"),
    (lambda: optim.SGD([], lr=0.1), "empty"),
])
def test_invalid_hyperparameters_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_params_must_be_parameters():
    with pytest.raises(TypeError, match="Parameter"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(nn.Linear(2, 2).weight, lr=0.1)


def test_defaults_and_param_groups():
    lin = nn.Linear(3, 2)
    opt = optim.AdamW([{"params": [lin.weight]}, {"params": [lin.bias], "lr": 0.5, "weight_decay": 0.0}])
    assert opt.param_groups[0]["lr"] == 1e-3 and opt.param_groups[0]["weight_decay"] == 1e-2
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["weight_decay"] == 0.0
    assert opt.param_groups[0]["betas"] == (0.9, 0.999) and opt.param_groups[0]["eps"] == 1e-8
    lin.weight.grad = np.ones_like(lin.weight.data)
    bias_before = lin.bias.data.copy()
    opt.step()  # bias has no grad: untouched
    np.testing.assert_array_equal(lin.bias.data, bias_before)
    opt.zero_grad()
    assert lin.weight.grad is None
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([{"params": [lin.weight]}, {"params": [lin.weight]}], lr=0.1)


SGD_CONFIGS = [(0.1, 0.0, 0.0, 0.0, False), (0.1, 0.9, 0.0, 0.0, False), (0.05, 0.8, 0.3, 0.01, False),
               (0.05, 0.9, 0.0, 1e-3, True)]
ADAM_CONFIGS = [(1e-2, 0.9, 0.999, 1e-8, 0.0, False, False), (1e-2, 0.8, 0.99, 1e-8, 0.1, True, False),
                (1e-2, 0.9, 0.999, 1e-8, 0.1, False, True), (1e-2, 0.3, 0.9, 1e-6, 0.1, True, True)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", SGD_CONFIGS)
def test_backend_sgd_step_equals_numpy(backend, rng, dtype, config):
    kernel = fp.backends.current.sgd_step
    lr, momentum, dampening, wd, nesterov = config
    p = rng.standard_normal((7, 33)).astype(dtype)
    p_ref = p.copy()
    buf, buf_ref = (np.empty_like(p), np.empty_like(p)) if momentum else (None, None)
    for step in range(3):
        g = rng.standard_normal(p.shape).astype(dtype)
        kernel(p, g, buf, lr, momentum, dampening, wd, nesterov, step == 0)
        optim_numpy.sgd_step(p_ref, g, buf_ref, lr, momentum, dampening, wd, nesterov, step == 0)
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(p, p_ref, **tol)
    if momentum:
        np.testing.assert_allclose(buf, buf_ref, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", ADAM_CONFIGS)
def test_backend_adam_step_equals_numpy(backend, rng, dtype, config):
    kernel = fp.backends.current.adam_step
    lr, beta1, beta2, eps, wd, amsgrad, decoupled = config
    p = rng.standard_normal(101).astype(dtype)
    state = [np.zeros_like(p) for _ in range(3)]
    p_ref, state_ref = p.copy(), [s.copy() for s in state]
    for step in range(1, 4):
        g = rng.standard_normal(p.shape).astype(dtype)
        kernel(p, g, state[0], state[1], state[2] if amsgrad else None, float(step), lr, beta1, beta2, eps, wd,
               decoupled)
        optim_numpy.adam_step(p_ref, g, state_ref[0], state_ref[1], state_ref[2] if amsgrad else None, float(step),
                              lr, beta1, beta2, eps, wd, decoupled)
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-15)
    for a, b in zip([p] + state, [p_ref] + state_ref):
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backend_adam_multiplies_by_the_reciprocal_bias_correction(backend, rng, dtype):
    """Every backend forms denom = sqrt(v) * (1 / sqrt(1 - beta2^step)) + eps (csrc/optim/adam.h), not
    PyTorch's quotient, so that backends and ISAs agree to the bit; checked on one plain Adam step."""
    lr, beta1, beta2, eps, step = 1e-2, 0.9, 0.999, 1e-8, 3.0
    # p = 0: the new p is the update itself, where a last-bit change of denom shows
    p, g = np.zeros(257, dtype), rng.standard_normal(257).astype(dtype)
    m, v = rng.standard_normal(257).astype(dtype) * dtype(0.1), rng.random(257).astype(dtype) * dtype(0.1)
    m_new = m + dtype(1 - beta1) * (g - m)
    v_new = v * dtype(beta2) + dtype(1 - beta2) * g * g
    denom = np.sqrt(v_new) * dtype(1 / np.sqrt(1 - beta2 ** step)) + dtype(eps)
    want = p + dtype(-(lr / (1 - beta1 ** step))) * (m_new / denom)
    quotient = np.sqrt(v_new) / dtype(np.sqrt(1 - beta2 ** step)) + dtype(eps)
    assert (p + dtype(-(lr / (1 - beta1 ** step))) * (m_new / quotient) != want).any()  # the test can tell them apart
    fp.backends.current.adam_step(p, g, m, v, None, step, lr, beta1, beta2, eps, 0.0, False)
    np.testing.assert_array_equal(m, m_new)
    np.testing.assert_array_equal(v, v_new)
    np.testing.assert_array_equal(p, want)


def test_backend_kernels_reject_bad_arrays(backend):
    sgd, adam = fp.backends.current.sgd_step, fp.backends.current.adam_step
    p = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="grad has shape"):
        sgd(p, np.zeros((3, 2), np.float32), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="grad has dtype float64"):
        sgd(p, np.zeros((2, 3)), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="momentum_buffer is required"):
        sgd(p, np.zeros_like(p), None, 0.1, 0.9, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="C-contiguous"):
        sgd(np.zeros((3, 2), np.float32).T, np.zeros_like(p), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="float32 or float64"):
        sgd(np.zeros(3, np.int32), np.zeros(3, np.int32), None, 0.1, 0.0, 0.0, 0.0, False, False)
    read_only = np.zeros_like(p)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="exp_avg is read-only"):
        adam(p, np.zeros_like(p), read_only, np.zeros_like(p), None, 1.0, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)


def test_sgd_step_matches_hand_computation(backend):
    lin = nn.Linear(2, 1, dtype=np.float64)
    lin.weight.data[...] = [[1.0, 2.0]]
    lin.bias.data[...] = [0.5]
    opt = optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    for expected_w in ([[0.9, 1.9]], [[0.71, 1.71]]):
        lin.weight.grad = np.ones((1, 2))
        lin.bias.grad = np.ones(1)
        opt.step()
        np.testing.assert_allclose(lin.weight.data, expected_w, rtol=1e-14)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_subnormal_state_is_flushed_to_zero(backend, dtype):
    """A decaying moment that would go subnormal is stored as +0 (every
    backend alike; csrc/optim/flush.h says why); normal values and NaN are
    left alone."""
    from fusedprop import nn as fnn

    tiny = np.finfo(dtype).tiny
    values = np.array([tiny * 0.5, -tiny * 0.25, tiny * 4, -tiny * 4, np.nan, 1e30, 1.0, 0.0], dtype)
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.5), lambda ps: optim.Adam(ps, lr=0.1)):
        p = fnn.Parameter(np.ones_like(values))
        opt = make([p])
        p.grad = np.ones_like(values)
        opt.step()  # creates the state
        state = {k: v for k, v in opt.state[p].items() if isinstance(v, np.ndarray)}
        start = {name: np.abs(values) if name == "exp_avg_sq" else values for name in state}  # a square is >= 0
        for name, v in state.items():
            v[...] = start[name]
        p.grad = np.zeros_like(values)
        opt.step()
        for name, v in state.items():
            decayed = start[name] * dtype(0.5 if "momentum" in name else 0.9 if name == "exp_avg" else 0.999)
            want = np.where(np.abs(decayed) < tiny, dtype(0), decayed)
            np.testing.assert_array_equal(v, want, err_msg=name)
            assert not np.signbit(v[np.abs(decayed) < tiny]).any(), name


def _optim_isas(core):
    isas = []
    for name in ("reference", "avx2", "avx512"):
        try:
            core._set_optim_isa(name)
        except ValueError:
            continue
        isas.append(name)
    core._set_optim_isa("auto")
    return isas


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizer_updates_give_the_same_bits_on_every_isa(cpp_only, rng, dtype):
    """The AVX-512, AVX2 and baseline copies of the update loops
    (csrc/optim/update_loops.h) round every operation alike: bitwise equal
    results, vector tails included, NaN/Inf/subnormal values too."""
    core = fp.backends.core_module()
    isas = _optim_isas(core)
    assert "reference" in isas
    if len(isas) < 2:
        pytest.skip("this CPU runs only the baseline optimizer loops")
    tiny = np.finfo(dtype).tiny
    specials = np.array([np.nan, np.inf, -np.inf, tiny * 0.5, -tiny * 3, 0.0, -0.0, 1e30], dtype)

    def data(n):
        a = rng.standard_normal(n).astype(dtype)
        a[: min(n, len(specials))] = specials[: min(n, len(specials))]
        return a

    def run(isa, n, seed_arrays):
        core._set_optim_isa(isa)
        try:
            out = []
            for config in SGD_CONFIGS:
                p, g, buf = (a.copy() for a in seed_arrays[:3])
                for step in range(2):
                    core.sgd_step(p, g, buf if config[1] else None, *config, step == 0)
                out += [p, buf]
            for lr, b1, b2, eps, wd, amsgrad, decoupled in ADAM_CONFIGS:
                p, g, m, v, vmax = (a.copy() for a in seed_arrays)
                v, vmax = np.abs(v), np.abs(vmax)
                for step in (1.0, 2.0):
                    core.adam_step(p, g, m, v, vmax if amsgrad else None, step, lr, b1, b2, eps, wd, decoupled)
                out += [p, m, v, vmax]
            return out
        finally:
            core._set_optim_isa("auto")

    for n in (0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 1000, 4099):
        arrays = [data(n) for _ in range(5)]
        want = run("reference", n, arrays)
        for isa in isas[1:]:
            got = run(isa, n, arrays)
            for k, (a, b) in enumerate(zip(got, want)):
                assert a.tobytes() == b.tobytes(), f"{isa}, n={n}, array {k}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_of_squares_matches_fsum_with_the_same_bits_on_every_isa(cpp_only, rng, dtype):
    """The sum of squares behind scikit-learn's L2 loss term (update_loops.h,
    16 partial sums): within a few ulps of an exactly rounded sum (math.fsum of
    the float64 squares, which are exact for float32), bitwise equal on every
    ISA at every length around the partials' width, and inf or nan where the
    data hold them."""
    core = fp.backends.core_module()
    isas = _optim_isas(core)
    try:
        for n in (0, 1, 2, 15, 16, 17, 31, 32, 33, 47, 1000, 4099, 85_000):
            a = (rng.standard_normal(n) * rng.choice([1e-3, 1.0, 1e3], n)).astype(dtype)
            squares = a.astype(np.float64) ** 2
            exact = math.fsum(squares.tolist())
            got = {}
            for isa in isas:
                core._set_optim_isa(isa)
                got[isa] = core._sum_of_squares(a)
            assert len({v.hex() for v in got.values()}) == 1, (n, got)
            assert got["reference"] == pytest.approx(exact, rel=1e-14, abs=0.0), n
        for special, want in ((np.inf, np.inf), (np.nan, None)):
            a = rng.standard_normal(37).astype(dtype)
            a[20] = special
            for isa in isas:
                core._set_optim_isa(isa)
                s = core._sum_of_squares(a)
                assert (np.isnan(s) if want is None else s == want), (isa, special, s)
    finally:
        core._set_optim_isa("auto")
    with pytest.raises(TypeError, match="float32 or float64"):
        core._sum_of_squares(np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match="C-contiguous"):
        core._sum_of_squares(np.ones((4, 4), dtype=dtype)[:, ::2])


def test_set_optim_isa_rejects_unknown_names(cpp_only):
    with pytest.raises(ValueError, match="unknown ISA"):
        fp.backends.core_module()._set_optim_isa("sse9")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_updates_split_over_threads_give_the_same_bits(cpp_only, threads, rng, dtype):
    """A parameter of more than 2 x 32768 elements is updated in chunks on
    the thread pool (csrc/optim/update_kernels.h): the same bits at 1, 2 and
    3 threads, the chunk edges included."""
    core = fp.backends.core_module()
    n = 3 * 32768 + 1001
    p0, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    results = []
    for n_threads in (1, 2, 3):
        threads(n_threads)
        p, buf = p0.copy(), np.empty_like(p0)
        core.sgd_step(p, g, buf, 0.1, 0.9, 0.0, 1e-3, True, True)
        core.sgd_step(p, g, buf, 0.1, 0.9, 0.0, 1e-3, True, False)
        q, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        for step in (1.0, 2.0):
            core.adam_step(q, g, m, v, None, step, 1e-2, 0.9, 0.999, 1e-8, 0.1, True)
        results.append([a.tobytes() for a in (p, buf, q, m, v)])
    assert results[0] == results[1] == results[2]
    p_ref, buf_ref = p0.copy(), np.empty_like(p0)
    optim_numpy.sgd_step(p_ref, g, buf_ref, 0.1, 0.9, 0.0, 1e-3, True, True)
    optim_numpy.sgd_step(p_ref, g, buf_ref, 0.1, 0.9, 0.0, 1e-3, True, False)
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(np.frombuffer(results[1][0], dtype), p_ref, **tol)
