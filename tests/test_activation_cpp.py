"""The compiled elementwise activations: _core.activation / _core.activation_grad.

Checked against the NumPy reference (evaluated in float64), against
PyTorch (values and autograd gradients) where installed, against float64 /
mpmath oracles for the ulp bounds, on both ISAs (AVX2 and the portable
reference), for every layout NumPy can hand over, special values included.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from fusedprop.backends import numpy_backend as ref
from helpers import activation_isas

_core = pytest.importorskip("fusedprop._core")

ACTS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu")
SAVES_Y = {"relu", "leaky_relu", "sigmoid", "tanh"}
DTYPES = (np.float32, np.float64)
SLOPE = 0.01


@pytest.fixture(params=activation_isas())
def isa(request):
    _core._set_activation_isa(request.param)
    yield request.param
    _core._set_activation_isa("auto")


@pytest.fixture
def avx2():
    if "avx2" not in activation_isas():
        pytest.skip("no AVX2+FMA on this CPU")
    _core._set_activation_isa("avx2")
    yield
    _core._set_activation_isa("auto")


def saved_of(name, x, y):
    return y if name in SAVES_Y else (None if name == "identity" else x)


def expect_close(got, want, dtype, scale=0.0, k=16.0):
    """|got - want| <= k eps (|want| + scale), NaN exactly where NaN.

    scale is the size of the terms a formula adds up (where the reference
    path's 1 + erf(.) or a derivative's terms cancel, only an absolute bound
    is meaningful); the precise bounds are the ulp sweeps further down."""
    eps = float(np.finfo(dtype).eps)
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    with np.errstate(invalid="ignore"):
        same_inf = np.isinf(want) & (got == want)
        err = np.where(nan | same_inf, 0.0, np.abs(got - want))
        tol = k * eps * (np.abs(want) + scale + np.finfo(dtype).tiny)
    bad = ~(err <= tol)
    assert not bad.any(), f"max err {err[bad].max():.3g} at want={want[bad][:5]}"


# Lengths around a vector (4 f64, 8 f32) and an unrolled step (4 vectors).
SHAPES = [(), (0,), (1,), (7,), (8,), (9,), (15,), (31,), (33,), (65,), (1000,), (3, 5, 7), (2, 0, 3), (4, 1, 17)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_and_grad_match_numpy_reference(isa, name, dtype, shape):
    rng = np.random.default_rng(zlib.crc32(repr((name, shape)).encode()))
    x = np.asarray(rng.standard_normal(shape) * 4).astype(dtype)
    y = _core.activation(x, name, SLOPE, None)
    assert y.dtype == dtype and y.shape == x.shape and isinstance(y, np.ndarray)
    x64 = x.astype(np.float64)
    expect_close(y, ref.activation(x64, name, SLOPE, None), dtype, np.abs(x64))

    gy = np.asarray(rng.standard_normal(shape)).astype(dtype)
    s = saved_of(name, x, y)
    g = _core.activation_grad(gy, s, name, SLOPE)
    assert g.dtype == dtype and g.shape == x.shape
    s64 = None if s is None else s.astype(np.float64)
    want = ref.activation_grad(gy.astype(np.float64), s64, name, SLOPE)
    expect_close(g, want, dtype, np.abs(gy) * (1 + np.abs(x64)))


def _layouts(dtype):
    rng = np.random.default_rng(7)
    base = (rng.standard_normal((6, 10, 12)) * 3).astype(dtype)
    m = base[0]
    return {
        "strided_1d": base.reshape(-1)[::3],
        "negative_1d": base.reshape(-1)[::-1],
        "transposed": m.T,
        "fortran": np.asfortranarray(m),
        "neg_2d": m[::-1, ::-2],
        "cols_slice": m[:, 2:9],
        "nd_foldable": base[:, 1:4, :],
        "nd_unfoldable": base[:, ::2, 1::3],
        "nd_transposed": base.transpose(2, 0, 1),
        "zero_stride": np.broadcast_to(m[0], (5, 12)),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTS)
def test_any_strides_give_the_contiguous_result_bitwise(isa, name, dtype):
    for label, x in _layouts(dtype).items():
        xc = np.ascontiguousarray(x)
        y = _core.activation(x, name, SLOPE, None)
        np.testing.assert_array_equal(y, _core.activation(xc, name, SLOPE, None), err_msg=label)
        gy = np.ascontiguousarray(x[..., ::-1]) * 0.5 if x.ndim else x * 0.5
        gy_view = gy.T.copy().T  # a differently laid out grad_y
        s = saved_of(name, x, y)
        sc = None if s is None else np.ascontiguousarray(s)
        want = _core.activation_grad(np.ascontiguousarray(gy), sc, name, SLOPE)
        np.testing.assert_array_equal(_core.activation_grad(gy_view, s, name, SLOPE), want, err_msg=label)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_argument(isa, dtype):
    x = np.linspace(-3, 3, 60, dtype=dtype).reshape(6, 10)
    out = np.empty((10, 6), dtype).T  # non-contiguous out
    r = _core.activation(x, "gelu", SLOPE, out)
    assert r is out
    np.testing.assert_array_equal(out, _core.activation(x, "gelu", SLOPE, None))
    out3 = np.full((6, 10, 2), np.nan, dtype)[:, :, 0]
    _core.activation(x, "silu", SLOPE, out3)
    np.testing.assert_array_equal(out3, _core.activation(x, "silu", SLOPE, None))
    # 0-d in, 0-d out
    z = np.array(0.5, dtype)
    o = np.empty((), dtype)
    assert _core.activation(z, "tanh", SLOPE, o) is o
    assert o[()] == _core.activation(z, "tanh", SLOPE, None)[()]


# ----------------------------------------------------------- special values

SPECIAL = [-np.inf, -1e30, -100.0, -88.0, -50.0, -20.0, -10.0, -1.0, -1e-30, -1e-40, -0.0, 0.0, 1e-40, 1e-30,
           1.0, 10.0, 20.0, 50.0, 88.0, 100.0, 1e30, np.inf, np.nan]


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(isa, dtype):
    with np.errstate(over="ignore"):
        x = np.array(SPECIAL + [np.finfo(dtype).max, -np.finfo(dtype).max, np.finfo(dtype).tiny / 4], dtype)
    f = {n: _core.activation(x, n, SLOPE, None) for n in ACTS}
    nan = np.isnan(x)
    for n in ACTS:  # NaN in, NaN out; no spurious NaN for finite input
        np.testing.assert_array_equal(np.isnan(f[n][nan]), True, err_msg=n)
        assert not np.isnan(f[n][np.isfinite(x)]).any(), n
    i = {v: k for k, v in enumerate(SPECIAL) if not (isinstance(v, float) and math.isnan(v))}
    i[-0.0] = next(k for k, v in enumerate(SPECIAL) if v == 0 and math.copysign(1, v) < 0)  # -0.0 == 0.0 as keys
    assert np.signbit(x[i[-0.0]])
    assert f["relu"][i[-0.0]] == 0 and np.signbit(f["relu"][i[-0.0]])  # z < 0 ? 0 : z keeps -0, as torch
    assert f["sigmoid"][i[np.inf]] == 1 and f["sigmoid"][i[-np.inf]] == 0
    assert 0 <= f["sigmoid"][i[-100.0]] < 1e-40 and f["sigmoid"][i[100.0]] == 1
    assert f["tanh"][i[np.inf]] == 1 and f["tanh"][i[-np.inf]] == -1 and f["tanh"][i[50.0]] == 1
    assert np.signbit(f["tanh"][i[-0.0]]) and f["tanh"][i[-1e-30]] == dtype(-1e-30)
    assert f["gelu"][i[np.inf]] == np.inf and np.isnan(f["gelu"][i[-np.inf]])  # -inf * 0, as torch
    assert f["gelu_tanh"][i[np.inf]] == np.inf and np.isnan(f["gelu_tanh"][i[-np.inf]])
    assert f["silu"][i[np.inf]] == np.inf and np.isnan(f["silu"][i[-np.inf]])
    assert f["gelu"][i[-1e30]] == 0 and f["silu"][i[-1e30]] == 0 and f["gelu_tanh"][i[-1e30]] == 0
    assert f["leaky_relu"][i[-np.inf]] == -np.inf
    # relu / leaky_relu grads select: dY = Inf where Y <= 0 gives 0 (not NaN)
    gy = np.full_like(x, np.inf)
    g = _core.activation_grad(gy, f["relu"], "relu", SLOPE)
    y = f["relu"]
    assert (g[y <= 0] == 0).all() and (g[np.isnan(y)] == np.inf).all()
    g = _core.activation_grad(np.ones_like(x), f["leaky_relu"], "leaky_relu", SLOPE)
    np.testing.assert_array_equal(g, np.where(f["leaky_relu"] > 0, 1, dtype(SLOPE)).astype(dtype))
    # identity ignores saved entirely
    np.testing.assert_array_equal(_core.activation_grad(x, None, "identity", SLOPE), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTS)
def test_matches_torch_values_and_autograd(isa, name, dtype):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    fns = {"identity": lambda t: t * 1, "relu": tf.relu, "leaky_relu": lambda t: tf.leaky_relu(t, SLOPE),
           "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": tf.gelu,
           "gelu_tanh": lambda t: tf.gelu(t, approximate="tanh"), "silu": tf.silu}
    rng = np.random.default_rng(3)
    with np.errstate(over="ignore"):
        x = np.concatenate([rng.standard_normal(2000) * 5, np.linspace(-12, 12, 2001),
                            np.array(SPECIAL)]).astype(dtype)
    gy = rng.standard_normal(x.shape).astype(dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = fns[name](xt)
    (gt,) = torch.autograd.grad(yt, xt, torch.from_numpy(gy))
    yt, gt = yt.detach().numpy(), gt.numpy()
    # torch's vectorised float32 gelu gives NaN at +inf (seen with its AVX2 and
    # AVX-512 kernels on a Xeon), where its own scalar path, and its float64,
    # give the definition's inf: the special values are checked against torch
    # one element at a time, which takes the scalar path.
    n_special = len(SPECIAL)
    for i in range(len(x) - n_special, len(x)):
        xi = torch.tensor([x[i]], requires_grad=True)
        yi = fns[name](xi)
        (gi,) = torch.autograd.grad(yi, xi, torch.tensor([gy[i]]))
        yt[i], gt[i] = yi.item(), gi.item()
    y = _core.activation(x, name, SLOPE, None)
    g = _core.activation_grad(gy, saved_of(name, x, y), name, SLOPE)
    eps = float(np.finfo(dtype).eps)
    # torch computes 0.5 z (1 + erf) and 0.5 z (1 + tanh): absolute error
    # ~eps |z| where that cancels; and flushes some subnormal tails to 0.
    tiny = 1e-36 if dtype == np.float32 else 1e-300

    def close(a, b, scale):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        ok = np.isnan(a) | (a == b) | (np.abs(a.astype(np.float64) - b) <= 64 * eps * scale + tiny)
        assert ok.all(), (x[~ok][:5], a[~ok][:5], b[~ok][:5])

    with np.errstate(invalid="ignore", over="ignore"):
        close(y, yt, np.abs(yt) + np.minimum(np.abs(x), 1e30) * 0.25)
        close(g, gt, np.abs(gt) + np.minimum(np.abs(x * gy), 1e30) * 0.25 + np.abs(gy))


# ------------------------------------------------------------- ulp sweeps

C = math.sqrt(2 / math.pi)
K = 0.044715


def _oracle64(name, z):
    """Accurate float64 values for a float32 ulp check (no cancellation)."""
    from scipy import special as sp
    z = z.astype(np.float64)
    with np.errstate(all="ignore"):
        if name == "sigmoid":
            return sp.expit(z)
        if name == "tanh":
            return np.tanh(z)
        if name == "gelu":
            return z * sp.ndtr(z)
        if name == "gelu_tanh":
            return z * sp.expit(2 * C * (z + K * z**3))
        if name == "silu":
            return z * sp.expit(z)


def _doracle64(name, z):
    """(derivative, size of the terms that sum to it) in float64."""
    from scipy import special as sp
    z = z.astype(np.float64)
    if name == "gelu":
        a, b = sp.ndtr(z), z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    elif name == "gelu_tanh":
        u2 = 2 * C * (z + K * z**3)
        s = sp.expit(u2)
        a, b = s, 2 * z * s * sp.expit(-u2) * C * (1 + 3 * K * z * z)
    else:  # silu
        s = sp.expit(z)
        a, b = s, s * z * sp.expit(-z)
    return a + b, np.abs(a) + np.abs(b)


# Max ulp error of the AVX2 float32 kernels on this sweep (measured: sigmoid
# 2.25, tanh 1.25, gelu 5.1, gelu_tanh 3.2, silu 3.0), subnormal results
# included (counted in subnormal spacings).
ULP_BOUND_F32 = {"sigmoid": 3, "tanh": 2, "gelu": 6, "gelu_tanh": 4, "silu": 4}


def _ulps(got, want):
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want) / ulp


# The portable path evaluates float in double (activation.h, scalar::): at
# most one rounding from the double result.
ULP_BOUND_F32_REFERENCE = 0.51


@pytest.mark.parametrize("name", sorted(ULP_BOUND_F32))
def test_f32_ulp_sweep_reference_isa(name):
    pytest.importorskip("scipy")
    z = np.concatenate([np.linspace(-20, 20, 200_001, dtype=np.float32),
                        np.geomspace(1e-38, 1, 5_001, dtype=np.float32),
                        -np.geomspace(1e-38, 1, 5_001, dtype=np.float32),
                        np.linspace(-105, 90, 20_001, dtype=np.float32)])
    _core._set_activation_isa("reference")
    try:
        y = _core.activation(z, name, SLOPE, None)
    finally:
        _core._set_activation_isa("auto")
    e = _ulps(y, _oracle64(name, z))
    assert e.max() <= ULP_BOUND_F32_REFERENCE, (e.max(), z[np.argmax(e)])


@pytest.mark.parametrize("name", sorted(ULP_BOUND_F32))
def test_f32_ulp_sweep(avx2, name):
    pytest.importorskip("scipy")
    z = np.concatenate([np.linspace(-20, 20, 1_000_001, dtype=np.float32),
                        np.linspace(-1e-3, 1e-3, 100_001, dtype=np.float32),
                        np.geomspace(1e-38, 1, 20_001, dtype=np.float32),
                        -np.geomspace(1e-38, 1, 20_001, dtype=np.float32),
                        np.linspace(-105, 90, 200_001, dtype=np.float32)])
    y = _core.activation(z, name, SLOPE, None)
    e = _ulps(y, _oracle64(name, z))
    assert e.max() <= ULP_BOUND_F32[name], (e.max(), z[np.argmax(e)])


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu"])
def test_f32_derivative_sweep(avx2, name):
    """d act/dz from Z: a few ulps of the result plus a few eps of the terms
    (the derivatives cross zero, where only an absolute bound makes sense)."""
    pytest.importorskip("scipy")
    z = np.linspace(-20, 20, 400_001, dtype=np.float32)
    if name == "gelu_tanh":
        z = z[z >= -9.8]
    g = _core.activation_grad(np.ones_like(z), z, name, SLOPE).astype(np.float64)
    want, terms = _doracle64(name, z)
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    err = np.abs(g - want)
    eps = float(np.finfo(np.float32).eps)
    # plus 32 subnormal spacings: the density's tail is subnormal below z = -13.2
    assert (err <= 4 * ulp + 4 * eps * terms + 32 * 2.0**-149).all(), err.max()


def test_f32_sigmoid_tanh_derivatives_from_y(avx2):
    y = np.linspace(-1, 1, 100_001, dtype=np.float32)
    y64 = y.astype(np.float64)
    g = _core.activation_grad(np.ones_like(y), y, "tanh", SLOPE)
    np.testing.assert_array_max_ulp(g, (1 - y64 * y64).astype(np.float32), 1)
    ys = (y + 1) / 2
    g = _core.activation_grad(np.ones_like(ys), ys, "sigmoid", SLOPE)
    ys64 = ys.astype(np.float64)
    np.testing.assert_array_max_ulp(g, (ys64 * (1 - ys64)).astype(np.float32), 1)


# float64 relative error bounds against mpmath over [-30, 30] (measured:
# sigmoid 3.5e-16, tanh 2.1e-16, gelu 5.1e-16, gelu_tanh 4.2e-16, silu 3.9e-16).
REL_BOUND_F64 = {"sigmoid": 1e-15, "tanh": 1e-15, "gelu": 2e-15, "gelu_tanh": 2e-15, "silu": 1e-15}


@pytest.mark.parametrize("name", sorted(REL_BOUND_F64))
def test_f64_relative_error_vs_mpmath(avx2, name):
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    c, k = mp.sqrt(2 / mp.pi), mp.mpf("0.044715")
    f = {"sigmoid": lambda t: 1 / (1 + mp.exp(-t)), "tanh": mp.tanh, "gelu": lambda t: t * mp.ncdf(t),
         "gelu_tanh": lambda t: t / (1 + mp.exp(-2 * c * (t + k * t**3))), "silu": lambda t: t / (1 + mp.exp(-t))}[name]
    rng = np.random.default_rng(11)
    z = np.concatenate([rng.uniform(-5, 5, 800), rng.uniform(-30, 30, 400), rng.uniform(-1e-3, 1e-3, 100),
                        [0.625, np.nextafter(0.625, 0), 0.75, -0.75, 3.0, -3.0, np.nextafter(-3.0, 0)]])
    y = _core.activation(z, name, SLOPE, None)
    want = np.array([float(f(mp.mpf(float(t)))) for t in z])
    keep = np.abs(want) > 1e-290
    rel = np.abs(y - want)[keep] / np.abs(want)[keep]
    assert rel.max() <= REL_BOUND_F64[name], (rel.max(), z[keep][np.argmax(rel)])


def test_f64_derivatives_close_to_float64_formulas(avx2):
    """Against plain float64 formulas, themselves off by ~eps z^2 in the tails
    (the rounding of z^2/2 or 2u in an exponent): 1e-13 relative to the terms,
    5e-13 for gelu_tanh's 2u."""
    pytest.importorskip("scipy")
    z = np.linspace(-30, 30, 200_001)
    for name, bound in (("gelu", 1e-13), ("gelu_tanh", 5e-13), ("silu", 1e-13)):
        g = _core.activation_grad(np.ones_like(z), z, name, SLOPE)
        want, terms = _doracle64(name, z)
        assert (np.abs(g - want) <= bound * (np.abs(want) + terms) + 1e-300).all(), name


