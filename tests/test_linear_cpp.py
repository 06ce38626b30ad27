"""The fused dense layer of the compiled core: linear, linear_forward,
linear_backward against the NumPy reference backend evaluated in float64.

Every activation x float32/float64 x bias/no bias, shapes around the
register tile and the K block, 1-D and N-D inputs, empty batches, strided and
transposed views, both ISAs, and bitwise equality across thread counts.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import functional as F
from fusedprop.backends import numpy_backend as ref_backend
from conftest import ALL_ACTIVATIONS as ACTIVATIONS
from helpers import same_error

_core = pytest.importorskip("fusedprop._core")
SAVES_OUTPUT = {"relu", "leaky_relu", "sigmoid", "tanh"}
SAVES_Z = {"gelu", "gelu_tanh", "silu"}
DTYPES = (np.float32, np.float64)
TOL = {np.float32: 2e-5, np.float64: 1e-12}

pytestmark = pytest.mark.usefixtures("cpp_only")


def f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def assert_close(got, want, mag, dtype, what=""):
    """|got - want| <= tol * (mag + |want|) elementwise, NaN where NaN."""
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape, what
    both_nan = np.isnan(got) & np.isnan(want)
    with np.errstate(invalid="ignore"):
        err = np.where(both_nan, 0.0, np.abs(got - want))
    bound = TOL[dtype] * (mag + np.abs(want)) + 1e-300
    bad = ~(err <= bound)
    assert not bad.any(), f"{what}: max err {np.nanmax(err)} (bound {bound.max()}) at {np.argwhere(bad)[:3].tolist()}"


def make(rng, batch, n_in, n_out, dtype, bias=True):
    x = rng.uniform(-2, 2, size=batch + (n_in,)).astype(dtype)
    w = (rng.uniform(-1, 1, size=(n_out, n_in)) / np.sqrt(max(n_in, 1))).astype(dtype)
    b = rng.uniform(-1, 1, size=n_out).astype(dtype) if bias else None
    return x, w, b


def check_forward(x, w, b, act, slope=0.01):
    dtype = x.dtype.type
    y, saved = F.linear_forward(x, w, b, act, negative_slope=slope)
    assert y.dtype == dtype and y.shape == x.shape[:-1] + (w.shape[0],)
    want, want_saved = ref_backend.linear_forward(f64(x), f64(w), f64(b), act, slope)
    x2 = f64(x).reshape(-1, x.shape[-1])
    mag = (np.abs(x2) @ np.abs(f64(w)).T + (0 if b is None else np.abs(f64(b)))).reshape(want.shape)
    assert_close(y, want, mag, dtype, f"forward {act}")
    if act == "identity":
        assert saved is None
    elif act in SAVES_OUTPUT:
        assert saved is y
    else:
        assert_close(saved, want_saved, mag, dtype, f"saved Z {act}")
    # linear (inference) gives the same bits as the training forward.
    assert np.array_equal(F.linear(x, w, b, act, negative_slope=slope), y, equal_nan=True)
    return y, saved


def check_backward(x, w, saved, act, gy, slope=0.01, needs_input_grad=True):
    dtype = x.dtype.type
    gx, gw, gb = F.linear_backward(gy, x, w, saved, act, negative_slope=slope, needs_input_grad=needs_input_grad)
    # The oracle runs the same formulas in float64 from the same saved tensor.
    rx, rw, rb = ref_backend.linear_backward(f64(gy), f64(x), f64(w), f64(saved), act, slope, True)
    n_out, n_in = w.shape
    dz = ref_backend._backward(f64(gy), f64(saved), act, slope).reshape(-1, n_out)
    x2 = f64(x).reshape(-1, n_in)
    assert_close(gw, rw, np.abs(dz).T @ np.abs(x2), dtype, f"grad_weight {act}")
    assert_close(gb, rb, np.abs(dz).sum(axis=0), dtype, f"grad_bias {act}")
    assert gw.dtype == dtype and gb.dtype == dtype and gb.shape == (n_out,)
    if needs_input_grad:
        assert gx.shape == x.shape and gx.dtype == dtype
        assert_close(gx, rx, (np.abs(dz) @ np.abs(f64(w))).reshape(x.shape), dtype, f"grad_x {act}")
    else:
        assert gx is None
    return gx, gw, gb


# ---------------------------------------------------------------- the grid

SHAPES = [  # (batch, in_features, out_features) around MR in {4, 6, 12}, NR in {8, 16, 32}, KC in {256, 320, 384}
    ((1,), 1, 1),
    ((5,), 17, 3),
    ((6,), 16, 16),
    ((7,), 33, 17),
    ((13,), 256, 8),
    ((25,), 257, 40),
    ((64,), 64, 64),
    ((3, 5), 300, 9),
    ((11,), 321, 24),
    ((4,), 410, 5),  # two K blocks at KC = 256 and at 320
    ((8,), 102, 20),  # a last row panel of 2 rows
    ((12,), 384, 32),  # AVX-512: one f32 tile, k = KC
    ((11,), 385, 33),  # rows below MR = 12, a column past NR = 32, k = KC + 1 (f32)
    ((27,), 500, 31),  # 2 MR + 3 rows, n below NR, two K blocks (f32 KC = 384)
    ((14,), 96, 65),  # a last row panel of 2 rows (MR = 12), 2 NR + 1 columns
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_backward_grid(isa, dtype, act):
    # a fixed seed per case: hash() of a str changes with every process
    rng = np.random.default_rng(zlib.crc32(repr((isa, act)).encode()))
    for batch, n_in, n_out in SHAPES:
        for bias in (True, False):
            x, w, b = make(rng, batch, n_in, n_out, dtype, bias)
            y, saved = check_forward(x, w, b, act)
            gy = rng.uniform(-1, 1, size=y.shape).astype(dtype)
            check_backward(x, w, saved, act, gy)
    check_backward(x, w, saved, act, gy, needs_input_grad=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "gelu", "identity", "leaky_relu"])
def test_threads_bitwise(isa, threads, dtype, act):
    rng = np.random.default_rng(7)
    x, w, b = make(rng, (301,), 530, 97, dtype)
    gy = rng.uniform(-1, 1, size=(301, 97)).astype(dtype)
    results = []
    for n_threads in (1, 2, 3):
        threads(n_threads)
        y, saved = F.linear_forward(x, w, b, act)
        results.append((y, *F.linear_backward(gy, x, w, saved, act)))
    for other in results[1:]:
        for r1, r2 in zip(results[0], other):
            assert np.array_equal(r1, r2)
    y, saved = check_forward(x, w, b, act)
    check_backward(x, w, saved, act, gy)


def test_large_shapes_f32(threads):
    rng = np.random.default_rng(8)
    for batch, n_in, n_out in [((512,), 784, 256), ((1030,), 129, 300)]:
        x, w, b = make(rng, batch, n_in, n_out, np.float32)
        for act in ("relu", "gelu"):
            y, saved = check_forward(x, w, b, act)
            gy = rng.uniform(-1, 1, size=y.shape).astype(np.float32)
            check_backward(x, w, saved, act, gy)


# --------------------------------------------------------------- layouts

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "silu", "identity"])
def test_views(isa, dtype, act):
    rng = np.random.default_rng(9)
    x, w, b = make(rng, (11,), 40, 23, dtype)
    y, saved = check_forward(x, w, b, act)
    variants = {
        "x_fortran": (np.asfortranarray(x), w, b),
        "w_transposed_view": (x, np.ascontiguousarray(w.T).T, b),
        "negative": (np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1], w[::-1][::-1], b[::-1][::-1]),
        "strided": (np.repeat(x, 2, axis=1)[:, ::2], np.repeat(w, 3, axis=0)[::3], np.repeat(b, 2)[::2]),
    }
    gy = rng.uniform(-1, 1, size=y.shape).astype(dtype)
    gx, gw, gb = F.linear_backward(gy, x, w, saved, act)
    for name, (xv, wv, bv) in variants.items():
        assert np.array_equal(xv, x) and np.array_equal(wv, w) and np.array_equal(bv, b)
        yv, sv = F.linear_forward(xv, wv, bv, act)
        assert np.array_equal(yv, y), name
        gyv = np.asfortranarray(gy)
        svv = None if sv is None else np.asfortranarray(sv)
        for r1, r2 in zip((gx, gw, gb), F.linear_backward(gyv, xv, wv, svv, act)):
            assert np.array_equal(r1, r2), name


@pytest.mark.parametrize("dtype", DTYPES)
def test_nd_and_1d(isa, dtype):
    rng = np.random.default_rng(10)
    for batch in [(), (2, 3), (2, 1, 4), (1, 1, 5)]:
        x, w, b = make(rng, batch, 19, 7, dtype)
        y, saved = check_forward(x, w, b, "gelu")
        gy = rng.uniform(-1, 1, size=y.shape).astype(dtype)
        check_backward(x, w, saved, "gelu", gy)
    # Leading dims that cannot be collapsed without a copy.
    x, w, b = make(rng, (4, 6), 19, 7, dtype)
    xv = x.transpose(1, 0, 2)
    y, saved = check_forward(xv, w, b, "tanh")
    check_backward(xv, w, saved, "tanh", np.ones_like(y))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["identity", "relu", "gelu"])
def test_empty_batches(dtype, act):
    for batch in [(0,), (2, 0), (0, 3)]:
        x = np.ones(batch + (4,), dtype)
        w = np.ones((3, 4), dtype)
        b = np.ones(3, dtype)
        y, saved = F.linear_forward(x, w, b, act)
        assert y.shape == batch + (3,)
        gx, gw, gb = F.linear_backward(np.ones_like(y), x, w, saved, act)
        assert gx.shape == x.shape
        assert np.array_equal(gw, np.zeros((3, 4), dtype)) and np.array_equal(gb, np.zeros(3, dtype))
    # in_features == 0: Y = act(b)
    x = np.ones((5, 0), dtype)
    w = np.ones((3, 0), dtype)
    b = np.array([-1.0, 0.0, 2.0], dtype)
    y, _ = F.linear_forward(x, w, b, act)
    # (numpy_backend's reshape(-1, 0) cannot take this shape: act(b) directly)
    want = ref_backend._forward(np.broadcast_to(f64(b), (5, 3)).copy(), act, 0.01)
    np.testing.assert_allclose(y, want, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_argument(isa, dtype):
    rng = np.random.default_rng(11)
    x, w, b = make(rng, (3, 5), 12, 6, dtype)
    want = F.linear(x, w, b, "sigmoid")
    for out in (np.empty((3, 5, 6), dtype), np.empty((3, 5, 12), dtype)[..., ::2],
                np.empty((5, 3, 6), dtype).transpose(1, 0, 2)):
        got = F.linear(x, w, b, "sigmoid", out=out)
        assert got is out
        assert np.array_equal(out, want)


# ----------------------------------------------------- PyTorch's edge cases

@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward_select(isa, dtype):
    """dY = Inf where Y = 0 gives 0; Y = NaN passes dY (PyTorch's threshold_backward)."""
    x = np.array([[1.0], [-1.0], [np.nan], [0.0]], dtype)
    w = np.ones((1, 1), dtype)
    y, saved = F.linear_forward(x, w, None, "relu")
    assert np.isnan(y[2, 0]) and y[1, 0] == 0
    gy = np.array([[2.0], [np.inf], [3.0], [np.inf]], dtype)
    gx, gw, gb = F.linear_backward(gy, x, w, saved, "relu")
    assert np.array_equal(gx[:, 0], np.array([2.0, 0.0, 3.0, 0.0], dtype))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_nonfinite_inputs_match_reference(isa, act):
    x = np.array([[np.inf], [-np.inf], [np.nan], [50.0], [-50.0], [0.0]])
    w = np.ones((1, 1))
    y, saved = F.linear_forward(x, w, None, act)
    want, _ = ref_backend.linear_forward(x, w, None, act, 0.01)
    np.testing.assert_allclose(y, want, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_nonfinite_inputs_through_the_tile_epilogue(isa, dtype, act):
    """As above, on a batch the packed microkernels compute (40 x 40 tiles,
    not the skinny path): NaN, +-Inf and negative pre-activations go through
    each ISA's activation in the tile epilogue as through the reference."""
    rng = np.random.default_rng(13)
    x = rng.uniform(-2, 2, size=(40, 2)).astype(dtype)
    x[3, 0], x[7, 1], x[11, 0], x[29, 1] = np.nan, np.inf, -np.inf, np.nan
    w = rng.uniform(0.5, 1.5, size=(40, 2)).astype(dtype)  # positive: no Inf - Inf
    b = rng.uniform(-1, 1, size=40).astype(dtype)
    y, _ = F.linear_forward(x, w, b, act, negative_slope=0.1)
    want, _ = ref_backend.linear_forward(f64(x), f64(w), f64(b), act, 0.1)
    assert np.array_equal(np.isnan(y), np.isnan(want)), act
    assert np.array_equal(np.isinf(y), np.isinf(want)) and np.array_equal(y[np.isinf(y)], want[np.isinf(want)]), act
    finite = np.isfinite(want)
    mag = np.abs(f64(x)) @ np.abs(f64(w)).T + np.abs(f64(b))
    assert_close(y[finite], want[finite], mag[finite], dtype, act)


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0, 3])
def test_leaky_relu_slopes(isa, slope):
    rng = np.random.default_rng(12)
    x, w, b = make(rng, (20,), 30, 10, np.float64)
    y, saved = check_forward(x, w, b, "leaky_relu", slope)
    check_backward(x, w, saved, "leaky_relu", np.ones_like(y), slope)