# ------------------------------------------------------- ISA and threads

def test_isa_switch_and_env_override():
    assert _core._activation_isa() in ("avx2", "reference")
    with pytest.raises(ValueError, match="unknown ISA"):
        _core._set_activation_isa("sse9")
    code = "from fusedprop import _core; print(_core._activation_isa())"
    env = dict(os.environ, FUSEDPROP_ISA="reference")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "reference"


@pytest.mark.parametrize("dtype", DTYPES)
def test_isas_agree(dtype):
    if "avx2" not in activation_isas():
        pytest.skip("no AVX2")
    x = (np.random.default_rng(5).standard_normal(4099) * 3).astype(dtype)
    res = {}
    for isa_name in ("reference", "avx2"):
        _core._set_activation_isa(isa_name)
        try:
            res[isa_name] = {n: _core.activation(x, n, SLOPE, None) for n in ACTS}
        finally:
            _core._set_activation_isa("auto")
    for n in ACTS:
        expect_close(res["avx2"][n], res["reference"][n], dtype, np.abs(x))
        if n in ("identity", "relu", "leaky_relu"):
            np.testing.assert_array_equal(res["avx2"][n], res["reference"][n])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 5), (3, 70_000), (20_000, 33), (4097, 1), (257, 4100), (0, 9)])