# ----------------------------------------------------------------- errors

def _same_error(call):
    return same_error(call, ref_backend, _core)


def test_errors_match_reference():
    x = np.ones((2, 4))
    w = np.ones((3, 4))
    b = np.ones(3)
    y = np.ones((2, 3))
    cases = [
        lambda m: m.linear([1.0], w, b, "relu", 0.01, None),
        lambda m: m.linear(x, w.astype(np.float32), b, "relu", 0.01, None),
        lambda m: m.linear(x, np.ones(4), b, "relu", 0.01, None),
        lambda m: m.linear(np.float64(1.0) * np.ones(()), w, b, "relu", 0.01, None),
        lambda m: m.linear(np.ones((2, 5)), w, b, "relu", 0.01, None),
        lambda m: m.linear(x, w, np.ones(4), "relu", 0.01, None),
        lambda m: m.linear(x, w, np.ones((3, 1)), "relu", 0.01, None),
        lambda m: m.linear(x, w, b.astype(np.float32), "relu", 0.01, None),
        lambda m: m.linear(x, w, "b", "relu", 0.01, None),
        lambda m: m.linear(x, w, b, "swish", 0.01, None),
        lambda m: m.linear(x, w, b, 3, 0.01, None),
        lambda m: m.linear(x, w, b, "relu", "0.1", None),
        lambda m: m.linear(x, w, b, "relu", True, None),
        lambda m: m.linear(x, w, b, "leaky_relu", -0.1, None),
        lambda m: m.linear(x, w, b, "leaky_relu", float("nan"), None),
        lambda m: m.linear(x, w, b, "leaky_relu", np.float32("inf"), None),
        lambda m: m.linear(x, w, b, "relu", 0.01, np.ones((2, 4))),
        lambda m: m.linear(x, w, b, "relu", 0.01, np.ones((2, 3), np.float32)),
        lambda m: m.linear(x, w, b, "relu", 0.01, x[:, :3]),
        lambda m: m.linear(x, w, b, "relu", 0.01, [[0.0]]),
        lambda m: m.linear_forward(x, w, b, "nope", 0.01),
        lambda m: m.linear_forward(x.astype(np.int32), w, b, "relu", 0.01),
        lambda m: m.linear_backward(y, x, w, None, "relu", 0.01, True),
        lambda m: m.linear_backward(y, x, w, None, "gelu", 0.01, True),
        lambda m: m.linear_backward(y, x, w, y.astype(np.float32), "gelu", 0.01, True),
        lambda m: m.linear_backward(y, x, w, np.ones((3, 3)), "tanh", 0.01, True),
        lambda m: m.linear_backward(np.ones((2, 4)), x, w, y, "tanh", 0.01, True),
        lambda m: m.linear_backward(y.astype(np.float32), x, w, y, "tanh", 0.01, True),
        lambda m: m.linear_backward(y, x, np.ones((3, 5)), y, "tanh", 0.01, True),
        lambda m: m.linear_backward(y, x, w, [1], "sigmoid", 0.01, True),
    ]
    for case in cases:
        _same_error(case)
    ro = np.ones((2, 3))
    ro.flags.writeable = False
    _same_error(lambda m: m.linear(x, w, b, "relu", 0.01, ro))


def test_identity_ignores_saved():
    x = np.ones((2, 4))
    w = np.ones((3, 4))
    gx, gw, gb = F.linear_backward(np.ones((2, 3)), x, w, "anything", "identity")
    assert np.array_equal(gb, [2.0, 2.0, 2.0])
    assert np.array_equal(gw, np.full((3, 4), 2.0))
    assert np.array_equal(gx, np.full((2, 4), 3.0))