def test_column_sums_bitwise_deterministic_across_threads(isa, dtype, shape):
    rng = np.random.default_rng(9)
    gy = rng.standard_normal(shape).astype(dtype)
    z = rng.standard_normal(shape).astype(dtype)
    before = _core.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, 4):
            _core.set_num_threads(n)
            results.append(_core._activation_grad_sums(gy, z, "gelu", SLOPE))
    finally:
        _core.set_num_threads(before)
    for gz, sums in results[1:]:
        np.testing.assert_array_equal(gz, results[0][0])
        assert sums.tobytes() == results[0][1].tobytes()
    gz, sums = results[0]
    np.testing.assert_array_equal(gz, _core.activation_grad(gy, z, "gelu", SLOPE))
    assert sums.shape == (shape[1],)
    np.testing.assert_allclose(sums, gz.astype(np.float64).sum(axis=0), rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-3 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("name", ACTS)
def test_large_arrays_same_for_every_thread_count(name):
    x = (np.random.default_rng(2).standard_normal(300_001) * 4).astype(np.float32)
    before = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        y1 = _core.activation(x, name, SLOPE, None)
        g1 = _core.activation_grad(x, saved_of(name, x, y1), name, SLOPE)
        _core.set_num_threads(3)
        y3 = _core.activation(x, name, SLOPE, None)
        g3 = _core.activation_grad(x, saved_of(name, x, y3), name, SLOPE)
    finally:
        _core.set_num_threads(before)
    assert y1.tobytes() == y3.tobytes() and g1.tobytes() == g3.tobytes()


# ----------------------------------------------------------------- errors

def _bad_calls():
    x = np.ones((3, 4), np.float32)
    ro = np.ones((3, 4), np.float32)
    ro.flags.writeable = False
    return [
        ("activation", ([1.0, 2.0], "relu", 0.01, None), TypeError),
        ("activation", (x.astype(np.int64), "relu", 0.01, None), TypeError),
        ("activation", (x.astype(np.float16), "relu", 0.01, None), TypeError),
        ("activation", (x.astype(">f4"), "relu", 0.01, None), TypeError),
        ("activation", (x, 3, 0.01, None), TypeError),
        ("activation", (x, "swish", 0.01, None), ValueError),
        ("activation", (x, "relu", "0.1", None), TypeError),
        ("activation", (x, "relu", True, None), TypeError),
        ("activation", (x, "leaky_relu", -0.1, None), ValueError),
        ("activation", (x, "leaky_relu", float("nan"), None), ValueError),
        ("activation", (x, "leaky_relu", float("inf"), None), ValueError),
        ("activation", (x, "relu", 0.01, [0.0]), TypeError),
        ("activation", (x, "relu", 0.01, np.ones((3, 4), np.float64)), TypeError),
        ("activation", (x, "relu", 0.01, np.ones((4, 3), np.float32)), ValueError),
        ("activation", (x, "relu", 0.01, ro), ValueError),
        ("activation", (x, "relu", 0.01, x), ValueError),
        ("activation", (x, "relu", 0.01, x.T.T), ValueError),
        ("activation_grad", (x, None, "relu", 0.01), ValueError),
        ("activation_grad", (x, None, "gelu", 0.01), ValueError),
        ("activation_grad", (x, x.astype(np.float64), "relu", 0.01), TypeError),
        ("activation_grad", (x, x[:2], "tanh", 0.01), ValueError),
        ("activation_grad", (x, [1.0], "tanh", 0.01), TypeError),
        ("activation_grad", ("x", x, "tanh", 0.01), TypeError),
        ("activation_grad", (x, x, "nope", 0.01), ValueError),
        ("activation_grad", (x, x, "leaky_relu", -1), ValueError),
    ]


@pytest.mark.parametrize("fn,args,exc", _bad_calls(), ids=lambda v: v if isinstance(v, str) else None)
def test_errors_match_the_numpy_backend(fn, args, exc):
    with pytest.raises(exc) as cpp_err:
        getattr(_core, fn)(*args)
    with pytest.raises(exc) as ref_err:
        getattr(ref, fn)(*args)
    assert str(cpp_err.value) == str(ref_err.value)
    assert str(cpp_err.value).startswith(fn + ":")


def test_accepted_slopes_and_overlap_free_out():
    x = np.linspace(-2, 2, 12, dtype=np.float64).reshape(3, 4)
    for s in (0, 1, 0.2, np.float32(0.2), np.int64(2)):
        np.testing.assert_allclose(_core.activation(x, "leaky_relu", s, None),
                                   np.where(x > 0, x, x * float(s)))
    buf = np.zeros(24)
    out = buf[1::2].reshape(3, 4)
    xs = buf[0::2].reshape(3, 4)
    xs[...] = x
    _core.activation(xs, "relu", 0.01, out)  # interleaved but disjoint: fine
    np.testing.assert_array_equal(out, np.maximum(x, 0))


def test_zero_size_and_gil_released_threads():
    import threading
    for shape in [(0,), (0, 5), (5, 0), (2, 0, 3)]:
        x = np.empty(shape, np.float32)
        assert _core.activation(x, "gelu", 0.01, None).shape == shape
        assert _core.activation_grad(x, x, "gelu", 0.01).shape == shape
    x = np.random.default_rng(0).standard_normal(200_000).astype(np.float32)
    want = _core.activation(x, "gelu", 0.01, None)
    results = [None] * 4

    def run(i):
        results[i] = _core.activation(x, "gelu", 0.01, None)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, want)
